import type { NodeApp } from '../app.js'
import type { NextLineOptions } from '../terminal.js'

export interface CommandContext {
  app: NodeApp
  /** Print one line of the command's answer. */
  print: (line: string) => void
  /** Read the next input line (a prompted value); throws InputEndedError at end of input. */
  ask: (prompt: string, options?: NextLineOptions) => Promise<string>
  /** Stop the command loop after this command (as `quit` does). */
  quit: () => void
  /** Aborted when the program stops: pass it to every network call. */
  signal: AbortSignal
  /** Every command, for `help`. */
  commands: CommandTable
}

export interface Command {
  /** Arguments as shown by `help`, e.g. `msg <user> <text...>`. */
  usage: string
  summary: string
  /** `args` are the words after the command name ("quoted words" stay one). Throw UsageError
   * for bad arguments; any error becomes one `[error]` line and the loop goes on. */
  run: (args: string[], ctx: CommandContext) => Promise<void> | void
}

export type CommandTable = ReadonlyMap<string, Command>
