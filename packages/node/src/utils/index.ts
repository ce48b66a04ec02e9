export { timeLimit, withTimeLimit, within, settledWithin, delay, abortable } from './time-limit.js'
