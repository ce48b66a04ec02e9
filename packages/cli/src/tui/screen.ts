/**
 * The terminal the menus draw on, and redrawing it. A terminal "of real size" is a TTY
 * with columns and rows: a container's TTY that nobody has attached to is a TTY of 0×0.
 * Animation (the spinner) runs only on a terminal of real size.
 *
 * Redraw: when the terminal changes size (SIGWINCH: a window resized, or `docker
 * attach`, which sets the attaching terminal's size, one row and column larger first, so
 * that every attach is a change), the screen is cleared and the open prompt is asked
 * again, drawn for the new size. Nothing else shows what a new attacher has missed.
 */
import * as inquirer from '@inquirer/prompts'

/** The terminal's output stream (process.stdout, or a test's). */
export type TuiOutput = NodeJS.WritableStream & { isTTY?: boolean, columns?: number, rows?: number }

/** A prompt's I/O and abort signal (inquirer's context argument). */
export type Context = NonNullable<Parameters<typeof inquirer.input>[1]>

/** Erase the screen and put the cursor at its top left. */
export const CLEAR_SCREEN = '\u001b[2J\u001b[H'

/** A TTY with a size (a detached container's TTY is 0×0). */
export function hasRealSize (output: TuiOutput): boolean {
  return output.isTTY === true && (output.columns ?? 0) > 0 && (output.rows ?? 0) > 0
}

/** Spinners and other animation: only on a terminal of real size, never with TERM=dumb. */
export function animated (output: TuiOutput, env: NodeJS.ProcessEnv = process.env): boolean {
  return hasRealSize(output) && env.TERM !== 'dumb'
}

/** A TTY without a size: nobody is attached yet; the menus wait for a terminal. */
export function detachedTty (output: TuiOutput): boolean {
  return output.isTTY === true && !hasRealSize(output)
}

type Resizable = TuiOutput & { on?: (event: 'resize', listener: () => void) => unknown, off?: (event: 'resize', listener: () => void) => unknown }

/** Call `listener` each time the output gets a (new) real size; returns the way to stop. */
export function onRealSize (output: TuiOutput, listener: () => void): () => void {
  const out = output as Resizable
  const onResize = (): void => { if (hasRealSize(output)) listener() }
  out.on?.('resize', onResize)
  return () => { out.off?.('resize', onResize) }
}

/** Resolves once the output has a real size (at once if it has); rejects if `signal` aborts first. */
export async function waitForRealSize (output: TuiOutput, signal: AbortSignal): Promise<void> {
  if (hasRealSize(output)) return
  signal.throwIfAborted()
  await new Promise<void>((resolve, reject) => {
    const done = (): void => { off(); signal.removeEventListener('abort', aborted); resolve() }
    const aborted = (): void => { off(); reject(signal.reason) }
    const off = onRealSize(output, done)
    signal.addEventListener('abort', aborted, { once: true })
  })
}

/**
 * Ask with `ask(context)` and, each time the terminal gets a new size while it waits,
 * clear the screen and ask again (the prompt then draws for the new size). An abort of
 * the caller's own signal ends it as before.
 */
export async function redrawing<V> (ask: (context: Context) => Promise<V>, context: Context = {}): Promise<V> {
  const output = (context.output ?? process.stdout) as TuiOutput
  for (;;) {
    const redraw = new AbortController()
    const off = onRealSize(output, () => { redraw.abort() })
    try {
      const signal = context.signal != null ? AbortSignal.any([context.signal, redraw.signal]) : redraw.signal
      return await ask({ ...context, signal })
    } catch (err) {
      if (!redraw.signal.aborted || context.signal?.aborted === true) throw err
      output.write(CLEAR_SCREEN)
    } finally {
      off()
    }
  }
}

// inquirer's prompts, each drawn again when the terminal changes size
export const select = async <V>(config: Parameters<typeof inquirer.select<V>>[0], context?: Context): Promise<V> =>
  await redrawing(c => inquirer.select<V>(config, c), context)
export const checkbox = async <V>(config: Parameters<typeof inquirer.checkbox<V>>[0], context?: Context): Promise<V[]> =>
  await redrawing(c => inquirer.checkbox<V>(config, c), context)
export const input = async (config: Parameters<typeof inquirer.input>[0], context?: Context): Promise<string> =>
  await redrawing(c => inquirer.input(config, c), context)
export const password = async (config: Parameters<typeof inquirer.password>[0], context?: Context): Promise<string> =>
  await redrawing(c => inquirer.password(config, c), context)
export const confirm = async (config: Parameters<typeof inquirer.confirm>[0], context?: Context): Promise<boolean> =>
  await redrawing(c => inquirer.confirm(config, c), context)
export { Separator } from '@inquirer/prompts'
