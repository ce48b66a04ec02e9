export * from './options.js'
export { DataDirInUseError } from './errors.js'
export { runSupernodeProgram } from './supernode-program.js'
