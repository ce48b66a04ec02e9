import { fork, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { ChatNodeInit } from '@conf-chat/node'

const SCRIPT = fileURLToPath(new URL('./chat-worker.mjs', import.meta.url))

/** A ChatNode in a child process (see chat-worker.mjs), driven over IPC. */
export class ChatWorker {
  readonly child: ChildProcess
  readonly events: Array<{ event: string, detail: any }> = []
  readonly exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>
  private readonly calls = new Map<number, { resolve: (v: any) => void, reject: (e: Error) => void }>()
  private nextId = 1

  private constructor (child: ChildProcess) {
    this.child = child
    this.exited = new Promise(resolve => { child.once('exit', (code, signal) => { resolve({ code, signal }) }) })
    void this.exited.then(() => {
      for (const c of this.calls.values()) c.reject(new Error('worker exited'))
      this.calls.clear()
    })
    child.on('message', (msg: any) => {
      if (msg?.event != null) { this.events.push({ event: msg.event, detail: msg.detail }); return }
      const call = this.calls.get(msg?.id)
      if (call == null) return
      this.calls.delete(msg.id)
      if (msg.ok === true) call.resolve(msg.result)
      else call.reject(Object.assign(new Error(msg.error?.message), { name: msg.error?.name }))
    })
  }

  /** Fork a worker and wait until its node has started. */
  static async start (init: Partial<ChatNodeInit> & { dataDir: string }, timeoutMs = 30_000): Promise<ChatWorker> {
    // the worker runs dist/ with plain node: none of vitest's flags
    const child = fork(SCRIPT, [], { execArgv: [], serialization: 'advanced', stdio: ['ignore', 'ignore', 'pipe', 'ipc'], env: { ...process.env, CHAT_WORKER_INIT: JSON.stringify(init) } })
    const worker = new ChatWorker(child)
    let stderr = ''
    child.stderr?.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-4000) })
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => { reject(new Error(`worker did not start: ${stderr}`)) }, timeoutMs)
      child.on('message', (msg: any) => { if (msg?.ready === true) { clearTimeout(timer); resolve() } })
      void worker.exited.then(() => { clearTimeout(timer); reject(new Error(`worker exited: ${stderr}`)) })
    })
    return worker
  }

  async call<T = any> (method: string, ...args: unknown[]): Promise<T> {
    const id = this.nextId++
    return await new Promise<T>((resolve, reject) => {
      this.calls.set(id, { resolve, reject })
      this.child.send({ id, method, args })
    })
  }

  /** Kill the process (only this worker's pid) and wait for it to be gone. */
  async kill (signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (this.child.exitCode == null && this.child.signalCode == null) this.child.kill(signal)
    await this.exited
  }
}
