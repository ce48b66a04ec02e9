import type { Command } from './types.js'

export const help: Command = {
  usage: 'help',
  summary: 'list the commands',
  run (_args, ctx) {
    const width = Math.max(...[...ctx.commands.values()].map(c => c.usage.length))
    for (const command of ctx.commands.values()) ctx.print(`${command.usage.padEnd(width)}  ${command.summary}`)
  }
}
