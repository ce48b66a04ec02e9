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
    // a name's proof of work in one try (protocol's name-work.ts); its own tests pass their bits
    env: { CONF_CHAT_NAME_WORK_BITS: '0' },
    // one module graph for all files: loading libp2p once instead of once a file cuts the
    // layer from ~25 s to ~7 s here; unit tests keep no state in modules (each builds its own fixtures)
    isolate: false,
    testTimeout: 10_000
  }
})
