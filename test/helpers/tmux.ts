/**
 * Runs a program in a pseudo-terminal: a tmux server of its own (a private socket, so
 * nothing touches the user's tmux), one session, one pane. Keys go in with send-keys,
 * the screen comes out with capture-pane. The pane stays after the program exits, so
 * its exit status can be read. `kill()` ends the server and, if still alive, the
 * program by its pid.
 */
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { rm } from 'node:fs/promises'

/** Generous: two cores shared with other engineers' test runs. */
export const SCREEN_WAIT_MS = 60_000
/** How often waitFor() looks at the screen again (not a limit on anything). */
const POLL_MS = 150

export interface TmuxInit {
  /** The program and its arguments (executed directly, no shell). */
  command: string[]
  cwd: string
  /** The whole environment of the program. */
  env: NodeJS.ProcessEnv
  width?: number
  height?: number
}

export class TmuxScreen {
  readonly socket: string
  readonly session = 'tui'
  /** The program's pid (the pane's process). */
  pid?: number
  /** The server's socket file (tmux leaves it behind after kill-server). */
  socketPath?: string
  private readonly env: NodeJS.ProcessEnv
  private killed = false

  private constructor (env: NodeJS.ProcessEnv) {
    this.socket = `conf-chat-tui-${process.pid}-${randomBytes(4).toString('hex')}`
    this.env = env
  }

  static async start (init: TmuxInit): Promise<TmuxScreen> {
    const screen = new TmuxScreen(init.env)
    const { width = 100, height = 30 } = init
    try {
      // a config of nobody's, the pane kept after the program ends, a long scrollback
      await screen.tmux('-f', '/dev/null', 'new-session', '-d', '-s', screen.session, '-x', String(width), '-y', String(height),
        '-c', init.cwd, '--', ...init.command, ';',
        'set-option', '-t', screen.session, 'remain-on-exit', 'on', ';',
        'set-option', '-t', screen.session, 'history-limit', '10000')
      const [pid, socketPath] = (await screen.tmux('display-message', '-p', '-t', screen.session, '#{pane_pid} #{socket_path}')).split(' ')
      screen.pid = Number(pid)
      screen.socketPath = socketPath
    } catch (err) {
      await screen.kill()
      throw err
    }
    return screen
  }

  /** Run a tmux command on this screen's server; resolves with its output. */
  async tmux (...args: string[]): Promise<string> {
    return await new Promise((resolve, reject) => {
      execFile('tmux', ['-L', this.socket, ...args], { env: this.env, timeout: 30_000 }, (err, stdout, stderr) => {
        if (err != null) reject(new Error(`tmux ${args[0] ?? ''} failed: ${stderr.trim() || err.message}`))
        else resolve(stdout.trim())
      })
    })
  }

  /** Type text as it is (no key names). */
  async type (text: string): Promise<void> {
    await this.tmux('send-keys', '-t', this.session, '-l', text)
  }

  /** Press keys by tmux name: Enter, Down, Up, C-c, C-d... */
  async press (...keys: string[]): Promise<void> {
    await this.tmux('send-keys', '-t', this.session, ...keys)
  }

  /** What the terminal shows now, wrapped lines joined, trailing blanks dropped. */
  async visible (): Promise<string> {
    return (await this.tmux('capture-pane', '-p', '-J', '-t', this.session)).replace(/\s+$/, '')
  }

  /** Everything the terminal showed, scrollback included. */
  async everything (): Promise<string> {
    return (await this.tmux('capture-pane', '-p', '-J', '-S', '-', '-t', this.session)).replace(/\s+$/, '')
  }

  /** Wait until the visible screen matches `re`; resolves with that screen. */
  async waitFor (re: RegExp, timeoutMs = SCREEN_WAIT_MS): Promise<string> {
    const deadline = Date.now() + timeoutMs
    let screen = ''
    for (;;) {
      screen = await this.visible()
      if (re.test(screen)) return screen
      if (Date.now() > deadline) throw new Error(`the screen did not show ${re} within ${timeoutMs} ms; it shows:\n${screen}`)
      await new Promise(resolve => setTimeout(resolve, POLL_MS))
    }
  }

  /** The program's exit status once it has ended (the pane remains). */
  async waitForExit (timeoutMs = SCREEN_WAIT_MS): Promise<number> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const [dead, status] = (await this.tmux('display-message', '-p', '-t', this.session, '#{pane_dead} #{pane_dead_status}')).split(' ')
      if (dead === '1') return Number(status)
      if (Date.now() > deadline) throw new Error(`the program did not exit within ${timeoutMs} ms; the screen shows:\n${await this.visible()}`)
      await new Promise(resolve => setTimeout(resolve, POLL_MS))
    }
  }

  /** End this tmux server (and with it the pane); then the program itself if it survived. */
  async kill (): Promise<void> {
    if (this.killed) return
    this.killed = true
    await this.tmux('kill-server').catch(() => {}) // already gone
    if (this.pid != null && alive(this.pid)) {
      try { process.kill(this.pid, 'SIGKILL') } catch {}
    }
    if (this.socketPath != null) await rm(this.socketPath, { force: true })
  }
}

function alive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}
