#!/usr/bin/env node
// DHT put/get latency in a network of separate processes on loopback: a supernode and
// N peers (each a child process running scripts/bench-dht-worker.mjs). Each record is
// put by one peer and read by another. The baseline, measured in the same network: a
// libp2p ping round trip between two peers (one request/response stream on an open
// connection, what each hop of a DHT query costs at least). With --opendht, also OpenDHT
// (C++, UDP: Debian's dhtnode) with as many nodes in the same run, and the ratio of each
// figure to it. Also: one DHT RPC on a new stream, on a kept stream and through kad-dht
// as the peer wires it; the DHT wiring's counters; and at the end each peer's idle CPU
// (from /proc/<pid>/stat over a quiet window). Prints a table and writes JSON under results/.
//
//   npm run bench:dht -- --peers 10 --records 50 [--opendht] [--idle-window 20000]
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { createSignedRecord, encodeSignedRecord, generateAccountKeys, keyIdOf, presenceKey } from '@conf-chat/protocol'
import { BenchRun, RESULTS, ROOT, fmt, profileMark, sleep, stats } from './lib/bench.mjs'
import { runOpenDht } from './lib/opendht.mjs'
import { cpuMs, idleCpu } from './lib/proc.mjs'
import { DHT_PROTOCOL } from '@conf-chat/node/network'

const { values: flags } = parseArgs({
  options: {
    peers: { type: 'string', default: '10' },
    records: { type: 'string', default: '50' },
    warmup: { type: 'string', default: '5' },
    pings: { type: 'string', default: '50' },
    batch: { type: 'string', default: '5' },
    settle: { type: 'string', default: '2000' },
    'join-timeout': { type: 'string', default: '180000' },
    opendht: { type: 'boolean', default: false },
    'idle-settle': { type: 'string', default: '30000' },
    'idle-window': { type: 'string', default: '20000' },
    out: { type: 'string', default: RESULTS },
    help: { type: 'boolean', default: false }
  }
})
if (flags.help) {
  console.log(`usage: node scripts/bench-dht.mjs [--peers 10] [--records 50] [--warmup 5] [--pings 50]
       [--batch 5 (peers started at a time)] [--settle 2000 (ms idle after the network is up)]
       [--join-timeout 180000 (ms, per peer: fork to joined)] [--out results/]
       [--idle-settle 30000 (ms after the last get before idle CPU is sampled)] [--idle-window 20000 (ms sampled; 0: skip)]
       [--opendht (also N dhtnode processes as the baseline; installs dhtnode and python3-opendht with apt-get as root)]`)
  process.exit(0)
}
const PEERS = Number(flags.peers)
const RECORDS = Number(flags.records)
const WARMUP = Number(flags.warmup)
const PINGS = Number(flags.pings)
const BATCH = Number(flags.batch)
const SETTLE_MS = Number(flags.settle)
const JOIN_TIMEOUT = Number(flags['join-timeout'])
const IDLE_SETTLE_MS = Number(flags['idle-settle'])
const IDLE_WINDOW_MS = Number(flags['idle-window'])
if (!(PEERS >= 2) || !(RECORDS >= 1) || !(WARMUP >= 0) || !(BATCH >= 1) || !(PINGS >= 1)) {
  console.error('--peers must be at least 2, --records, --pings and --batch at least 1')
  process.exit(2)
}

const run = new BenchRun('dht', { workerScript: join(ROOT, 'scripts', 'bench-dht-worker.mjs') })

function newRecord (seq) {
  const keys = generateAccountKeys()
  const key = presenceKey(keyIdOf(keys.signPublic))
  const payload = { username: 'bench', status: 'online', peerId: 'bench', addrs: [], expiresAt: Date.now() + 60_000, updatedAt: Date.now() }
  return { key, value: encodeSignedRecord(createSignedRecord(key, seq, payload, keys)) }
}

const sum = (xs, f) => xs.reduce((a, x) => a + (f(x) ?? 0), 0)

const ratio = (a, b) => a == null || b == null || b === 0 ? null : Math.round(a / b * 10) / 10

async function main () {
  console.log(`bench-dht: supernode + ${PEERS} peers (separate processes), ${RECORDS} records, ${WARMUP} warm-up`)
  const t0 = performance.now()
  const supernode = await run.startWorker('supernode', 'peer', {}, { timeoutMs: JOIN_TIMEOUT })
  const bootstrap = [supernode.info.addrs[0]]
  // peers start a few at a time: all at once would measure the 2 cores' start-up
  // contention (and a 60-peer network would time out joining)
  const peers = []
  const joinMs = []
  for (let i = 0; i < PEERS; i += BATCH) {
    const batch = await Promise.all(Array.from({ length: Math.min(BATCH, PEERS - i) }, (_, j) =>
      run.startWorker(`peer-${i + j}`, 'peer', { bootstrap }, { timeoutMs: JOIN_TIMEOUT })))
    for (const p of batch) { peers.push(p); joinMs.push(p.ms) }
    if (PEERS > BATCH) console.log(`  ${peers.length}/${PEERS} joined (${((performance.now() - t0) / 1000).toFixed(1)} s)`)
  }
  const networkUpMs = performance.now() - t0
  console.log(`network up in ${(networkUpMs / 1000).toFixed(1)} s (fork to joined: median ${fmt(stats(joinMs).median, 0)} ms)`)
  await sleep(SETTLE_MS)
  const idle = await Promise.all(peers.map(p => p.w.request('stats')))

  // baseline: libp2p ping between two peers of this network
  const ping = await peers[0].w.request('ping', { peerId: peers[1].info.peerId, addrs: peers[1].info.addrs, n: PINGS, warmup: 5 })

  const puts = []
  const putTails = []
  const gets = []
  const replicas = []
  let failures = 0
  const pids = [supernode, ...peers].map(p => p.w.child.pid)
  const rpcsOf = async () => sum((await Promise.all(peers.map(p => p.w.request('dhtStats')))).map(r => r.stats), s => (s?.pool?.opened ?? 0) + (s?.pool?.reused ?? 0))
  const rpcsBefore = await rpcsOf()
  const cpuBefore = await Promise.all(pids.map(cpuMs))
  let ownCpuMs = 0
  const loopStart = performance.now()
  profileMark('puts and gets start')
  for (let i = 0; i < WARMUP + RECORDS; i++) {
    const writerIndex = i % PEERS
    const readerIndex = (writerIndex + 1 + Math.floor(Math.random() * (PEERS - 1))) % PEERS
    const { key, value } = newRecord(1)
    const writerCpu = await cpuMs(peers[writerIndex].w.child.pid)
    const put = await peers[writerIndex].w.request('put', { key, value })
    ownCpuMs += await cpuMs(peers[writerIndex].w.child.pid) - writerCpu
    const readerCpu = await cpuMs(peers[readerIndex].w.child.pid)
    const get = await peers[readerIndex].w.request('get', { key })
    ownCpuMs += await cpuMs(peers[readerIndex].w.child.pid) - readerCpu
    if (i < WARMUP) continue
    puts.push(put.ms)
    putTails.push(put.allMs ?? put.ms)
    gets.push(get.ms)
    replicas.push(put.replicas)
    if (get.value == null || Buffer.compare(Buffer.from(get.value), Buffer.from(value)) !== 0) failures++
  }
  // CPU of every process of the network (the benchmark's own process not counted) while
  // the puts and gets ran: what one put and one get cost the network together
  const cpuAfter = await Promise.all(pids.map(cpuMs))
  profileMark('puts and gets end')
  const loopMs = performance.now() - loopStart
  const networkCpuMs = cpuAfter.reduce((a, ms, i) => a + ms - cpuBefore[i], 0)
  const cpuPerPutGetMs = networkCpuMs / (WARMUP + RECORDS)
  // RPCs the peers sent (new and pooled streams) while the puts and gets ran
  const rpcsPerPutGet = (await rpcsOf() - rpcsBefore) / (WARMUP + RECORDS)
  const after = await Promise.all(peers.map(p => p.w.request('stats')))
  // one DHT RPC three ways, between two peers that already have a connection
  const rpc = await peers[0].w.request('rpc', { peerId: peers[1].info.peerId, addrs: peers[1].info.addrs, protocol: DHT_PROTOCOL, n: PINGS, warmup: 5 })
  const wiring = (await Promise.all(peers.map(p => p.w.request('dhtStats')))).map(r => r.stats).filter(s => s != null)
  const dht = wiring.length === 0
    ? undefined
    : {
        streamsOpened: sum(wiring, s => s.pool?.opened),
        streamsReused: sum(wiring, s => s.pool?.reused),
        streamsDropped: sum(wiring, s => s.pool?.dropped),
        streamsDrained: sum(wiring, s => s.pool?.drained),
        closerPeersPassed: sum(wiring, s => s.discovery?.passed),
        closerPeersDropped: sum(wiring, s => s.discovery?.dropped),
        peerInfoHits: sum(wiring, s => s.peerInfo?.hits),
        peerInfoReads: sum(wiring, s => s.peerInfo?.misses)
      }
  let idleCpuPct
  if (IDLE_WINDOW_MS > 0) {
    // the settle: in the 20-30 s after work ends V8's memory reducer runs a few full
    // collections (with the programs' small young generation more of the work's garbage
    // was promoted, so they are larger): sampled 6 s after the last get, each peer showed
    // ~1 % of a core, after 40 s 0.025 % (10 peers, 2026-12-06). Idle is what comes after.
    console.log(`idle CPU: ${IDLE_SETTLE_MS / 1000} s settle, then ${IDLE_WINDOW_MS / 1000} s sampled...`)
    await sleep(IDLE_SETTLE_MS)
    const pcts = await idleCpu([supernode, ...peers].map(p => p.w.child.pid), IDLE_WINDOW_MS)
    idleCpuPct = { supernode: Math.round(pcts[0] * 1000) / 1000, peers: stats(pcts.slice(1), 3) }
  }
  // the baseline after the libp2p part, with its processes stopped: the two do not share the cores
  let opendht
  if (flags.opendht) {
    await Promise.allSettled([supernode, ...peers].map(p => p.w.stop()))
    const o = await runOpenDht(run, { nodes: PEERS, records: RECORDS, warmup: WARMUP })
    opendht = { nodes: PEERS, putMs: stats(o.putMs, 3), getMs: stats(o.getMs, 3), getFailures: o.failures }
  }

  const result = {
    peers: PEERS,
    records: RECORDS,
    warmup: WARMUP,
    batch: BATCH,
    settleMs: SETTLE_MS,
    putMs: stats(puts, 1),
    putAllHoldersMs: stats(putTails, 1),
    getMs: stats(gets, 1),
    pingMs: stats(ping.ms, 3),
    putReplicas: stats(replicas, 1),
    getFailures: failures,
    /** CPU of all the network's processes per put + get (ms), and the share of the machine's cores they kept busy. */
    networkCpu: {
      perPutGetMs: Math.round(cpuPerPutGetMs),
      /** of it, the writer's CPU during its put plus the reader's during its get */
      writerReaderMs: Math.round(ownCpuMs / (WARMUP + RECORDS)),
      busyCores: Math.round(networkCpuMs / loopMs * 100) / 100,
      rpcsPerPutGet: Math.round(rpcsPerPutGet * 10) / 10,
      perRpcMs: rpcsPerPutGet > 0 ? Math.round(cpuPerPutGetMs / rpcsPerPutGet * 100) / 100 : null
    },
    joinMs: stats(joinMs, 0),
    networkUpMs: Math.round(networkUpMs),
    peerRssMiB: { idle: stats(idle.map(s => s.rss / 2 ** 20), 1), afterRun: stats(after.map(s => s.rss / 2 ** 20), 1) },
    connectionsPerPeer: stats(after.map(s => s.connections), 1),
    rpcMs: { newStream: stats(rpc.newStream, 3), sameStream: stats(rpc.sameStream, 3), viaDht: stats(rpc.viaDht, 3) },
    ...(dht != null ? { dht } : {}),
    ...(idleCpuPct != null ? { idleCpuPct, idleWindowMs: IDLE_WINDOW_MS } : {}),
    ...(opendht != null ? { opendht, ratio: { put: ratio(stats(puts, 1).median, opendht.putMs.median), get: ratio(stats(gets, 1).median, opendht.getMs.median) } } : {})
  }
  const row = (name, s, unit = 'ms', d = 1) => `${name.padEnd(26)} ${String(s.n).padStart(4)} ${fmt(s.median, d).padStart(9)} ${fmt(s.p95, d).padStart(9)} ${fmt(s.p99, d).padStart(9)} ${fmt(s.min, d).padStart(9)} ${fmt(s.max, d).padStart(9)}  ${unit}`
  console.log('')
  console.log(`${'what'.padEnd(26)} ${'n'.padStart(4)} ${'median'.padStart(9)} ${'p95'.padStart(9)} ${'p99'.padStart(9)} ${'min'.padStart(9)} ${'max'.padStart(9)}`)
  console.log(row('put', result.putMs))
  console.log(row('put, every holder answered', result.putAllHoldersMs))
  console.log(row('get (other peer)', result.getMs))
  console.log(row('baseline: libp2p ping', result.pingMs, 'ms', 2))
  console.log(row('DHT RPC, new stream', result.rpcMs.newStream, 'ms', 2))
  console.log(row('DHT RPC, kept stream', result.rpcMs.sameStream, 'ms', 2))
  console.log(row('DHT RPC via kad-dht', result.rpcMs.viaDht, 'ms', 2))
  console.log(row('put replicas at return', result.putReplicas, ''))
  console.log(`network CPU per put + get: ${result.networkCpu.perPutGetMs} ms (all processes; ${result.networkCpu.busyCores} cores busy on average while they ran), of it the writer and reader ${result.networkCpu.writerReaderMs} ms; ${result.networkCpu.rpcsPerPutGet} DHT RPCs per put + get, ${result.networkCpu.perRpcMs} ms of CPU per RPC`)
  console.log(row('join (fork->joined)', result.joinMs, 'ms', 0))
  console.log(row('peer RSS idle', result.peerRssMiB.idle, 'MiB'))
  console.log(row('peer RSS after', result.peerRssMiB.afterRun, 'MiB'))
  console.log(row('connections per peer', result.connectionsPerPeer, ''))
  if (idleCpuPct != null) console.log(row(`peer idle CPU (${IDLE_WINDOW_MS / 1000} s)`, idleCpuPct.peers, '% of a core', 3) + `; supernode ${fmt(idleCpuPct.supernode, 3)} %`)
  if (dht != null) console.log(`DHT streams: ${dht.streamsOpened} opened, ${dht.streamsReused} reused, ${dht.streamsDrained} kept after their caller gave up, ${dht.streamsDropped} dropped; closer peers: ${dht.closerPeersPassed} passed, ${dht.closerPeersDropped} dropped; peer-store reads for closer-peer lists: ${dht.peerInfoHits} from memory, ${dht.peerInfoReads} from the store (all peers)`)
  if (opendht != null) {
    console.log(row(`OpenDHT put (${PEERS} dhtnode)`, opendht.putMs, 'ms', 2))
    console.log(row(`OpenDHT get (${PEERS} dhtnode)`, opendht.getMs, 'ms', 2))
    console.log(`ratio to OpenDHT (medians): put ${fmt(result.ratio.put, 0)}x, get ${fmt(result.ratio.get, 0)}x; OpenDHT get failures: ${opendht.getFailures}/${RECORDS}`)
  }
  console.log(`get failures: ${failures}/${RECORDS}`)
  console.log(run.machineLine())
  const file = await run.writeResult(flags.out, result, `dht-${PEERS}p`)
  console.log(`wrote ${file}`)
  return failures === 0 ? 0 : 1
}

await run.run(main)
