// Shared parts of the benchmark scripts (scripts/bench-*.mjs): worker processes over
// fork + IPC, statistics, temp dirs, stopping everything on SIGINT/SIGTERM, and the JSON
// result file with the machine's description. The worker side is ./bench-worker.mjs.
import { fork } from 'node:child_process'
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises'
import { arch, cpus, freemem, loadavg, platform, release, tmpdir, totalmem } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { MALLOC_ENV, NODE_FLAGS } from '../../packages/program/dist/heap.js'

/** The repository root. */
export const ROOT = fileURLToPath(new URL('../..', import.meta.url))
export const RESULTS = join(ROOT, 'results')

export const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

/**
 * Summary of a sample (ms, MiB, ...): n, median (the mean of the two middle values for an
 * even n), p95 and p99 (nearest rank), mean, min, max, rounded to `digits` decimals.
 * An empty sample gives n = 0 and nulls.
 */
export function stats (xs, digits = 3) {
  const s = xs.filter(x => Number.isFinite(x)).sort((a, b) => a - b)
  if (s.length === 0) return { n: 0, median: null, p95: null, p99: null, mean: null, min: null, max: null }
  const f = 10 ** digits
  const round = x => Math.round(x * f) / f
  const rank = p => s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))]
  const m = s.length >> 1
  const median = s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2
  return {
    n: s.length,
    median: round(median),
    p95: round(rank(0.95)),
    p99: round(rank(0.99)),
    mean: round(s.reduce((a, b) => a + b, 0) / s.length),
    min: round(s[0]),
    max: round(s.at(-1))
  }
}

/** `x` with `digits` decimals, or '-' when there is no figure. */
export const fmt = (x, digits = 1) => x == null || !Number.isFinite(x) ? '-' : x.toFixed(digits)

/** The machine the figures come from (the load averages are what a reader most needs). */
export function machineInfo () {
  const cpu = cpus()
  return {
    node: process.version,
    platform: `${platform()} ${release()} ${arch()}`,
    cpuModel: cpu[0]?.model ?? 'unknown',
    cores: cpu.length,
    memGiB: Math.round(totalmem() / 2 ** 30 * 10) / 10,
    freeMemGiB: Math.round(freemem() / 2 ** 30 * 10) / 10,
    loadavg: loadavg().map(x => Math.round(x * 100) / 100)
  }
}

/** Load averages (1, 5, 15 min) as one short string. */
export const loadString = l => l.map(x => x.toFixed(1)).join(' ')

/**
 * A benchmark worker's node flags. The workers run with the programs' V8 flags and malloc
 * setting (packages/program/src/heap.ts), so that a peer process measures as the programs
 * would, and with `--cpu-prof` when BENCH_CPU_PROF=<dir> is set (to see where the time
 * goes). A process hosting `peers` peers gets the young generation that many programs
 * would have between them (1 MiB per semi-space each), up to V8's default maximum of 16
 * MiB: 25 peers in one process with one program's young generation spent a quarter of
 * their busy time collecting garbage (bench:scale at 200 peers, BENCH_CPU_PROF).
 */
export const workerArgs = ({ peers = 1 } = {}) => [
  ...NODE_FLAGS.filter(flag => !flag.startsWith('--max-semi-space-size=')),
  `--max-semi-space-size=${Math.min(16, Math.max(1, peers))}`,
  ...(profileDir() != null ? ['--cpu-prof', '--cpu-prof-dir', profileDir()] : [])
]

/** BENCH_CPU_PROF's directory; undefined when it is unset or empty (no profiles). */
const profileDir = () => process.env.BENCH_CPU_PROF === '' ? undefined : process.env.BENCH_CPU_PROF

/**
 * With BENCH_CPU_PROF set, prints a point in time on the profiles' clock (µs since boot,
 * monotonic, as `timeDeltas` add up from a profile's `startTime`): to sum a phase's samples.
 */
export function profileMark (what, workers = []) {
  if (profileDir() == null) return
  const pids = workers.map(w => `${w.name} ${w.child.pid}`).join(', ')
  console.log(`profile mark ${what}: ${process.hrtime.bigint() / 1000n}${pids === '' ? '' : ` (${pids})`}`)
}

/**
 * A child process running a worker script (see ./bench-worker.mjs): requests
 * { id, type, ... } over IPC, answered by { id, type: 'ok' | 'error', ... }.
 */
export class Worker {
  constructor (name, script, { execArgv = workerArgs() } = {}) {
    this.name = name
    this.nextId = 0
    this.pending = new Map()
    this.spawnedAt = performance.now()
    this.child = fork(script, [], { execArgv, env: { ...process.env, ...MALLOC_ENV }, serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    this.exited = new Promise(resolve => this.child.once('exit', (code, signal) => resolve({ code, signal })))
    this.child.on('message', msg => {
      const p = this.pending.get(msg?.id)
      if (p == null) return
      this.pending.delete(msg.id)
      if (msg.type === 'error') p.reject(new Error(`${this.name}: ${msg.message}`))
      else p.resolve(msg)
    })
    this.child.once('exit', (code, signal) => {
      for (const p of this.pending.values()) p.reject(new Error(`${this.name} exited with ${signal ?? `code ${code}`}`))
      this.pending.clear()
    })
  }

  get running () { return this.child.exitCode == null && this.child.signalCode == null }

  /** Send a command; its answer (rejects on an error answer, on exit, or after `timeoutMs`). */
  request (type, msg = {}, { timeoutMs } = {}) {
    const id = this.nextId++
    return new Promise((resolve, reject) => {
      let timer
      if (timeoutMs != null) {
        timer = setTimeout(() => {
          this.pending.delete(id)
          reject(new Error(`${this.name}: no answer to "${type}" within ${timeoutMs} ms`))
        }, timeoutMs)
      }
      this.pending.set(id, {
        resolve: v => { clearTimeout(timer); resolve(v) },
        reject: e => { clearTimeout(timer); reject(e) }
      })
      if (!this.running || !this.child.connected) {
        this.pending.get(id).reject(new Error(`${this.name} is not running`))
        this.pending.delete(id)
        return
      }
      this.child.send({ ...msg, type, id })
    })
  }

  /** A ChatNode method in the worker, its result as JSON. */
  async call (method, ...args) { return (await this.request('call', { method, args })).result }

  /** Ask the worker to stop (it stops its peer cleanly); SIGKILL after `graceMs`. */
  async stop (graceMs = 10_000) {
    if (!this.running) return
    if (this.child.connected) this.child.send({ type: 'stop' })
    else this.child.kill('SIGTERM')
    const timer = setTimeout(() => { this.child.kill('SIGKILL') }, graceMs)
    await this.exited
    clearTimeout(timer)
  }
}

/**
 * One benchmark run: the workers, other child processes and temp dirs it made (all
 * stopped and removed by stopAll(), also on SIGINT/SIGTERM), the machine's load when
 * it began, and its result file.
 */
export class BenchRun {
  constructor (bench, { workerScript } = {}) {
    this.bench = bench
    this.workerScript = workerScript
    this.workers = []
    this.children = new Set()
    this.dirs = []
    this.cleanups = []
    this.stopping = undefined
    this.startedAt = new Date()
    this.machineBefore = machineInfo()
    this.interrupted = undefined
    for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]]) {
      process.once(signal, () => {
        this.interrupted = { signal, code }
        console.error(`bench-${this.bench}: ${signal}, stopping its processes`)
        void this.stopAll().finally(() => process.exit(code))
      })
    }
  }

  async tempDir () {
    const dir = await mkdtemp(join(tmpdir(), 'conf-chat-bench-'))
    this.dirs.push(dir)
    return dir
  }

  /** Another child process (spawned by the script itself) to kill at the end. */
  track (child) {
    this.children.add(child)
    child.once('exit', () => this.children.delete(child))
    return child
  }

  /**
   * Fork a worker with a fresh data dir and send it `start` ({ role, init }); resolves
   * with the worker, its answer, and the time from fork to that answer.
   */
  async startWorker (name, role, init = {}, { timeoutMs = 120_000 } = {}) {
    const dataDir = await this.tempDir()
    const t = performance.now()
    const w = new Worker(name, this.workerScript)
    this.workers.push(w)
    const info = await w.request('start', { role, init: { dataDir, host: '127.0.0.1', port: 0, ...init } }, { timeoutMs })
    return { w, info, ms: performance.now() - t }
  }

  /** Something else to undo when the run ends or is interrupted (before the temp dirs go). */
  atStop (cleanup) {
    this.cleanups.push(cleanup)
  }

  /** Stop every worker and child process, run the cleanups, remove the temp dirs (once). */
  stopAll () {
    this.stopping ??= (async () => {
      await Promise.allSettled(this.workers.map(w => w.stop()))
      for (const cleanup of this.cleanups.reverse()) await Promise.resolve().then(cleanup).catch(err => { console.error(`cleanup failed: ${err?.message ?? err}`) })
      for (const child of this.children) child.kill('SIGKILL') // only what this run spawned
      await Promise.allSettled(this.dirs.map(d => rm(d, { recursive: true, force: true })))
    })()
    return this.stopping
  }

  /**
   * Write `result` as JSON to `<outDir>/bench-<stem>-<time>.json`, with the benchmark's
   * name, date, duration and the machine (load averages before and after). Returns the path.
   */
  async writeResult (outDir, result, stem = this.bench) {
    const date = new Date()
    const { loadavg: loadavgBefore, ...machine } = this.machineBefore
    const doc = {
      bench: this.bench,
      date: date.toISOString(),
      durationMs: date - this.startedAt,
      machine: { ...machine, loadavgBefore, loadavgAfter: machineInfo().loadavg },
      ...result
    }
    await mkdir(outDir, { recursive: true })
    const file = join(outDir, `bench-${stem}-${date.toISOString().replace(/[:.]/g, '-')}.json`)
    await writeFile(file, JSON.stringify(doc, null, 2) + '\n')
    return file
  }

  /** One line about the machine and its load, for the printed table. */
  machineLine () {
    const m = this.machineBefore
    return `machine: node ${m.node}, ${m.cores} cores, ${m.memGiB} GiB; load average ${loadString(m.loadavg)} before, ${loadString(loadavg())} after`
  }

  /**
   * Run `main` (resolving with an exit code, default 0), then stop everything and exit
   * with that code; an error is printed and exits 1.
   */
  async run (main) {
    let code = 1
    try {
      code = (await main()) ?? 0
    } catch (err) {
      // a worker stopped by the signal makes the step it was in fail: not worth a stack
      if (this.interrupted != null) code = this.interrupted.code
      else console.error(`bench-${this.bench} failed: ${err?.stack ?? err}`)
    } finally {
      await this.stopAll()
    }
    process.exit(code)
  }
}
