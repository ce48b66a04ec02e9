#!/usr/bin/env node
// Direct-message figures between peer PROCESSES on loopback (each peer a child process
// running scripts/bench-messages-worker.mjs, built packages from dist/):
//   1. live round trip, send to acknowledgement: sendMessage() (the user's path: outbox,
//      history, seal, sign, stream, the recipient's checks, ack) and the chat protocol
//      alone (a made envelope), next to a raw node:net round trip measured in the same run;
//   2. one-way messages per second in one conversation;
//   3. time from login until N (1,000) queued offline messages are all shown.
// Prints a table and writes JSON under results/.
//
//   npm run build && node scripts/bench-messages.mjs [--rtt 500] [--oneway 2000] [--offline 1000]
import { fork } from 'node:child_process'
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir, cpus, totalmem, loadavg } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')
const WORKER = join(ROOT, 'scripts', 'bench-messages-worker.mjs')

const { values: flags } = parseArgs({
  options: {
    rtt: { type: 'string', default: '500' },
    warmup: { type: 'string', default: '50' },
    oneway: { type: 'string', default: '2000' },
    window: { type: 'string', default: '16' },
    offline: { type: 'string', default: '1000' },
    holders: { type: 'string', default: '3' },
    out: { type: 'string', default: join(ROOT, 'results') },
    help: { type: 'boolean', default: false }
  }
})
if (flags.help) {
  console.log('usage: node scripts/bench-messages.mjs [--rtt 500] [--warmup 50] [--oneway 2000] [--window 16] [--offline 1000] [--holders 3] [--out results/]')
  process.exit(0)
}
const RTT = Number(flags.rtt)
const WARMUP = Number(flags.warmup)
const ONEWAY = Number(flags.oneway)
const WINDOW = Number(flags.window)
const OFFLINE = Number(flags.offline)
const HOLDERS = Number(flags.holders)
const PASSWORD = 'bench password'

class Worker {
  constructor (name) {
    this.name = name
    this.nextId = 0
    this.pending = new Map()
    // BENCH_CPU_PROF=<dir>: a V8 CPU profile of every peer process, to see where the time goes
    const execArgv = process.env.BENCH_CPU_PROF != null ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_CPU_PROF] : []
    this.child = fork(WORKER, [], { execArgv, serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    this.exited = new Promise(resolve => this.child.once('exit', resolve))
    this.child.on('message', msg => {
      const p = this.pending.get(msg?.id)
      if (p == null) return
      this.pending.delete(msg.id)
      if (msg.type === 'error') p.reject(new Error(`${this.name}: ${msg.message}`))
      else p.resolve(msg)
    })
    this.child.once('exit', code => {
      for (const p of this.pending.values()) p.reject(new Error(`${this.name} exited with code ${code}`))
      this.pending.clear()
    })
  }

  request (type, msg = {}) {
    const id = this.nextId++
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject })
      this.child.send({ ...msg, type, id })
    })
  }

  async call (method, ...args) { return (await this.request('call', { method, args })).result }

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
  const round = x => Math.round(x * 1000) / 1000
  return { n: s.length, median: round(q(0.5)), p99: round(q(0.99)), mean: round(s.reduce((a, b) => a + b, 0) / s.length), min: round(s[0]), max: round(s.at(-1)) }
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

async function startWorker (name, role, init) {
  const dataDir = await mkdtemp(join(tmpdir(), 'conf-chat-bench-'))
  dirs.push(dataDir)
  const w = new Worker(name)
  workers.push(w)
  const info = await w.request('start', { role, init: { dataDir, host: '127.0.0.1', port: 0, ...init } })
  return { w, info }
}

async function main () {
  // the machine is shared: its load goes with the figures
  const loadBefore = loadavg()[0]
  console.log(`bench-messages: supernode + ${HOLDERS} DHT peers + 2 users, each a process; ${RTT} round trips, ${ONEWAY} one-way, ${OFFLINE} offline`)
  const supernode = await startWorker('supernode', 'peer', {})
  const bootstrap = [supernode.info.addrs[0]]
  await Promise.all(Array.from({ length: HOLDERS }, (_, i) => startWorker(`peer-${i}`, 'peer', { bootstrap })))
  // default settings (bcrypt, scrypt, presence, timeouts): the figures are the product's
  const { w: alice } = await startWorker('alice', 'node', { bootstrap })
  const { w: bob } = await startWorker('bob', 'node', { bootstrap })
  await alice.call('register', { username: 'alice', password: PASSWORD, fullName: 'Alice' })
  await bob.call('register', { username: 'bob', password: PASSWORD, fullName: 'Bob' })
  await alice.call('addFriend', 'bob')
  for (let i = 0; i < 100 && (await bob.call('friendRequests')).incoming.length === 0; i++) await new Promise(resolve => setTimeout(resolve, 100))
  await bob.call('acceptFriend', 'alice')
  for (let i = 0; i < 100 && (await alice.call('friends')).length === 0; i++) await new Promise(resolve => setTimeout(resolve, 100))

  // 1. round trips: raw TCP between the same two processes, then the chat protocol, then sendMessage
  const { port } = await bob.request('tcpEchoServer')
  const tcp = await alice.request('tcpRtt', { port, n: RTT, warmup: WARMUP, size: 64 })
  const protocol = await alice.request('rttEnvelopes', { to: 'bob', n: RTT, warmup: WARMUP })
  const messages = await alice.request('rttMessages', { to: 'bob', n: RTT, warmup: WARMUP })

  // 2. one way, one conversation: one at a time, then WINDOW calls in flight
  const before = await bob.request('received')
  const seq = await alice.request('throughput', { to: 'bob', n: Math.min(ONEWAY, 1000), window: 1 })
  const win = await alice.request('throughput', { to: 'bob', n: ONEWAY, window: WINDOW })
  const after = await bob.request('received')
  const shownAtBob = after.live - before.live

  // 3. offline: bob away, alice queues OFFLINE messages, bob logs in
  let queued = { ms: NaN, statuses: {} }
  let offline = { loginMs: NaN, shownMs: NaN, shown: 0 }
  if (OFFLINE > 0) {
    await bob.call('logout')
    queued = await alice.request('sendMany', { to: 'bob', n: OFFLINE, concurrency: 50 })
    offline = await bob.request('loginAndWait', { username: 'bob', password: PASSWORD, expected: OFFLINE, timeoutMs: 300_000 })
  }

  const rss = await Promise.all(workers.map(w => w.request('stats')))
  const result = {
    bench: 'messages',
    date: new Date().toISOString(),
    machine: { node: process.version, cpus: cpus().length, memGiB: Math.round(totalmem() / 2 ** 30), loadavg1mBefore: loadBefore, loadavg1mAfter: loadavg()[0] },
    setup: { holders: HOLDERS, rtt: RTT, warmup: WARMUP, oneway: ONEWAY, window: WINDOW, offline: OFFLINE },
    rttMs: {
      tcp: stats(tcp.ms),
      chatProtocol: { ...stats(protocol.ms), failed: protocol.failed },
      sendMessage: { ...stats(messages.ms), statuses: messages.statuses }
    },
    oneWay: {
      sequential: { messages: Math.min(ONEWAY, 1000), ms: Math.round(seq.ms), perSecond: Math.round(Math.min(ONEWAY, 1000) / seq.ms * 1000), delivered: seq.delivered },
      windowed: { messages: ONEWAY, window: WINDOW, ms: Math.round(win.ms), perSecond: Math.round(ONEWAY / win.ms * 1000), delivered: win.delivered },
      shownAtRecipient: shownAtBob
    },
    offline: {
      messages: OFFLINE,
      queueMs: Math.round(queued.ms),
      queuedPerSecond: Math.round(OFFLINE / queued.ms * 1000),
      statuses: queued.statuses,
      loginMs: Math.round(offline.loginMs),
      loginToAllShownMs: Math.round(offline.shownMs),
      shown: offline.shown
    },
    rssMiB: Object.fromEntries(workers.map((w, i) => [w.name, Math.round(rss[i].rss / 2 ** 20)]))
  }

  const row = (name, s) => `${name.padEnd(34)} ${String(s.n).padStart(5)} ${s.median.toFixed(3).padStart(9)} ${s.p99.toFixed(3).padStart(9)} ${s.mean.toFixed(3).padStart(9)} ${s.min.toFixed(3).padStart(9)} ${s.max.toFixed(3).padStart(9)}`
  console.log('')
  console.log(`machine: ${result.machine.cpus} cores, 1-min load average ${loadBefore.toFixed(1)} before, ${result.machine.loadavg1mAfter.toFixed(1)} after`)
  console.log(`${'round trip (ms)'.padEnd(34)} ${'n'.padStart(5)} ${'median'.padStart(9)} ${'p99'.padStart(9)} ${'mean'.padStart(9)} ${'min'.padStart(9)} ${'max'.padStart(9)}`)
  console.log(row('raw TCP, 64 B (node:net)', result.rttMs.tcp))
  console.log(row('chat protocol, envelope -> ack', result.rttMs.chatProtocol))
  console.log(row('sendMessage -> delivered (ack)', result.rttMs.sendMessage))
  console.log('')
  console.log(`one way, one conversation: ${result.oneWay.sequential.perSecond} msg/s one at a time, ${result.oneWay.windowed.perSecond} msg/s with ${WINDOW} in flight (${shownAtBob} shown at bob)`)
  console.log(`offline: ${OFFLINE} queued in ${(queued.ms / 1000).toFixed(1)} s (${result.offline.queuedPerSecond}/s, ${JSON.stringify(queued.statuses)})`)
  console.log(`offline: login ${result.offline.loginMs} ms; login -> all ${offline.shown} shown ${result.offline.loginToAllShownMs} ms`)
  await mkdir(flags.out, { recursive: true })
  const file = join(flags.out, `bench-messages-${result.date.replace(/[:.]/g, '-')}.json`)
  await writeFile(file, JSON.stringify(result, null, 2) + '\n')
  console.log(`\nwrote ${file}`)
}

main()
  .catch(err => { console.error(err); process.exitCode = 1 })
  .finally(() => stopAll())
