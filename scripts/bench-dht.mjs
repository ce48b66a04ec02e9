#!/usr/bin/env node
// DHT put/get latency in a network of separate processes on loopback: a supernode and
// N peers (each a child process running scripts/bench-dht-worker.mjs). Each record is
// put by one peer and read by another. Prints a table and writes JSON under results/.
//
//   npm run bench:dht -- --peers 10 --records 50
import { fork } from 'node:child_process'
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir, cpus, totalmem, loadavg } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { createSignedRecord, encodeSignedRecord, generateAccountKeys, keyIdOf, presenceKey } from '@conf-chat/protocol'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')
const WORKER = join(ROOT, 'scripts', 'bench-dht-worker.mjs')

const { values: flags } = parseArgs({
  options: {
    peers: { type: 'string', default: '10' },
    records: { type: 'string', default: '50' },
    warmup: { type: 'string', default: '5' },
    'join-timeout': { type: 'string', default: '60000' },
    out: { type: 'string', default: join(ROOT, 'results') },
    help: { type: 'boolean', default: false }
  }
})
if (flags.help) {
  console.log('usage: node scripts/bench-dht.mjs [--peers 10] [--records 50] [--warmup 5] [--join-timeout 60000] [--out results/]')
  process.exit(0)
}
const PEERS = Number(flags.peers)
const RECORDS = Number(flags.records)
const WARMUP = Number(flags.warmup)
const JOIN_TIMEOUT = Number(flags['join-timeout'])
if (!(PEERS >= 2) || !(RECORDS >= 1) || !(WARMUP >= 0)) {
  console.error('--peers must be at least 2 and --records at least 1')
  process.exit(2)
}

/** A child process running one peer, with request/response over IPC. */
class Worker {
  constructor (name, dataDir) {
    this.name = name
    this.dataDir = dataDir
    this.nextId = 0
    this.pending = new Map()
    this.waiters = new Map()
    this.child = fork(WORKER, [], { serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    this.exited = new Promise(resolve => this.child.once('exit', resolve))
    this.child.on('message', msg => {
      if (msg.id != null && this.pending.has(msg.id)) {
        const { resolve, reject } = this.pending.get(msg.id)
        this.pending.delete(msg.id)
        if (msg.type === 'error') reject(new Error(`${this.name}: ${msg.message}`))
        else resolve(msg)
      } else if (msg.type === 'error') {
        for (const w of this.waiters.values()) w.reject(new Error(`${this.name}: ${msg.message}`))
      } else {
        this.waiters.get(msg.type)?.resolve(msg)
      }
    })
    this.child.once('exit', code => {
      const err = new Error(`${this.name} exited with code ${code}`)
      for (const p of this.pending.values()) p.reject(err)
      for (const w of this.waiters.values()) w.reject(err)
    })
  }

  /** Resolves with the next message of `type` (not a response). */
  next (type, timeoutMs) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.name}: no "${type}" within ${timeoutMs} ms`)), timeoutMs)
      this.waiters.set(type, {
        resolve: msg => { clearTimeout(timer); this.waiters.delete(type); resolve(msg) },
        reject: err => { clearTimeout(timer); this.waiters.delete(type); reject(err) }
      })
    })
  }

  request (msg) {
    const id = this.nextId++
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject })
      this.child.send({ ...msg, id })
    })
  }

  async stop () {
    if (this.child.exitCode != null || this.child.signalCode != null) return
    if (this.child.connected) this.child.send({ type: 'stop' })
    const timer = setTimeout(() => { this.child.kill('SIGKILL') }, 10_000)
    await this.exited
    clearTimeout(timer)
  }
}

function stats (xs) {
  const s = [...xs].sort((a, b) => a - b)
  const q = p => s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))]
  const round = x => Math.round(x * 10) / 10
  return { n: s.length, median: round(q(0.5)), p95: round(q(0.95)), min: round(s[0]), max: round(s.at(-1)), mean: round(s.reduce((a, b) => a + b, 0) / s.length) }
}

function newRecord (seq) {
  const keys = generateAccountKeys()
  const key = presenceKey(keyIdOf(keys.signPublic))
  const payload = { username: 'bench', status: 'online', peerId: 'bench', addrs: [], expiresAt: Date.now() + 60_000, updatedAt: Date.now() }
  return { key, value: encodeSignedRecord(createSignedRecord(key, seq, payload, keys)) }
}

const workers = []
const dirs = []
let stopping = false

async function stopAll () {
  if (stopping) return
  stopping = true
  await Promise.allSettled(workers.map(w => w.stop()))
  await Promise.allSettled(dirs.map(d => rm(d, { recursive: true, force: true })))
}

process.on('SIGINT', () => { void stopAll().then(() => process.exit(130)) })
process.on('SIGTERM', () => { void stopAll().then(() => process.exit(143)) })

async function startWorker (name, init) {
  const dataDir = await mkdtemp(join(tmpdir(), 'conf-chat-bench-'))
  dirs.push(dataDir)
  const w = new Worker(name, dataDir)
  workers.push(w)
  const started = w.next('started', JOIN_TIMEOUT)
  const joined = init.bootstrap != null ? w.next('joined', JOIN_TIMEOUT) : undefined
  const t = performance.now()
  w.child.send({ type: 'start', init: { dataDir, host: '127.0.0.1', port: 0, ...init } })
  const info = await started
  if (joined != null) await joined
  return { w, info, joinMs: performance.now() - t }
}

async function main () {
  console.log(`bench-dht: supernode + ${PEERS} peers (separate processes), ${RECORDS} records, ${WARMUP} warm-up`)
  const loadBefore = loadavg()[0]
  const t0 = performance.now()
  const supernode = await startWorker('supernode', {})
  const bootstrap = [supernode.info.addrs[0]]
  // peers start a few at a time: all at once would measure the 2 cores' start-up contention
  const peers = []
  const joinMs = []
  for (let i = 0; i < PEERS; i += 5) {
    const batch = await Promise.all(Array.from({ length: Math.min(5, PEERS - i) }, (_, j) => startWorker(`peer-${i + j}`, { bootstrap })))
    for (const p of batch) { peers.push(p.w); joinMs.push(p.joinMs) }
  }
  const networkUpMs = performance.now() - t0
  console.log(`network up in ${(networkUpMs / 1000).toFixed(1)} s (process start to joined: median ${stats(joinMs).median} ms)`)
  const idle = await Promise.all(peers.map(p => p.request({ type: 'stats' })))

  const puts = []
  const gets = []
  const replicas = []
  let failures = 0
  for (let i = 0; i < WARMUP + RECORDS; i++) {
    const writerIndex = i % PEERS
    const readerIndex = (writerIndex + 1 + Math.floor(Math.random() * (PEERS - 1))) % PEERS
    const { key, value } = newRecord(1)
    const put = await peers[writerIndex].request({ type: 'put', key, value })
    const get = await peers[readerIndex].request({ type: 'get', key })
    if (i < WARMUP) continue
    puts.push(put.ms)
    gets.push(get.ms)
    replicas.push(put.replicas)
    if (get.value == null || Buffer.compare(Buffer.from(get.value), Buffer.from(value)) !== 0) failures++
  }
  const after = await Promise.all(peers.map(p => p.request({ type: 'stats' })))

  const result = {
    bench: 'dht',
    date: new Date().toISOString(),
    // the 1-minute load average: other work on the machine slows every figure here
    machine: { node: process.version, cpus: cpus().length, memGiB: Math.round(totalmem() / 2 ** 30), loadBefore, loadAfter: loadavg()[0] },
    peers: PEERS,
    records: RECORDS,
    putMs: stats(puts),
    getMs: stats(gets),
    putReplicas: stats(replicas),
    getFailures: failures,
    joinMs: stats(joinMs),
    networkUpMs: Math.round(networkUpMs),
    peerRssMiB: { idle: stats(idle.map(s => s.rss / 2 ** 20)), afterRun: stats(after.map(s => s.rss / 2 ** 20)) },
    connectionsPerPeer: stats(after.map(s => s.connections))
  }
  const row = (name, s, unit = 'ms') => `${name.padEnd(22)} ${String(s.n).padStart(4)} ${String(s.median).padStart(9)} ${String(s.p95).padStart(9)} ${String(s.min).padStart(9)} ${String(s.max).padStart(9)}  ${unit}`
  console.log('')
  console.log(`${'what'.padEnd(22)} ${'n'.padStart(4)} ${'median'.padStart(9)} ${'p95'.padStart(9)} ${'min'.padStart(9)} ${'max'.padStart(9)}`)
  console.log(row('put', result.putMs))
  console.log(row('get (other peer)', result.getMs))
  console.log(row('put replicas', result.putReplicas, ''))
  console.log(row('join (spawn->joined)', result.joinMs))
  console.log(row('peer RSS idle', result.peerRssMiB.idle, 'MiB'))
  console.log(row('peer RSS after', result.peerRssMiB.afterRun, 'MiB'))
  console.log(`get failures: ${failures}/${RECORDS}; load average ${loadBefore.toFixed(1)} before, ${result.machine.loadAfter.toFixed(1)} after (${cpus().length} cores)`)
  await mkdir(flags.out, { recursive: true })
  const file = join(flags.out, `bench-dht-${PEERS}p-${result.date.replace(/[:.]/g, '-')}.json`)
  await writeFile(file, JSON.stringify(result, null, 2) + '\n')
  console.log(`wrote ${file}`)
  return failures === 0 ? 0 : 1
}

let code = 1
try {
  code = await main()
} catch (err) {
  console.error(`bench-dht failed: ${err?.message ?? err}`)
} finally {
  await stopAll()
}
process.exit(code)
