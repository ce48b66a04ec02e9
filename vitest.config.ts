import { defineConfig } from 'vitest/config'

export default defineConfig({
  resolve: {
    // run the packages' TypeScript sources, not dist/ (the programs run from dist/)
    conditions: ['conf-chat:source']
  },
  ssr: {
    resolve: { conditions: ['conf-chat:source'] }
  },
  test: {
    include: ['test/**/*.test.ts', 'packages/*/test/**/*.test.ts'],
    setupFiles: ['packages/node/src/polyfill.ts'],
    // builds dist/ once: the end-to-end tests run the programs from there
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    fileParallelism: true,
    maxWorkers: 2
  }
})
