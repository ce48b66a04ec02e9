import { defineConfig } from 'vitest/config'

/**
 * The slowest layer, run last: the docker-compose demo on a Docker engine the test starts
 * itself (builds a stand-in base image and the project's image, ~2-3 minutes, then drives
 * the demo). `npm run test:docker`; skipped, saying why, where no engine can run.
 */
export default defineConfig({
  test: {
    include: ['test/docker/**/*.test.ts'],
    testTimeout: 600_000,
    hookTimeout: 1_500_000,
    pool: 'forks',
    fileParallelism: false,
    maxWorkers: 1
  }
})
