#!/usr/bin/env -S MALLOC_MMAP_THRESHOLD_=16384 node --max-semi-space-size=1
// Everything is imported dynamically: static imports would all be loaded (read, parsed,
// allocated) before the first line of this module runs. The #! line's flag and setting: see
// packages/program/src/heap.ts (NODE_FLAGS, MALLOC_ENV).
// @conf-chat/node first: it installs the Promise.withResolvers polyfill that libp2p needs on Node 20
await import('@conf-chat/node')
const { fatal } = await import('./errors.js')
const { runNodeProgram } = await import('./node-program.js')

fatal.exitOnUncaught()
const code = await runNodeProgram(process.argv).catch(fatal.reportFatal)
// libp2p may leave timers behind after stop(): do not wait for them
process.exit(code)
