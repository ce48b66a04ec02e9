/**
 * Injected terminal streams for the screens: `type()` sends keys (as a terminal sends
 * them), `waitFor()` waits until the output (ANSI codes stripped) shows a text. The
 * output is not a TTY unless asked for (then of a given size, which `resize()` changes), so by
 * default there are no colours and no spinner animation. A TTY of real size also feeds a
 * terminal emulator (@xterm/headless): `screen` is what a person would see on it.
 */
import * as readline from 'node:readline'
import { PassThrough, Writable } from 'node:stream'
import xterm from '@xterm/headless'
import { stripVTControlCharacters } from 'node:util'
import { EventEmitter } from 'node:events'

const { Terminal } = xterm
type Terminal = InstanceType<typeof Terminal>

export const KEY = {
  enter: '\r',
  down: '\u001b[B',
  up: '\u001b[A',
  ctrlC: '\u0003',
  ctrlD: '\u0004',
  tab: '\t',
  pageUp: '\u001b[5~',
  pageDown: '\u001b[6~'
} as const

/** Generous: the machine is shared. A wait that runs out fails the test with the screen so far. */
const WAIT_MS = 10_000

export class FakeTerminal {
  readonly input = new PassThrough()
  readonly output: Writable & { columns: number, rows: number, isTTY: boolean }
  private raw = ''
  /** `raw` without ANSI codes (each write stripped on its own: the screens write whole sequences). */
  private plain = ''
  private readonly events = new EventEmitter()
  /** waitFor() looks at output from here on. */
  private mark = 0

  /** A terminal emulator fed with the output (a TTY of real size only): what a person would see. */
  private readonly xterm?: Terminal

  /** `tty`: a TTY of that size (0×0: one nobody is attached to); else not a TTY. */
  constructor (options: { tty?: { columns: number, rows: number } } = {}) {
    const self = this
    if (options.tty != null && options.tty.columns > 0 && options.tty.rows > 0) {
      // a TTY's output turns \n into \r\n (ONLCR), raw mode or not
      this.xterm = new Terminal({ cols: options.tty.columns, rows: options.tty.rows, allowProposedApi: true, convertEol: true })
    }
    this.output = Object.assign(new Writable({
      write (chunk, _encoding, callback) {
        self.raw += chunk.toString()
        self.plain += stripVTControlCharacters(chunk.toString())
        self.events.emit('write')
        self.xterm?.write(chunk.toString(), () => { self.events.emit('screen') })
        callback()
      }
    }), {
      columns: options.tty?.columns ?? 100,
      rows: options.tty?.rows ?? 40,
      isTTY: options.tty != null,
      // what a TTY's stream has beyond a Writable (ora draws its spinner with them)
      cursorTo (this: NodeJS.WritableStream, x: number, y?: number) { return readline.cursorTo(this, x, y) },
      moveCursor (this: NodeJS.WritableStream, dx: number, dy: number) { return readline.moveCursor(this, dx, dy) },
      clearLine (this: NodeJS.WritableStream, dir: -1 | 0 | 1) { return readline.clearLine(this, dir) },
      // each prompt pipes into the output and ends the pipe when done; like process.stdout, this one stays open
      end () { return this }
    }) as any
  }

  /** All output so far, ANSI codes stripped. */
  get text (): string { return this.plain }

  /** What was written, escape codes included. */
  get rawText (): string { return this.raw }

  /** The terminal gets a new size (SIGWINCH: a window resized, a `docker attach`). */
  resize (columns: number, rows: number): void {
    this.output.columns = columns
    this.output.rows = rows
    this.xterm?.resize(columns, rows)
    this.output.emit('resize')
  }

  /** The screen as the emulated terminal shows it now (its visible rows, a wrapped line's rows joined, trailing blanks dropped). */
  get screen (): string {
    if (this.xterm == null) throw new Error('only a TTY of real size has a screen')
    const b = this.xterm.buffer.active
    const lines: string[] = []
    for (let i = 0; i < this.xterm.rows; i++) {
      const row = b.getLine(b.viewportY + i)
      const text = row?.translateToString(i < this.xterm.rows - 1 && b.getLine(b.viewportY + i + 1)?.isWrapped !== true) ?? ''
      if (row?.isWrapped === true && lines.length > 0) lines[lines.length - 1] += text
      else lines.push(text)
    }
    return lines.join('\n').replace(/\s+$/, '')
  }

  /** Wait until the screen (what a person would see now) matches `re`; resolves with it. */
  async waitForScreen (re: RegExp, timeoutMs = WAIT_MS): Promise<string> {
    return await new Promise((resolve, reject) => {
      const check = (): void => {
        const screen = this.screen
        if (!re.test(screen)) return
        done()
        resolve(screen)
      }
      const timer = setTimeout(() => {
        done()
        reject(new Error(`the screen did not show ${String(re)} within ${timeoutMs} ms; it shows:\n${this.screen}`))
      }, timeoutMs)
      const done = (): void => { clearTimeout(timer); this.events.off('screen', check) }
      this.events.on('screen', check)
      check()
    })
  }

  type (...keys: string[]): void {
    for (const k of keys) this.input.write(k)
  }

  /**
   * Wait until the output after the previous match shows `what`; resolves with the output
   * from the previous match to the end of this one (later waits look after it).
   */
  async waitFor (what: string | RegExp, timeoutMs = WAIT_MS): Promise<string> {
    return await new Promise((resolve, reject) => {
      const check = (): void => {
        const rest = this.plain.slice(this.mark)
        let end = -1
        if (typeof what === 'string') {
          const i = rest.indexOf(what)
          if (i !== -1) end = i + what.length
        } else {
          const m = rest.match(what)
          if (m?.index != null) end = m.index + m[0].length
        }
        if (end === -1) return
        done()
        this.mark += end
        resolve(rest.slice(0, end))
      }
      const timer = setTimeout(() => {
        done()
        reject(new Error(`the screen did not show ${String(what)} within ${timeoutMs} ms; since the last match:\n${this.plain.slice(this.mark)}`))
      }, timeoutMs)
      const done = (): void => { clearTimeout(timer); this.events.off('write', check) }
      this.events.on('write', check)
      check()
    })
  }
}
