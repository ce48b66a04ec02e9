/**
 * Runs the real `supernode` and `node` programs (the bundles that users run, built into
 * dist/ by `npm run build`) as child processes, each with its own CONF_CHAT_HOME, and
 * reads their output line by line. Everything a `Programs` starts (processes by pid,
 * temp dirs, ports held) goes in `cleanup()`.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { EventEmitter } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { MALLOC_ENV, NODE_FLAGS } from '@conf-chat/program/heap'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
export const SUPERNODE_MAIN = join(ROOT, 'packages/supernode/dist/conf-chat-supernode.js')
export const NODE_MAIN = join(ROOT, 'packages/cli/dist/conf-chat.js')

/** Generous: two cores shared with other engineers' test runs. */
export const WAIT_MS = 60_000

export interface Exit { code: number | null, signal: NodeJS.Signals | null }

export interface StartOptions {
  /** CONF_CHAT_HOME of the program. */
  home: string
  args?: string[]
  /** Extra environment; undefined removes a variable. */
  env?: Record<string, string | undefined>
  /**
   * Run the program through this command, e.g. `['ip', 'netns', 'exec', ns]`: it is given
   * `node <main> <args...>` and must exec it, so that the child's pid is the program's.
   */
  wrapper?: string[]
}

/** A running program: its output lines, its stdin, its exit. */
export class Program {
  readonly name: string
  readonly child: ChildProcessWithoutNullStreams
  /** The environment the program was started with. */
  readonly env: NodeJS.ProcessEnv
  readonly stdout: string[] = []
  readonly stderr: string[] = []
  exitStatus?: Exit
  readonly exited: Promise<Exit>
  private readonly events = new EventEmitter()
  /** waitForLine() looks at stdout lines from here on, so each line is matched once. */
  private cursor = 0

  constructor (name: string, main: string, options: StartOptions) {
    this.name = name
    const env: NodeJS.ProcessEnv = this.env = {}
    for (const [k, v] of Object.entries(process.env)) {
      if (!k.startsWith('CONF_CHAT_') && k !== 'DEBUG') env[k] = v
    }
    Object.assign(env, MALLOC_ENV, { NO_COLOR: '1', CONF_CHAT_HOME: options.home })
    for (const [k, v] of Object.entries(options.env ?? {})) {
      if (v == null) delete env[k]
      else env[k] = v
    }
    const argv = [process.execPath, ...NODE_FLAGS, main, ...(options.args ?? [])]
    const [command, ...args] = [...(options.wrapper ?? []), ...argv] as [string, ...string[]]
    this.child = spawn(command, args, { cwd: ROOT, env, stdio: 'pipe' })
    this.child.stdin.on('error', () => {}) // writing to a program that already exited
    createInterface({ input: this.child.stdout }).on('line', line => {
      this.stdout.push(line)
      this.events.emit('change')
    })
    createInterface({ input: this.child.stderr }).on('line', line => {
      this.stderr.push(line)
      this.events.emit('change')
    })
    this.exited = new Promise(resolve => {
      this.child.once('close', (code, signal) => {
        this.exitStatus = { code, signal }
        this.events.emit('change')
        resolve(this.exitStatus)
      })
    })
  }

  get pid (): number { return this.child.pid! }

  get running (): boolean { return this.exitStatus == null }

  /** What the program printed, for failure messages. */
  transcript (): string {
    return `--- ${this.name} stdout:\n${this.stdout.join('\n')}\n--- ${this.name} stderr:\n${this.stderr.join('\n')}\n--- exit: ${JSON.stringify(this.exitStatus ?? null)}`
  }

  /** The next stdout line (after those already matched) that matches `re`. */
  async waitForLine (re: RegExp, timeoutMs = WAIT_MS): Promise<RegExpMatchArray> {
    return await new Promise((resolve, reject) => {
      const check = (): void => {
        for (let i = this.cursor; i < this.stdout.length; i++) {
          const match = this.stdout[i]!.match(re)
          if (match != null) {
            this.cursor = i + 1
            done()
            resolve(match)
            return
          }
        }
        if (!this.running) {
          done()
          reject(new Error(`${this.name} exited before printing a line matching ${re}\n${this.transcript()}`))
        }
      }
      const timer = setTimeout(() => {
        done()
        reject(new Error(`${this.name} printed no line matching ${re} within ${timeoutMs} ms\n${this.transcript()}`))
      }, timeoutMs)
      const done = (): void => {
        clearTimeout(timer)
        this.events.off('change', check)
      }
      this.events.on('change', check)
      check()
    })
  }

  /** Until stderr (the log) holds `count` lines matching `re`, counted from its first line. */
  async waitForStderr (re: RegExp, count = 1, timeoutMs = WAIT_MS): Promise<void> {
    await this.waitForCount(this.stderr, 'logged', re, count, timeoutMs)
  }

  /** Until stdout holds `count` lines matching `re`, counted from its first line (the cursor of waitForLine stays). */
  async waitForLines (re: RegExp, count: number, timeoutMs = WAIT_MS): Promise<void> {
    await this.waitForCount(this.stdout, 'printed', re, count, timeoutMs)
  }

  private async waitForCount (lines: string[], verb: string, re: RegExp, count: number, timeoutMs: number): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const check = (): void => {
        if (lines.filter(l => re.test(l)).length >= count) { done(); resolve(); return }
        if (!this.running) { done(); reject(new Error(`${this.name} exited before it ${verb} ${count} lines matching ${re}\n${this.transcript()}`)) }
      }
      const timer = setTimeout(() => {
        done()
        reject(new Error(`${this.name} ${verb} fewer than ${count} lines matching ${re} within ${timeoutMs} ms\n${this.transcript()}`))
      }, timeoutMs)
      const done = (): void => {
        clearTimeout(timer)
        this.events.off('change', check)
      }
      this.events.on('change', check)
      check()
    })
  }

  /** Send one line to the program's stdin. */
  send (line: string): void {
    this.child.stdin.write(line + '\n')
  }

  /** Close stdin (end of input). */
  endInput (): void {
    this.child.stdin.end()
  }

  kill (signal: NodeJS.Signals = 'SIGTERM'): void {
    if (this.running) process.kill(this.pid, signal)
  }

  async waitForExit (timeoutMs = WAIT_MS): Promise<Exit> {
    let timer: NodeJS.Timeout | undefined
    try {
      return await Promise.race([
        this.exited,
        new Promise<never>((_resolve, reject) => {
          timer = setTimeout(() => { reject(new Error(`${this.name} did not exit within ${timeoutMs} ms\n${this.transcript()}`)) }, timeoutMs)
        })
      ])
    } finally {
      clearTimeout(timer)
    }
  }
}

/** Starts programs, temp homes and port holders for one test, and removes them all. */
export class Programs {
  private readonly started: Program[] = []
  private readonly dirs: string[] = []
  private readonly servers: Server[] = []
  private count = 0

  async home (): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), 'conf-chat-e2e-'))
    this.dirs.push(dir)
    return dir
  }

  supernode (options: StartOptions): Program {
    return this.start(`supernode#${++this.count}`, SUPERNODE_MAIN, options)
  }

  node (options: StartOptions): Program {
    return this.start(`node#${++this.count}`, NODE_MAIN, options)
  }

  /** A loopback port that was free a moment ago (nobody listens on it now). */
  async freePort (): Promise<number> {
    const server = await this.listen(0)
    const port = (server.address() as { port: number }).port
    await new Promise<void>(resolve => server.close(() => { resolve() }))
    this.servers.splice(this.servers.indexOf(server), 1)
    return port
  }

  /** A loopback port held by a listening server until cleanup. */
  async busyPort (): Promise<number> {
    const server = await this.listen(0)
    return (server.address() as { port: number }).port
  }

  async cleanup (): Promise<void> {
    for (const program of this.started) {
      if (program.running) {
        try { program.kill('SIGKILL') } catch {}
        await program.exited
      }
    }
    await Promise.all(this.servers.map(async s => { await new Promise(resolve => s.close(resolve)) }))
    await Promise.all(this.dirs.map(async d => { await rm(d, { recursive: true, force: true }) }))
  }

  private start (name: string, main: string, options: StartOptions): Program {
    const program = new Program(name, main, options)
    this.started.push(program)
    return program
  }

  private async listen (port: number): Promise<Server> {
    const server = createServer()
    this.servers.push(server)
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(port, '127.0.0.1', () => { resolve() })
    })
    return server
  }
}
