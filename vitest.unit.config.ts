import { defineConfig } from 'vitest/config'

/**
 * The fast layer: each package's own tests (packages/<pkg>/test), with in-memory
 * fixtures only: no network, no child process, no build. `npm run test:unit`.
 */
export default defineConfig({
  resolve: { conditions: ['conf-chat:source'] },
  ssr: { resolve: { conditions: ['conf-chat:source'] } },
  test: {
    include: ['packages/*/test/**/*.test.ts'],
    setupFiles: ['packages/node/src/polyfill.ts'],
    testTimeout: 10_000
  }
})
