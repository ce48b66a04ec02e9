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
    // integration and end-to-end tests; the packages' own unit tests: vitest.unit.config.ts
    include: ['test/**/*.test.ts'],
    // the soak test (vitest.soak.config.ts) and the Docker engine test run after these, on their own
    exclude: ['test/docker/**', 'test/soak/**', '**/node_modules/**'],
    setupFiles: ['packages/node/src/polyfill.ts'],
    // builds dist/ once (tsc -b and the bundles): the end-to-end tests run the bundled programs
    globalSetup: ['test/global-setup.ts'],
    // a name's proof of work in one try (protocol's name-work.ts): the tests register hundreds
    // of users in-process. The programs they start run on networks of their own, with the
    // product's value (test/helpers/programs.ts keeps CONF_CHAT_* out of their environment)
    env: { CONF_CHAT_NAME_WORK_BITS: '0' },
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // one file at a time: the integration files run networks of up to 21 libp2p peers in
    // one process, and two of them side by side on two cores starve each other's timers
    fileParallelism: false,
    maxWorkers: 1
  }
})
