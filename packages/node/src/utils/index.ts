export { timeLimit, withTimeLimit, settledWithin, delay } from './time-limit.js'
