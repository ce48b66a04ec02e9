/**
 * Command mode: one command a line, plain output lines, errors as one `[error]` line;
 * the loop goes on after any error and ends with `quit` or at the end of the input.
 */
import { logger } from '@libp2p/logger'
import { splitCommandLine } from '../command-line.js'
import { InputEndedError } from '../errors.js'
import type { NodeApp } from '../app.js'
import type { Command, CommandContext, CommandTable } from '../commands/index.js'
import type { LineTerminal } from '../terminal.js'

const log = logger('conf-chat:cli:commands')

export interface CommandModeInit {
  app: NodeApp
  terminal: LineTerminal
  commands: CommandTable
  /** Aborted when the program stops. */
  signal: AbortSignal
  /** Shown before each command on a terminal. @default '' */
  prompt?: string
}

export function formatCommandError (err: any, command?: Command): string {
  if (err?.name === 'UsageError') {
    const usage = command != null ? `usage: ${command.usage}` : ''
    return `[error] ${[err.message, usage].filter(s => s !== '').join('; ')}`
  }
  return `[error] ${String(err?.message ?? err).split('\n')[0]}`
}

export async function runCommandMode (init: CommandModeInit): Promise<void> {
  const { app, terminal, commands, signal, prompt = '' } = init
  let quitting = false
  const ctx: CommandContext = {
    app,
    commands,
    signal,
    print: line => { terminal.print(line) },
    ask: async (question, options) => {
      const line = await terminal.next(question, options)
      if (line == null || signal.aborted) throw new InputEndedError()
      return line
    },
    quit: () => { quitting = true }
  }
  while (!quitting && !signal.aborted) {
    const line = await terminal.next(prompt)
    if (line == null || signal.aborted) break
    let command: Command | undefined
    try {
      const words = splitCommandLine(line)
      const name = words[0]
      if (name == null || name.startsWith('#')) continue // blank line or comment (scripts)
      command = commands.get(name)
      if (command == null) {
        terminal.print(`[error] unknown command "${name}" (type help for the list)`)
        continue
      }
      await command.run(words.slice(1), ctx)
    } catch (err: any) {
      log.error('command %s failed: %e', line.split(' ')[0], err)
      terminal.print(formatCommandError(err, command))
    }
  }
}
