/**
 * What the two programs (the node program in packages/cli, the supernode in
 * packages/supernode) share: the home directory and the supernode's address file, the
 * error boundary, the log levels and the flag parsers they both use.
 */
export * from './home.js'
export * from './fatal.js'
export * from './log-level.js'
export * from './flags.js'
export * from './status.js'
