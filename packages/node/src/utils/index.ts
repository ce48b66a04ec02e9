export { timeLimit, untilEither, within, settledWithin, delay, abortable } from './time-limit.js'
export { overriding } from './overriding.js'
