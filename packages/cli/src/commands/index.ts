/**
 * The commands of command mode. To add one: write `commands/<name>.ts` exporting a
 * `Command`, and add it to the table below (the order is the order of `help`).
 */
import { help } from './help.js'
import { peers } from './peers.js'
import { quit } from './quit.js'
import { whoami } from './whoami.js'
import type { Command, CommandTable } from './types.js'

export type { Command, CommandContext, CommandTable } from './types.js'

export function defaultCommands (): Map<string, Command> {
  return new Map<string, Command>([
    ['help', help],
    ['whoami', whoami],
    ['peers', peers],
    ['quit', quit]
  ])
}

export const commands: CommandTable = defaultCommands()
