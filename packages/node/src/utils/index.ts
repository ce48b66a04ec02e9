export { timeLimit, untilEither, within, settledWithin, delay, abortable, shared, shutdownController } from './time-limit.js'
export { overriding } from './overriding.js'
export { watchStalls, type StallWatchInit } from './stall-watch.js'
export { DueRuns, type DueRunsInit } from './due-runs.js'
