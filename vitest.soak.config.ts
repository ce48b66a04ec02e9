import { defineConfig } from 'vitest/config'

/**
 * The soak test (test/soak/): the real programs under a storm of kills, pauses, busy
 * loops and moves for 3 minutes (SOAK_MINUTES), then a drain: `npm run test:soak`, run by
 * `npm test` after the integration tests. The long run: `npm run soak`.
 */
export default defineConfig({
  test: {
    include: ['test/soak/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 1_800_000,
    hookTimeout: 120_000,
    pool: 'forks',
    fileParallelism: false,
    maxWorkers: 1
  }
})
