/**
 * Runs a program in a pseudo-terminal: a tmux server of its own (a private socket, so
 * nothing touches the user's tmux), one session, one pane. Keys go in with send-keys,
 * the screen comes out with capture-pane. The pane stays after the program exits, so
 * its exit status can be read. `kill()` ends the server and, if still alive, the
 * program by its pid.
 */
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { readFileSync, readdirSync } from 'node:fs'
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

  /** Whether the program rang the terminal bell (tmux's bell flag of its window). */
  async bellFlag (): Promise<boolean> {
    return await this.tmux('display-message', '-p', '-t', this.session, '#{window_bell_flag}') === '1'
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

  /** The program's exit code once it has ended (the pane remains), or the signal that ended it. */
  async waitForExit (timeoutMs = SCREEN_WAIT_MS): Promise<number | string> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const [dead, status, signal] = (await this.tmux('display-message', '-p', '-t', this.session, '#{pane_dead}:#{pane_dead_status}:#{pane_dead_signal}')).split(':')
      // the pane dies when the pty closes; its status comes when tmux has reaped the process
      if (dead === '1' && status !== '') return Number(status)
      if (dead === '1' && signal != null && signal !== '') return `signal ${signal}`
      // tmux 3.3 can leave the process unreaped for long on a loaded machine: a zombie's
      // exit status is in /proc (field 52 of stat, as waitpid reports it)
      const zombie = dead === '1' && this.pid != null ? zombieExit(this.pid) : undefined
      if (zombie != null) return zombie
      if (Date.now() > deadline) {
        const state = this.pid != null ? processState(this.pid) : 'unknown'
        throw new Error(`the program did not exit within ${timeoutMs} ms (pane ${dead === '1' ? 'dead' : 'alive'}, process ${state}); the screen shows:\n${await this.visible()}`)
      }
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

/** The exit code (or `signal N`) of a process that has ended but is not reaped yet. */
function zombieExit (pid: number): number | string | undefined {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ')
    if (fields[0] !== 'Z') return undefined
    const status = Number(fields[52 - 3])
    if (!Number.isInteger(status)) return undefined
    return (status & 0x7f) === 0 ? (status >> 8) & 0xff : `signal ${status & 0x7f}`
  } catch {
    return undefined // gone: tmux has reaped it, and will tell
  }
}

/** The process's state letter from /proc (R running, S sleeping, Z zombie...), for failure messages. */
function processState (pid: number): string {
  try {
    const state = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ')[0] ?? '?'
    const tasks = readdirSync(`/proc/${pid}/task`).map(t => {
      const stat = readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8')
      let wchan = ''
      try { wchan = readFileSync(`/proc/${pid}/task/${t}/wchan`, 'utf8') } catch {}
      return `${stat.match(/\((.*)\)/)?.[1] ?? t}:${stat.replace(/^.*\) /, '').split(' ')[0] ?? '?'}${wchan !== '' && wchan !== '0' ? `@${wchan}` : ''}`
    })
    return `${state}, threads ${tasks.join(' ')}`
  } catch {
    return 'gone'
  }
}
