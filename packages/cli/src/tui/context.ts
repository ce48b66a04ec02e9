/**
 * What every screen of the terminal UI gets: the core library object (only the calls the
 * screens make), the event inbox, the terminal streams, colours, and the program's stop
 * signal. Screens take it as their one argument, so a test builds it from fakes.
 */
import pc from 'picocolors'
import ora from 'ora'
import type { Colors } from 'picocolors/types.js'
import type { Inbox } from './inbox.js'
import type { TuiNode } from './tui-node.js'
import { ProgramStoppingError } from './errors.js'
import { animated, type TuiOutput } from './screen.js'

// the node's calls and the errors of a way out are leaf files (inbox.ts imports them too)
export type { TuiNode } from './tui-node.js'
export { isQuit, isSessionEnded, ProgramStoppingError, SessionEndedError } from './errors.js'

export type { TuiOutput } from './screen.js'

export interface TuiContext {
  node: TuiNode
  inbox: Inbox
  input: NodeJS.ReadableStream
  output: TuiOutput
  /** Aborted when the program stops (SIGTERM, Ctrl+C outside a prompt). */
  signal: AbortSignal
  colors: Colors
  /** How often the open user list reads the users again. @default USER_LIST_REFRESH_MS (main-menu.ts) */
  listRefreshMs?: number
  /** What the Settings screen changes for this run (read receipts are the node's `readReceipts`). */
  settings?: TuiSettings
  /** Lines typed on chat lines, newest first (↑/↓ recall them on every chat screen). */
  typed?: string[]
}

export interface TuiSettings {
  /** Ring the terminal bell for a message that is not on screen. */
  bell: boolean
}

/** Colours only on a terminal, and never with NO_COLOR (https://no-color.org) or TERM=dumb. */
export function colorsFor (output: TuiOutput, env: NodeJS.ProcessEnv = process.env): Colors {
  const noColor = env.NO_COLOR != null && env.NO_COLOR !== ''
  const forced = env.FORCE_COLOR != null && env.FORCE_COLOR !== '' && env.FORCE_COLOR !== '0'
  return pc.createColors(!noColor && (forced || (output.isTTY === true && env.TERM !== 'dumb')))
}

/** The prompts' I/O, for inquirer's context argument. */
export function promptContext (ctx: TuiContext, signal: AbortSignal = ctx.signal): { input: NodeJS.ReadableStream, output: NodeJS.WritableStream, signal: AbortSignal } {
  return { input: ctx.input, output: ctx.output, signal }
}

/** One line for an error the user can act on; the core's named errors carry clear messages. */
export function errorLine (ctx: TuiContext, err: any): string {
  return `${ctx.colors.red('✖')} ${String(err?.message ?? err).split('\n')[0]}`
}

export function print (ctx: TuiContext, line = ''): void {
  ctx.output.write(line + '\n')
}

/**
 * Run `work` with a spinner (ora) on a terminal, a plain line elsewhere. The spinner line
 * is replaced by `done(result)` if it gives one, or by the error, when the work ends.
 * Stopping the program ends the wait at once (the work itself cannot be cancelled and
 * finishes in the background).
 */
export async function withSpinner<T> (ctx: TuiContext, text: string, work: Promise<T>, done: (result: T) => string | undefined = () => undefined,
  progress?: (setText: (text: string) => void) => void): Promise<T> {
  const spinner = ora({
    text,
    stream: ctx.output as NodeJS.WriteStream,
    // no animation on a pipe, with TERM=dumb, or on a TTY nobody is attached to (0×0)
    isEnabled: animated(ctx.output),
    // keys typed meanwhile are dropped, Ctrl+C still stops the program (only for the real stdin)
    discardStdin: ctx.input === process.stdin
  }).start()
  progress?.(next => { spinner.text = next })
  let onAbort: (() => void) | undefined
  const stopped = new Promise<never>((_resolve, reject) => {
    onAbort = () => { reject(new ProgramStoppingError()) }
    if (ctx.signal.aborted) onAbort()
    else ctx.signal.addEventListener('abort', onAbort, { once: true })
  })
  stopped.catch(() => {})
  try {
    const result = await Promise.race([work, stopped])
    const line = done(result)
    if (line != null) spinner.stopAndPersist({ symbol: ctx.colors.green('✔'), text: line })
    else spinner.stop()
    return result
  } catch (err: any) {
    if (err instanceof ProgramStoppingError) spinner.stop()
    else spinner.stopAndPersist({ symbol: ctx.colors.red('✖'), text: String(err?.message ?? err).split('\n')[0] })
    throw err
  } finally {
    if (onAbort != null) ctx.signal.removeEventListener('abort', onAbort)
  }
}

/** An inquirer `validate` from one of the protocol's input rules (which throw, or reject, with a clear message). */
export function validator (check: (value: string) => unknown): (value: string) => Promise<true | string> {
  return async value => {
    try {
      await check(value)
      return true
    } catch (err: any) {
      return String(err?.message ?? err)
    }
  }
}

/** Print the notices that waited, for good (above the next prompt). */
export function flushNotices (ctx: TuiContext): void {
  for (const line of ctx.inbox.takeNotices()) print(ctx, line)
}
