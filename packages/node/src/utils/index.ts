export { timeLimit, withTimeLimit, within, settledWithin, delay } from './time-limit.js'
