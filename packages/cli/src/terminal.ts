/**
 * Line input and output for the command loop. Commands read their arguments from the
 * command line and any further values (a password, say) from the following lines with
 * `next()`; lines typed ahead are queued, so a script can send everything at once.
 * On a terminal it shows a prompt, keeps it below notices that arrive meanwhile, and can
 * hide what is typed; on a pipe it reads plain lines and echoes nothing.
 */
import { createInterface, clearScreenDown, cursorTo, moveCursor, type Interface } from 'node:readline'
import { Writable } from 'node:stream'

export interface LineTerminalInit {
  input?: NodeJS.ReadableStream
  output?: NodeJS.WritableStream & { columns?: number, isTTY?: boolean }
  /** Prompts, echo and line editing (a person at a terminal). @default false */
  interactive?: boolean
  /** Ctrl+C on an interactive terminal (readline takes it before the process sees SIGINT). */
  onInterrupt?: () => void
  /** Tab completion on an interactive terminal: readline's completer (the candidates and the part of the line they complete). */
  completer?: (line: string) => [string[], string]
  /** Lines typed earlier, newest first, recalled with ↑/↓; the terminal adds to it (share one array to keep it across terminals). */
  history?: string[]
}

export interface NextLineOptions {
  /** Do not echo what is typed (passwords). */
  secret?: boolean
}

/** Passes readline's echo on to the real output unless muted (for secret input). */
class MutableOutput extends Writable {
  muted = false
  constructor (private readonly target: NodeJS.WritableStream & { columns?: number, isTTY?: boolean }) { super() }
  get columns (): number | undefined { return this.target.columns }
  get isTTY (): boolean { return this.target.isTTY === true }
  override _write (chunk: any, encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    // at once, not after the target's callback: a Writable holds later writes until then,
    // and they would land after lines written straight to the target meanwhile (notices)
    if (!this.muted) this.target.write(chunk, encoding)
    callback()
  }
}

export class LineTerminal {
  readonly interactive: boolean
  private readonly output: NodeJS.WritableStream
  private readonly echo?: MutableOutput
  private readonly rl: Interface
  private readonly queued: string[] = []
  private waiter?: (line: string | null) => void
  private prompting = false
  private ended = false
  private noticeSink?: (line: string) => void

  constructor (init: LineTerminalInit = {}) {
    const input = init.input ?? process.stdin
    this.output = init.output ?? process.stdout
    this.interactive = init.interactive ?? false
    if (this.interactive) this.echo = new MutableOutput(this.output)
    this.rl = createInterface({
      input,
      output: this.echo,
      terminal: this.interactive,
      historySize: this.interactive ? 100 : 0,
      ...(this.interactive && init.history != null ? { history: init.history } : {}),
      ...(this.interactive && init.completer != null ? { completer: init.completer } : {})
    })
    // readline keeps its own list: the caller's array follows it
    if (this.interactive && init.history != null) {
      const kept = init.history
      this.rl.on('history', (lines: string[]) => { if (lines !== kept) kept.splice(0, kept.length, ...lines) })
    }
    this.rl.on('line', line => {
      if (this.waiter != null) {
        const resolve = this.waiter
        this.waiter = undefined
        resolve(line)
      } else {
        this.queued.push(line)
      }
    })
    this.rl.on('close', () => {
      this.ended = true
      this.waiter?.(null)
      this.waiter = undefined
    })
    this.rl.on('SIGINT', () => { init.onInterrupt?.() })
  }

  /** The next input line, or null once the input has ended (or `close()` was called). */
  async next (prompt = '', options: NextLineOptions = {}): Promise<string | null> {
    const queued = this.queued.shift()
    if (queued != null) return queued
    if (this.ended) return null
    if (this.interactive && this.echo != null) {
      this.rl.setPrompt(prompt)
      this.rl.prompt()
      this.echo.muted = options.secret === true
      this.prompting = true
    }
    try {
      return await new Promise<string | null>(resolve => { this.waiter = resolve })
    } finally {
      if (this.echo?.muted === true) {
        this.echo.muted = false
        this.output.write('\n')
      }
      this.prompting = false
    }
  }

  /** A line of output (the answer to a command). */
  print (line: string): void {
    this.output.write(line + '\n')
  }

  /** A line that arrives on its own (an event); on a terminal it goes above the prompt. */
  notice (line: string): void {
    if (this.noticeSink != null) {
      this.noticeSink(line)
    } else if (this.interactive && this.prompting && this.echo?.muted !== true) {
      // what is typed may span rows: clear from the prompt's first row, and leave as many
      // rows under the notice as readline will move up when it draws the line again
      const rows = this.rl.getCursorPos().rows
      moveCursor(this.output, 0, -rows)
      cursorTo(this.output, 0)
      clearScreenDown(this.output)
      this.output.write(line + '\n' + '\n'.repeat(rows))
      this.rl.prompt(true)
    } else {
      this.output.write(line + '\n')
    }
  }

  /** Rows from the prompt's first row down to the cursor (0 while no prompt is shown). */
  cursorRow (): number {
    return this.interactive && this.prompting ? this.rl.getCursorPos().rows : 0
  }

  /** Draw the prompt and what is typed again (after the screen was cleared). */
  redraw (): void {
    if (this.interactive && this.prompting) this.rl.prompt(true)
  }

  /** Send notices to `sink` instead (the menus show them their own way); none: back to this terminal. */
  divertNotices (sink?: (line: string) => void): void {
    this.noticeSink = sink
  }

  close (): void {
    if (this.interactive && this.prompting) this.output.write('\n') // leave the shell prompt on a line of its own
    this.rl.close()
  }
}
