#!/usr/bin/env node
// The network at scale, on this machine: for each N of --peers, a supernode (the
// bootstrap, a process of its own) and N plain DHT peers (ChatPeer) sharing a few
// processes (--per-process each; at least 2, so that a get runs in another process than
// its put), started --batch at a time per process, each waiting until it joined before
// the next batch starts. Then, per N:
//   - join: a peer's start call to its `network:joined` (dial + self-lookup), and the time
//     until all N joined;
//   - put and get: a record put by a peer of one process, read by a peer of another as
//     the product reads (the namespace's quorum); p50/p95, failed gets;
//   - RPCs and rounds per lookup from kad-dht's query events (scripts/lib/lookup-trace.mjs:
//     RPCs = SEND_QUERY events; rounds = hops, a routing-table peer is round 1, a peer
//     first named by a round-r peer's answer is round r + 1), next to log2 N; how long a
//     put's lookup took (until its first PUT_VALUE), and of the lookups' RPCs the share
//     that dialed first, the time to open the stream (dialing or not) and to the answer;
//   - idle CPU per peer: each process's utime + stime (/proc/<pid>/stat) over a quiet
//     window, divided by its peers; the supernode's on its own;
//   - RSS per peer (process RSS / its peers), a process's first peer and each extra peer
//     (a process's young generation is its peers' together, 1 MiB each up to 16: workerArgs).
// A table of all N with how each figure grows per doubling of N. Then, in the network
// of --users-at peers (default: the largest N), --members users (each a ChatNode in a
// process of its own, default settings): a conference of all, each send timed until every
// member shows it (p95 per member and for all), fallbacks to mailboxes counted; then one
// member logs out, --offline messages are queued for it, and it logs in: login -> all shown.
// Prints tables and writes JSON (results/bench-scale-<time>.json) with the machine and
// its load average. Every process is tracked and stopped by pid, temp dirs removed, also
// on failure and Ctrl-C.
//
//   npm run bench:scale -- --peers 10,30,100,200 [--per-process 25] [--quick]
import { loadavg } from 'node:os'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { createSignedRecord, encodeSignedRecord, generateAccountKeys, keyIdOf, presenceKey } from '@conf-chat/protocol'
import { BenchRun, RESULTS, ROOT, Worker, fmt, loadString, profileMark, sleep, stats, workerArgs } from './lib/bench.mjs'
import { PASSWORD, makeConference, measureConference } from './lib/conference.mjs'
import { cpuMs, idleCpu } from './lib/proc.mjs'
import { printTable } from './lib/scale-table.mjs'

const QUICK = { peers: '10,30', records: '10', warmup: '2', 'idle-settle': '3000', 'idle-window': '5000', members: '5', sends: '5', 'conf-warmup': '1', 'conf-settle': '5000', offline: '100' }
const DEFAULTS = { peers: '10,30,100,200', 'per-process': '25', batch: '5', records: '30', warmup: '3', settle: '2000', 'idle-settle': '30000', 'idle-window': '20000', 'join-timeout': '120000', members: '20', sends: '20', 'conf-warmup': '3', gap: '200', 'conf-settle': '30000', offline: '1000' }
const { values: given } = parseArgs({
  options: {
    ...Object.fromEntries(Object.keys({ ...DEFAULTS, ...QUICK }).map(k => [k, { type: 'string' }])),
    'users-at': { type: 'string' },
    quick: { type: 'boolean', default: false },
    out: { type: 'string', default: RESULTS },
    help: { type: 'boolean', default: false }
  }
})
if (given.help) {
  console.log(`usage: node scripts/bench-scale.mjs [--peers 10,30,100,200 (one run per N)] [--per-process 25] [--batch 5 (peers starting at a time in a process)]
       [--records 30] [--warmup 3] [--settle 2000 (ms after the network is up)] [--join-timeout 120000 (ms per peer)]
       [--idle-settle 30000 (ms after the work; see bench-dht.mjs)] [--idle-window 20000 (ms sampled; 0: skip)]
       [--users-at N (the network the users join; default the largest N; 0: no users)] [--members 20] [--sends 20] [--conf-warmup 3]
       [--gap 200 (ms between sends)] [--conf-settle 30000 (ms idle after the conference is made)] [--offline 1000 (0: skip)]
       [--quick (smoke run: ${Object.entries(QUICK).map(([k, v]) => `--${k} ${v}`).join(' ')})] [--out results/]`)
  process.exit(0)
}
// precedence: a flag given, then --quick's value, then the default
const flag = k => given[k] ?? (given.quick ? QUICK[k] : undefined) ?? DEFAULTS[k]
const NS = flag('peers').split(',').map(Number)
const PER_PROCESS = Number(flag('per-process'))
const BATCH = Number(flag('batch'))
const RECORDS = Number(flag('records'))
const WARMUP = Number(flag('warmup'))
const SETTLE_MS = Number(flag('settle'))
const JOIN_TIMEOUT = Number(flag('join-timeout'))
const IDLE_SETTLE_MS = Number(flag('idle-settle'))
const IDLE_WINDOW_MS = Number(flag('idle-window'))
const MEMBERS = Number(flag('members'))
const SENDS = Number(flag('sends'))
const CONF_WARMUP = Number(flag('conf-warmup'))
const GAP_MS = Number(flag('gap'))
const CONF_SETTLE_MS = Number(flag('conf-settle'))
const OFFLINE = Number(flag('offline'))
const USERS_AT = given['users-at'] != null ? Number(given['users-at']) : Math.max(...NS)
const STEP_TIMEOUT_MS = 180_000
if (NS.some(n => !(n >= 2)) || !(PER_PROCESS >= 1) || !(BATCH >= 1) || !(RECORDS >= 1) || !(WARMUP >= 0) || !(MEMBERS >= 0) || (MEMBERS > 0 && MEMBERS < 2)) {
  console.error('--peers: a list of numbers of at least 2; --per-process, --batch, --records at least 1; --members 0 or at least 2')
  process.exit(2)
}
if (USERS_AT !== 0 && !NS.includes(USERS_AT)) {
  console.error(`--users-at ${USERS_AT} is not one of --peers ${NS.join(',')}`)
  process.exit(2)
}

/** Targets of the scale figures (issue 17), checked at TARGET_N peers. */
const TARGET_N = 200
const TARGETS = { getP50Ms: 100, putP50Ms: 300, failedGets: 0, idlePctPerPeer: 0.3, confEachP95Ms: 200, confFallbacks: 0, offlineShownMs: 1000 }

const SCRIPT = join(ROOT, 'scripts', 'bench-scale-worker.mjs')
const run = new BenchRun('scale', { workerScript: SCRIPT })
const log = (...args) => console.log(...args)
const MiB = 2 ** 20
const elapsed = t0 => `${((performance.now() - t0) / 1000).toFixed(1)} s`

function newRecord () {
  const keys = generateAccountKeys()
  const key = presenceKey(keyIdOf(keys.signPublic))
  const payload = { username: 'bench', status: 'online', peerId: 'bench', addrs: [], expiresAt: Date.now() + 600_000, updatedAt: Date.now() }
  return { key, value: encodeSignedRecord(createSignedRecord(key, 1, payload, keys)) }
}

const pick = n => Math.floor(Math.random() * n)

/** N peers over max(2, ceil(N / per-process)) processes, as even as can be. */
function processSizes (n) {
  const p = Math.max(2, Math.ceil(n / PER_PROCESS))
  return Array.from({ length: p }, (_, i) => Math.floor(n / p) + (i < n % p ? 1 : 0))
}

/** Stop `workers` (this round's) and remove `dirs`, so that the next round starts on a quiet machine. */
async function endRound (workers, dirs) {
  await Promise.allSettled(workers.map(w => w.stop(30_000)))
  run.workers = run.workers.filter(w => !workers.includes(w))
  await Promise.allSettled(dirs.map(d => rm(d, { recursive: true, force: true })))
  run.dirs = run.dirs.filter(d => !dirs.includes(d))
}

/** One network of N peers: build it, measure, and (at --users-at) the users' part. */
async function round (N) {
  const t0 = performance.now()
  const firstWorker = run.workers.length
  const firstDir = run.dirs.length
  const sizes = processSizes(N)
  log(`\n== ${N} peers in ${sizes.length} processes (${sizes.join(', ')}) + a supernode; load average ${loadString(loadavg())}`)
  try {
    const supernode = await run.startWorker(`supernode-${N}`, 'peer', {}, { timeoutMs: STEP_TIMEOUT_MS })
    const bootstrap = [supernode.info.addrs[0]]
    const procs = []
    for (let p = 0; p < sizes.length; p++) {
      const dir = await run.tempDir()
      const w = new Worker(`peers-${N}-${p}`, SCRIPT, { execArgv: workerArgs({ peers: sizes[p] }) })
      run.workers.push(w)
      const r = await w.request('startPeers', { dir, count: sizes[p], batch: BATCH, bootstrap, joinTimeoutMs: JOIN_TIMEOUT }, { timeoutMs: JOIN_TIMEOUT * Math.ceil(sizes[p] / BATCH) + 60_000 })
      procs.push({ w, ...r })
      log(`  ${procs.reduce((a, x) => a + x.peers.length, 0)}/${N} joined (${elapsed(t0)}, load ${loadavg()[0].toFixed(1)})`)
    }
    const networkUpMs = performance.now() - t0
    const joinMs = procs.flatMap(x => x.peers.map(p => p.joinMs)).filter(ms => ms != null)
    const joinsFailed = N - joinMs.length
    log(`network up in ${(networkUpMs / 1000).toFixed(1)} s; join median ${fmt(stats(joinMs).median, 0)} ms, p95 ${fmt(stats(joinMs).p95, 0)} ms${joinsFailed > 0 ? `; ${joinsFailed} not joined within ${JOIN_TIMEOUT / 1000} s` : ''}`)
    await sleep(SETTLE_MS)

    // put on a peer of one process, get from a peer of another
    const puts = []; const gets = []; const replicas = []
    const putRpcs = []; const putLookupRpcs = []; const putLookupMs = []; const rpcOpenConnected = []; const rpcOpenDialed = []; const rpcAnswer = []; const putRounds = []; const getRpcs = []; const getRounds = []
    const failedGets = []
    // CPU of every process of the network over the measured puts and gets (their background work included)
    const pids = [supernode.w.child.pid, ...procs.map(x => x.w.child.pid)]
    let cpuBefore = []
    for (let i = 0; i < WARMUP + RECORDS; i++) {
      if (i === WARMUP) {
        profileMark(`puts and gets at ${N} start`, [supernode.w, ...procs.map(x => x.w)])
        cpuBefore = await Promise.all(pids.map(cpuMs))
      }
      const a = i % procs.length
      const b = (a + 1 + pick(procs.length - 1)) % procs.length
      const writer = pick(procs[a].peers.length)
      const reader = pick(procs[b].peers.length)
      const { key, value } = newRecord()
      const put = await procs[a].w.request('put', { index: writer, key, value }, { timeoutMs: STEP_TIMEOUT_MS })
      const get = await procs[b].w.request('get', { index: reader, key }, { timeoutMs: STEP_TIMEOUT_MS })
      if (i < WARMUP) continue
      puts.push(put.ms); replicas.push(put.replicas)
      putRpcs.push(put.trace.rpcs); putLookupRpcs.push(put.trace.lookupRpcs); if (put.trace.lookupMs != null) putLookupMs.push(put.trace.lookupMs)
      for (const t of [put.trace, get.trace]) { rpcOpenConnected.push(...t.rpcMs.openConnected); rpcOpenDialed.push(...t.rpcMs.openDialed); rpcAnswer.push(...t.rpcMs.answer) }
      putRounds.push(put.trace.rounds)
      gets.push(get.ms); getRpcs.push(get.trace.rpcs); getRounds.push(get.trace.rounds)
      if (get.value == null || Buffer.compare(Buffer.from(get.value), Buffer.from(value)) !== 0) {
        failedGets.push({ status: get.status, ms: Math.round(get.ms), replicasPut: put.replicas, trace: get.trace })
      }
    }
    profileMark(`puts and gets at ${N} end`)
    const cpuAfter = await Promise.all(pids.map(cpuMs))
    const cpuPerPutGetMs = cpuAfter.reduce((a, ms, i) => a + ms - cpuBefore[i], 0) / RECORDS
    log(`put median ${fmt(stats(puts).median, 1)} ms, get median ${fmt(stats(gets).median, 1)} ms, ${failedGets.length} failed gets; network CPU per put + get ${fmt(cpuPerPutGetMs, 0)} ms`)

    const after = await Promise.all(procs.map(x => x.w.request('peerStats')))
    const superStats = await supernode.w.request('stats')
    let idle
    if (IDLE_WINDOW_MS > 0) {
      log(`idle CPU: ${IDLE_SETTLE_MS / 1000} s settle, then ${IDLE_WINDOW_MS / 1000} s sampled`)
      await sleep(IDLE_SETTLE_MS)
      const pcts = await idleCpu([supernode.w.child.pid, ...procs.map(x => x.w.child.pid)], IDLE_WINDOW_MS)
      const perPeer = procs.map((x, i) => pcts[i + 1] / x.peers.length)
      idle = {
        supernodePct: round3(pcts[0]),
        processPct: stats(pcts.slice(1), 3),
        perPeerPct: stats(perPeer, 4),
        allPeersPct: round3(pcts.slice(1).reduce((s, x) => s + x, 0))
      }
    }
    const result = {
      peers: N,
      processes: sizes,
      networkUpMs: Math.round(networkUpMs),
      joinMs: stats(joinMs, 0),
      joinsFailed,
      putMs: stats(puts, 1),
      putLookupMs: stats(putLookupMs, 1),
      // one lookup RPC (FIND_NODE or GET_VALUE): opening its stream on a connection we had, or dialing first; then request to answer
      rpcMs: { openConnected: stats(rpcOpenConnected, 1), openDialed: stats(rpcOpenDialed, 1), answer: stats(rpcAnswer, 1) },
      getMs: stats(gets, 1),
      networkCpuPerPutGetMs: Math.round(cpuPerPutGetMs),
      failedGets: failedGets.length,
      failed: failedGets,
      putReplicas: stats(replicas, 1),
      lookups: {
        log2N: round3(Math.log2(N)),
        getRpcs: stats(getRpcs, 1),
        getRounds: stats(getRounds, 1),
        putRpcs: stats(putRpcs, 1),
        putLookupRpcs: stats(putLookupRpcs, 1),
        putRounds: stats(putRounds, 1)
      },
      idleCpu: idle,
      rssMiB: {
        perPeer: stats(after.map((s, i) => s.rss / MiB / procs[i].peers.length), 1),
        process: stats(after.map(s => s.rss / MiB), 1),
        modulesOnly: stats(procs.map(x => x.rssBaseMiB), 1),
        firstPeer: stats(procs.map(x => x.rssFirstMiB - x.rssBaseMiB), 1),
        extraPeer: stats(procs.filter(x => x.peers.length > 1).map(x => (x.rssAllMiB - x.rssFirstMiB) / (x.peers.length - 1)), 1),
        supernode: Math.round(superStats.rss / MiB * 10) / 10
      },
      connectionsPerPeer: stats(after.flatMap(s => s.peers.map(p => p.connections)), 1),
      supernodeConnections: superStats.connections,
      routingTablePerPeer: stats(after.flatMap(s => s.peers.map(p => p.routingTable)), 1),
      loadavg: loadavg().map(round2)
    }
    if (USERS_AT === N && MEMBERS > 0) result.users = await users(bootstrap)
    return result
  } catch (err) {
    if (run.interrupted != null) throw err
    log(`${N} peers: failed: ${err.message}`)
    return { peers: N, processes: sizes, error: String(err.message), loadavg: loadavg().map(round2) }
  } finally {
    await endRound(run.workers.slice(firstWorker), run.dirs.slice(firstDir))
  }
}

/** The users' part: a conference of MEMBERS, then OFFLINE messages queued for one of them. */
async function users (bootstrap) {
  const t0 = performance.now()
  log(`users: ${MEMBERS} ChatNodes (a process each) join; load average ${loadString(loadavg())}`)
  const names = Array.from({ length: MEMBERS }, (_, i) => `member${String(i).padStart(2, '0')}`)
  const started = []
  // a few at a time, as the peers: all at once would measure the cores' start-up contention
  for (let i = 0; i < names.length; i += BATCH) {
    started.push(...await Promise.all(names.slice(i, i + BATCH).map(name => run.startWorker(name, 'node', { bootstrap }, { timeoutMs: STEP_TIMEOUT_MS }))))
  }
  const userWorkers = started.map(x => x.w)
  const startMs = performance.now() - t0
  const t1 = performance.now()
  const { owner, members, conference } = await makeConference(userWorkers, { timeoutMs: STEP_TIMEOUT_MS, log })
  const setupMs = performance.now() - t1
  log(`users started in ${(startMs / 1000).toFixed(1)} s; registered, befriended and invited in ${(setupMs / 1000).toFixed(1)} s`)
  if (CONF_SETTLE_MS > 0) {
    log(`settling for ${CONF_SETTLE_MS / 1000} s`)
    await sleep(CONF_SETTLE_MS)
  }
  const loadAtSends = loadavg()[0]
  profileMark('conference sends start', [...run.workers])
  const c = await measureConference(owner, members, conference, { sends: SENDS, warmup: CONF_WARMUP, gapMs: GAP_MS, timeoutMs: STEP_TIMEOUT_MS, log })
  profileMark('conference sends end')
  const out = {
    members: MEMBERS,
    startMs: Math.round(startMs),
    setupMs: Math.round(setupMs),
    conference: {
      sends: SENDS,
      loadavg1mAtSends: round2(loadAtSends),
      eachShownMs: stats(c.eachShownMs, 1),
      allShownMs: stats(c.allShownMs, 1),
      ackMs: stats(c.ackMs, 1),
      deliveries: c.where,
      fallbacks: c.fallbacks,
      missingArrivals: c.missing
    }
  }
  if (OFFLINE > 0) {
    const away = members[0]
    await away.call('logout')
    const queued = await owner.request('sendMany', { to: away.name, n: OFFLINE, concurrency: 50 }, { timeoutMs: 600_000 })
    profileMark('offline login', [away])
    const shown = await away.request('loginAndWait', { username: away.name, password: PASSWORD, expected: OFFLINE, timeoutMs: 300_000 }, { timeoutMs: 330_000 })
    profileMark('offline all shown', [away])
    out.offline = {
      messages: OFFLINE,
      queueMs: Math.round(queued.ms),
      statuses: queued.statuses,
      loginMs: Math.round(shown.loginMs),
      // the login's parts: the user record read (every replica), Argon2id, bcrypt; the rest is the session's start
      loginParts: shown.timings == null ? undefined : { userRecordMs: Math.round(shown.timings.networkMs), kdfMs: Math.round(shown.timings.kdfMs), bcryptMs: Math.round(shown.timings.bcryptMs) },
      loginToAllShownMs: shown.shownMs == null ? null : Math.round(shown.shownMs),
      loggedInToAllShownMs: shown.shownMs == null ? null : Math.round(shown.shownMs - shown.loginMs),
      shown: shown.shown
    }
    const parts = out.offline.loginParts
    const partsText = parts == null ? '' : ` (user record read ${parts.userRecordMs}, Argon2id ${parts.kdfMs}, bcrypt ${parts.bcryptMs}, session start ${out.offline.loginMs - parts.userRecordMs - parts.kdfMs - parts.bcryptMs})`
    log(`offline: ${OFFLINE} queued in ${(queued.ms / 1000).toFixed(1)} s; login ${out.offline.loginMs} ms${partsText}; login -> all shown ${out.offline.loginToAllShownMs ?? `- (only ${shown.shown})`} ms`)
  }
  const rss = await Promise.all(userWorkers.map(w => w.request('stats')))
  out.userRssMiB = stats(rss.map(r => r.rss / MiB), 1)
  return out
}

function round2 (x) { return Math.round(x * 100) / 100 }
function round3 (x) { return Math.round(x * 1000) / 1000 }

function printUsers (u, n) {
  log(`\nusers in the ${n}-peer network: ${u.members} ChatNodes, a process each`)
  const c = u.conference
  const row = (name, s) => `${name.padEnd(46)} ${String(s.n).padStart(5)} ${fmt(s.median).padStart(8)} ${fmt(s.p95).padStart(8)} ${fmt(s.max).padStart(8)}`
  log(`${`${u.members}-member conference (ms)`.padEnd(46)} ${'n'.padStart(5)} ${'median'.padStart(8)} ${'p95'.padStart(8)} ${'max'.padStart(8)}`)
  log(row(`send -> each of ${u.members - 1} members shows it`, c.eachShownMs))
  log(row(`send -> all ${u.members - 1} show it`, c.allShownMs))
  log(row(`send -> resolved (all ${u.members - 1} acks)`, c.ackMs))
  log(`deliveries: ${JSON.stringify(c.deliveries)}; fallbacks to mailboxes: ${c.fallbacks}; arrivals missing: ${c.missingArrivals}; load (1 min) at the sends ${fmt(c.loadavg1mAtSends, 1)}`)
  if (u.offline != null) log(`offline: ${u.offline.messages} queued (${JSON.stringify(u.offline.statuses)}); login ${u.offline.loginMs} ms; login -> all shown ${u.offline.loginToAllShownMs ?? `- (only ${u.offline.shown})`} ms (${u.offline.loggedInToAllShownMs ?? '-'} ms after the login resolved)`)
}

/** The targets, where this run measured them: [what, figure, target, met]. */
function targetChecks (rounds) {
  const checks = []
  const r = rounds.find(x => x.peers === TARGET_N && x.error == null)
  if (r != null) {
    checks.push([`get p50 at ${TARGET_N} peers (ms)`, r.getMs.median, `<= ${TARGETS.getP50Ms}`, r.getMs.median <= TARGETS.getP50Ms])
    checks.push([`put p50 at ${TARGET_N} peers (ms)`, r.putMs.median, `<= ${TARGETS.putP50Ms}`, r.putMs.median <= TARGETS.putP50Ms])
    checks.push([`failed gets at ${TARGET_N} peers`, r.failedGets, `= ${TARGETS.failedGets}`, r.failedGets === TARGETS.failedGets, 0])
    if (r.idleCpu != null) checks.push([`idle CPU per peer at ${TARGET_N} (%, p50)`, r.idleCpu.perPeerPct.median, `<= ${TARGETS.idlePctPerPeer}`, r.idleCpu.perPeerPct.median <= TARGETS.idlePctPerPeer, 3])
  }
  const u = rounds.find(x => x.users != null)?.users
  if (u != null) {
    checks.push([`conference: each member shown p95 (ms)`, u.conference.eachShownMs.p95, `<= ${TARGETS.confEachP95Ms}`, u.conference.eachShownMs.p95 != null && u.conference.eachShownMs.p95 <= TARGETS.confEachP95Ms])
    checks.push(['conference: fallbacks to mailboxes', u.conference.fallbacks, `= ${TARGETS.confFallbacks}`, u.conference.fallbacks === TARGETS.confFallbacks, 0])
    if (u.offline != null) checks.push([`${u.offline.messages} offline: login -> all shown (ms)`, u.offline.loginToAllShownMs, `<= ${TARGETS.offlineShownMs}`, u.offline.loginToAllShownMs != null && u.offline.loginToAllShownMs <= TARGETS.offlineShownMs])
  }
  return checks
}

async function main () {
  log(`bench-scale: N = ${NS.join(', ')} peers, ${PER_PROCESS} per process (at least 2 processes), ${BATCH} starting at a time; ${RECORDS} records (+${WARMUP} warm-up) per N; users at ${USERS_AT || 'none'}`)
  const rounds = []
  for (const N of NS) {
    rounds.push(await round(N))
    const last = rounds.at(-1)
    if (last.users != null) printUsers(last.users, N)
  }
  printTable(rounds)
  const checks = targetChecks(rounds)
  if (checks.length > 0) {
    log('\ntargets')
    for (const [what, value, target, met, digits = 1] of checks) log(`${what.padEnd(46)} ${fmt(value, digits).padStart(9)}  ${target.padEnd(8)} ${met ? 'met' : 'NOT met'}`)
  }
  log(run.machineLine())
  const file = await run.writeResult(given.out, {
    setup: { peers: NS, perProcess: PER_PROCESS, batch: BATCH, records: RECORDS, warmup: WARMUP, settleMs: SETTLE_MS, idleSettleMs: IDLE_SETTLE_MS, idleWindowMs: IDLE_WINDOW_MS, usersAt: USERS_AT, members: MEMBERS, sends: SENDS, confWarmup: CONF_WARMUP, gapMs: GAP_MS, confSettleMs: CONF_SETTLE_MS, offline: OFFLINE, quick: given.quick },
    definitions: {
      rounds: 'hops of a lookup from kad-dht query events: a peer queried from our own routing table is round 1, a peer first named in the closer peers of a round-r answer is round r + 1; a lookup counts the highest round it sent a FIND_NODE or GET_VALUE to',
      rpcs: 'SEND_QUERY events of the lookup (a put: FIND_NODE and PUT_VALUE; "lookup" counts FIND_NODE only)',
      idleCpu: 'utime + stime of each process over the idle window, % of one core, divided by its peers',
      perDoubling: '(b / a) ^ (1 / log2(Nb / Na)) between consecutive N'
    },
    rounds,
    targets: checks.map(([what, value, target, met]) => ({ what, value, target, met }))
  })
  log(`wrote ${file}`)
  return rounds.some(r => r.error != null || r.failedGets > 0 || r.joinsFailed > 0) ? 1 : 0
}

await run.run(main)
