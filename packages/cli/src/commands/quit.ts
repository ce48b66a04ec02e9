import type { Command } from './types.js'

export const quit: Command = {
  usage: 'quit',
  summary: 'stop the peer and leave',
  run (_args, ctx) { ctx.quit() }
}
