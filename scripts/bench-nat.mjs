#!/usr/bin/env node
// NAT traversal figures with the real programs (the bundles from dist/: supernode and node
// in command mode, each a process) in network namespaces of their own
// (scripts/lib/nat-network.mjs, as the NAT test builds them): the supernode (the relay;
// --relays 2 adds a second) and a public peer on the "internet" bridge, alice and bob
// behind routers that keep ports (cone), carol behind one that picks a new port per
// connection (symmetric), dave in alice's home (same router, same subnet).
//   1. punch: time from the first relayed message alice -> bob until their connection is
//      direct (the hole punch, /conf-chat/punch/1.0.0), over --trials fresh starts:
//      alice's program starts again on a new peer (a new peer id: nothing of the last
//      trial counts, the punch's one try a minute per peer included) and logs in; her
//      login's notice to bob is the first message between the two peers, on a relayed
//      connection the relay's log reports open (t0); the direct connection is up when the
//      punch's log says so (t1), checked with `peers`;
//   2. DM round trip (`msg` written to the program's stdin until its `[msg] to <friend>:
//      delivered` line, the recipient's ack), after --settle ms of quiet (each process's
//      CPU in it is reported) and taking turns: relayed (alice -> carol, symmetric: stays
//      on the relay), direct (alice -> bob after the punch), same home (alice -> dave, as
//      their connection turns out: direct or relayed, said);
//   3. cpu: the supernode's CPU (utime + stime, /proc/<pid>/stat, % of one core) while it
//      relays --conversations pairs of peers behind symmetric NAT (a program each), each
//      pair sending a message every --interval ms for --window ms, next to the same peers
//      silent;
//   4. relay: what one relayed connection carries before the relay ends it: the supernode
//      is restarted with --relay-data-kib and --relay-seconds (the product's defaults,
//      4 MiB and 10 min, would take long), alice sends carol --relay-message-bytes messages
//      until the relay has cut a connection that opened during the test; the relay-counted
//      bytes per message follow (the limit over the messages it carried), and what the
//      defaults hold at that rate; then a message every 2 s for 3 time limits: how long
//      each relayed connection lasted before the relay ended it.
// Prints a table and writes JSON under results/. Needs Linux, root, iproute2, nftables.
// Every namespace, nft table, process and temp dir goes at the end, on failure and on
// SIGINT/SIGTERM; all traffic stays inside the namespaces it makes.
//
//   npm run bench:nat -- [--trials 10] [--messages 50] [--conversations 10] [--relays 1] [--quick]
import { spawn, spawnSync } from 'node:child_process'
import { loadavg } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { parseArgs } from 'node:util'
import { BenchRun, RESULTS, ROOT, fmt, loadString, sleep, stats } from './lib/bench.mjs'
import { cpuMs } from './lib/proc.mjs'
import { NatNetwork, nftUnavailable } from './lib/nat-network.mjs'
import { staleReason } from './build-if-stale.mjs'
import { MALLOC_ENV, NODE_FLAGS } from '../packages/program/dist/heap.js'

const PHASES = ['punch', 'rtt', 'cpu', 'relay']
const { values: flags } = parseArgs({
  options: {
    trials: { type: 'string' },
    messages: { type: 'string' },
    warmup: { type: 'string' },
    conversations: { type: 'string' },
    interval: { type: 'string' },
    window: { type: 'string' },
    'relay-data-kib': { type: 'string' },
    'relay-seconds': { type: 'string' },
    'relay-message-bytes': { type: 'string' },
    settle: { type: 'string' },
    relays: { type: 'string', default: '1' },
    phases: { type: 'string', default: PHASES.join(',') },
    quick: { type: 'boolean', default: false },
    out: { type: 'string', default: RESULTS },
    help: { type: 'boolean', default: false }
  }
})
if (flags.help) {
  console.log(`usage: node scripts/bench-nat.mjs [--trials 10 (punches, each with alice on a new peer)] [--messages 50 (round trips each)] [--warmup 5] [--settle 30000 (ms quiet before the round trips and the CPU windows)]
  [--conversations 10 (pairs behind symmetric NAT, for the relay's CPU)] [--interval 1000 (ms between a pair's messages)] [--window 60000 (ms measured)]
  [--relay-data-kib 64] [--relay-seconds 20 (the relay's limits in the last part; defaults 4096 KiB, 600 s)] [--relay-message-bytes 1000]
  [--relays 1 (supernodes, each a relay; peers behind NAT want reservations on 2)] [--phases ${PHASES.join(',')}] [--quick (a smoke run: 2 trials, 5 messages, 2 conversations, 10 s windows, 16 KiB / 10 s)] [--out results/]
needs Linux, root, iproute2 and nftables; runs the built programs (npm run build first)`)
  process.exit(0)
}
/** A flag's value, or its default (the --quick one under --quick). */
const num = (name, full, quick) => Number(flags[name] ?? (flags.quick ? quick : full))
const TRIALS = num('trials', 10, 2)
const MESSAGES = num('messages', 50, 5)
const WARMUP = num('warmup', 5, 2)
const CONVERSATIONS = num('conversations', 10, 2)
const INTERVAL_MS = num('interval', 1000, 1000)
const WINDOW_MS = num('window', 60_000, 10_000)
const RELAY_DATA_KIB = num('relay-data-kib', 64, 16)
const RELAY_SECONDS = num('relay-seconds', 20, 10)
const RELAY_MESSAGE_BYTES = num('relay-message-bytes', 1000, 1000)
const SETTLE_MS = num('settle', 30_000, 5_000)
const RELAYS = Number(flags.relays)
const phases = new Set(flags.phases.split(',').map(p => p.trim()).filter(p => p !== ''))
for (const p of phases) {
  if (!PHASES.includes(p)) { console.error(`unknown phase ${p} (${PHASES.join(', ')})`); process.exit(2) }
}
if (!(TRIALS >= 1) || !(MESSAGES >= 1) || !(CONVERSATIONS >= 1) || !(INTERVAL_MS >= 100) || !(WINDOW_MS >= 1000) || !(RELAY_DATA_KIB >= 4) || !(RELAY_SECONDS >= 1) || !(RELAY_MESSAGE_BYTES >= 1 && RELAY_MESSAGE_BYTES <= 30_000) || !(RELAYS >= 1 && RELAYS <= 4)) {
  console.error('bad flags: see --help')
  process.exit(2)
}
const unavailable = process.platform !== 'linux' ? `needs Linux (this is ${process.platform})` : process.getuid?.() !== 0 ? 'needs root (network namespaces, nftables)' : nftUnavailable()
if (unavailable != null) {
  console.error(`bench-nat: ${unavailable}`)
  process.exit(2)
}

const SUPERNODE_MAIN = join(ROOT, 'packages/supernode/dist/conf-chat-supernode.js')
const NODE_MAIN = join(ROOT, 'packages/cli/dist/conf-chat.js')
const SUPERNODE_PORT = 4300
const PEER_PORT = 4301
const STEP_MS = 180_000
/** The product's relay limits (packages/node/src/network/relay.ts, DEFAULT_RELAY_LIMITS; the supernode's flags' defaults). */
const DEFAULT_RELAY = { dataKiB: 4096, seconds: 600 }
/** Enough of the relay server's log for the relayed connections it opens ("connection from A to B established"). */
const RELAY_LOG = 'libp2p:circuit-relay:server,*:libp2p:circuit-relay:server'
/** The peers' punch log ("direct connection to <peer> ... after N ms" or "no direct connection to <peer> ..."). */
const PUNCH_LOG = 'conf-chat:network:hole-punch,*:conf-chat:network:hole-punch'
const PASSWORD = name => `${name}'s violet kettle`
const SETUP_BATCH = 5

const run = new BenchRun('nat')

/** A program run in a host's namespace: its stdout and stderr (the log) lines, each with the time it came. */
class Program {
  constructor (name, main, { host, home, args = [], env = {} }) {
    this.name = name
    this.host = host
    this.out = []
    this.err = []
    this.waiters = new Set()
    const base = {}
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('CONF_CHAT_') && k !== 'DEBUG') base[k] = v
    // `ip netns exec` execs node: the child's pid is the program's
    this.child = run.track(spawn('ip', ['netns', 'exec', host.ns, process.execPath, ...NODE_FLAGS, main, ...args], { cwd: ROOT, env: { ...base, ...MALLOC_ENV, NO_COLOR: '1', CONF_CHAT_HOME: home, ...env }, stdio: 'pipe' }))
    this.child.stdin.on('error', () => {})
    this.exited = new Promise(resolve => this.child.once('exit', (code, signal) => { this.exit = { code, signal }; this.changed(); resolve(this.exit) }))
    for (const [input, lines] of [[this.child.stdout, this.out], [this.child.stderr, this.err]]) {
      createInterface({ input }).on('line', line => { lines.push({ line, t: performance.now() }); this.changed() })
    }
  }

  changed () { for (const w of this.waiters) w() }

  get pid () { return this.child.pid }

  get running () { return this.exit == null }

  send (...lines) { for (const line of lines) this.child.stdin.write(line + '\n') }

  /** Where a wait for what comes next starts. */
  mark (stream = 'out') { return this[stream].length }

  /** The first line of `stream` ('out', or 'err': the log) from index `from` on that matches `re`: { m, t, i }. */
  wait (re, { from = 0, stream = 'out', timeoutMs = STEP_MS } = {}) {
    const lines = this[stream]
    return new Promise((resolve, reject) => {
      const check = () => {
        for (let i = from; i < lines.length; i++) {
          const m = lines[i].line.match(re)
          if (m != null) { done(); resolve({ m, t: lines[i].t, i }); return }
        }
        if (!this.running) { done(); reject(new Error(`${this.name} exited (${JSON.stringify(this.exit)}) before a line matching ${re}\n${this.tail()}`)) }
      }
      const timer = setTimeout(() => { done(); reject(new Error(`${this.name}: no line matching ${re} within ${timeoutMs} ms\n${this.tail()}`)) }, timeoutMs)
      const done = () => { clearTimeout(timer); this.waiters.delete(check) }
      this.waiters.add(check)
      check()
    })
  }

  /** Send `line`, then wait for `re` on stdout after it. */
  async command (line, re, timeoutMs = STEP_MS) {
    const from = this.mark()
    this.send(line)
    return await this.wait(re, { from, timeoutMs })
  }

  tail (n = 12) {
    return `--- ${this.name} stdout:\n${this.out.slice(-n).map(l => l.line).join('\n')}\n--- ${this.name} stderr:\n${this.err.slice(-n).map(l => l.line).join('\n')}`
  }

  /** `quit` (logs out), SIGKILL after `graceMs`. */
  async quit (graceMs = 20_000) {
    if (!this.running) return
    this.send('quit')
    const timer = setTimeout(() => { this.child.kill('SIGKILL') }, graceMs)
    await this.exited
    clearTimeout(timer)
  }
}

const net = new NatNetwork()
const programs = []
// stopAll runs these last-registered first: the programs go, then the namespaces
run.atStop(() => net.cleanup())
run.atStop(async () => {
  for (const p of programs) if (p.running) p.child.kill('SIGKILL')
  await Promise.all(programs.map(p => p.exited))
})

/** The supernodes (relays): { host, home, p: the program running now, id, addr }; every supernode program started, for the relay's log. */
const relays = []
const relayPrograms = []
function startSupernode (relay, limits) {
  const args = ['--host', relay.host.ip, '--port', String(SUPERNODE_PORT)]
  if (relay !== relays[0]) args.push('--bootstrap', relays[0].addr)
  if (limits != null) args.push('--relay-data-limit', String(limits.dataKiB), '--relay-duration-limit', String(limits.seconds))
  relay.p = new Program(relay.host.name, SUPERNODE_MAIN, { host: relay.host, home: relay.home, args, env: { DEBUG: RELAY_LOG } })
  programs.push(relay.p)
  relayPrograms.push(relay.p)
  return relay.p
}

async function startPeer (name, host, { punchLog = true } = {}) {
  const p = new Program(name, NODE_MAIN, {
    host,
    home: await run.tempDir(),
    // no --reachability: each finds out (the supernode's dial-back), as users' peers do
    args: ['--host', host.ip, '--port', String(PEER_PORT), '--bootstrap', relays.map(r => r.addr).join(','), '--commands', '--bcrypt-cost', '4', '--kdf-memory', '8'],
    env: punchLog ? { DEBUG: PUNCH_LOG } : {}
  })
  programs.push(p)
  await p.wait(/^joined the network via /)
  p.id = (await p.command('whoami', /^peer id: (\S+)$/)).m[1]
  return p
}

async function register (p, user) {
  p.user = user
  const from = p.mark()
  p.send(`register ${user}`, PASSWORD(user), user)
  await p.wait(new RegExp(`^(\\[register\\] Registered ${user} |\\[error\\] )`), { from }).then(({ m }) => { if (m[0].startsWith('[error]')) throw new Error(`${p.name}: ${m.input}`) })
}

async function login (p, user = p.user) {
  p.user = user
  const from = p.mark()
  p.send(`login ${user}`, PASSWORD(user))
  const { m, t } = await p.wait(new RegExp(`^(\\[login\\] Logged in as ${user} |\\[error\\] )`), { from })
  if (m[0].startsWith('[error]')) throw new Error(`${p.name}: ${m.input}`)
  return t
}

async function logout (p) { await p.command('logout', /^\[logout\] Logged out /) }

async function befriend (a, b) {
  const from = b.mark()
  await a.command(`friend-add ${b.user}`, new RegExp(`^\\[friends\\] Friend request sent to ${b.user} `))
  await b.wait(new RegExp(`^\\[friends\\] ${a.user} wants to be your friend`), { from, timeoutMs: 300_000 })
  const back = a.mark()
  b.send(`friend-accept ${a.user}`)
  await a.wait(new RegExp(`^\\[friends\\] ${b.user} accepted: you are now friends`), { from: back, timeoutMs: 300_000 })
}

/** `peers` on `p`: { id, relayed } a connected peer. */
async function peers (p) {
  const from = p.mark()
  p.send('peers')
  const { i, m } = await p.wait(/^(\d+) connected peers?$/, { from })
  const n = Number(m[1])
  const out = []
  for (let k = 1; k <= n; k++) {
    const { m: e } = await p.wait(/^(\S+) (direct|relayed)\b/, { from: i + k })
    out.push({ id: e[1], relayed: e[2] === 'relayed' })
  }
  return out
}

/** 'direct', 'relayed' or 'none': how `a` is connected to `b`. */
async function link (a, b) {
  const e = (await peers(a)).find(l => l.id === b.id)
  return e == null ? 'none' : e.relayed ? 'relayed' : 'direct'
}

/** The outcome of `p`'s punch with `peer` logged from line `from` on: { direct, t, dialMs }. */
async function punchOutcome (p, peer, from, timeoutMs = 30_000) {
  const { m, t } = await p.wait(new RegExp(`(no direct connection to|direct connection to) ${peer.id}\\b(?:.* after (\\d+) ms)?`), { from, stream: 'err', timeoutMs })
  return { direct: m[1] === 'direct connection to', t, dialMs: m[2] != null ? Number(m[2]) : null }
}

/** Relayed connections a relay opened between the peers `a` and `b` (either way) after `since` (performance.now()), from the relays' logs: [{ t, from, to }] by time. */
function circuits (a, b, since = 0) {
  const ids = new Set([a.id, b.id])
  const out = []
  for (const p of relayPrograms) {
    for (const { line, t } of p.err) {
      if (t <= since) continue
      const m = line.match(/connection from (\S+) to (\S+) established/)
      if (m != null && ids.has(m[1]) && ids.has(m[2])) out.push({ t, from: m[1], to: m[2], relay: p.name })
    }
  }
  return out.sort((x, y) => x.t - y.t)
}

/**
 * DMs from `a` to each of `to`, one at a time and taking turns (so that whatever else the
 * machine does falls on all alike), `n` each after `warmup` more, each from the `msg` line
 * to its result line: per recipient, the ms of those delivered and the other results.
 */
async function roundTrips (a, to, n, warmup) {
  const ms = to.map(() => [])
  const other = to.map(() => ({}))
  for (let i = -warmup; i < n; i++) {
    for (const [k, b] of to.entries()) {
      const from = a.mark()
      const t = performance.now()
      a.send(`msg ${b.user} round trip ${i}`)
      const { m, t: done } = await a.wait(new RegExp(`^\\[msg\\] to ${b.user}: (.*)$`), { from })
      if (i < 0) continue
      if (m[1] === 'delivered') ms[k].push(done - t)
      else other[k][m[1]] = (other[k][m[1]] ?? 0) + 1
    }
  }
  return to.map((_, k) => ({ ...stats(ms[k]), notDelivered: other[k] }))
}

/** `fn(item, index)` over `items`, `limit` at a time. */
async function inBatches (items, limit, fn) {
  const out = []
  for (let i = 0; i < items.length; i += limit) out.push(...await Promise.all(items.slice(i, i + limit).map((item, j) => fn(item, i + j))))
  return out
}

/** Byte counters of the traffic between `router`'s home and the addresses `ips` (an nft table of ours in the router's namespace). */
function meter (router, ips) {
  const nft = (args, input) => {
    const r = spawnSync('ip', ['netns', 'exec', router.ns, 'nft', ...args], { encoding: 'utf8', input })
    if (r.status !== 0) throw new Error(`nft ${args.join(' ')}: ${r.stderr}`)
    return r.stdout
  }
  const set = `{ ${ips.join(', ')} }`
  nft(['-f', '-'], `table ip bench_meter {\n  chain through {\n    type filter hook forward priority -10; policy accept;\n    ip daddr ${set} counter\n    ip saddr ${set} counter\n  }\n}\n`)
  return {
    /** [bytes to them, bytes from them] so far (IP packets, headers included). */
    read: () => [...nft(['list', 'table', 'ip', 'bench_meter']).matchAll(/counter packets \d+ bytes (\d+)/g)].map(m => Number(m[1])),
    remove: () => nft(['delete', 'table', 'ip', 'bench_meter'])
  }
}

async function main () {
  const stale = staleReason()
  if (stale != null) console.log(`warning: the programs' bundles are older than their sources (${stale}): run \`npm run build\` to measure the current code`)
  const loadStart = loadavg()
  console.log(`bench-nat: ${RELAYS === 1 ? 'supernode' : `${RELAYS} supernodes`} + public peer, alice & bob (cone NAT), carol (symmetric), dave (alice's home); ${TRIALS} punch trials, ${MESSAGES} round trips each, ${CONVERSATIONS} relayed conversations for ${WINDOW_MS / 1000} s; phases ${[...phases].join(',')}; load average ${loadString(loadStart)}`)
  const t0 = performance.now()
  const progress = step => console.log(`[+${((performance.now() - t0) / 1000).toFixed(1)}s] ${step}`)

  net.create()
  for (let i = 0; i < RELAYS; i++) relays.push({ host: net.publicHost(i === 0 ? 'supernode' : `supernode${i + 1}`), home: await run.tempDir() })
  const pubHost = net.publicHost('pub1')
  const homes = { alice: net.homeHost('alice', 'cone'), bob: net.homeHost('bob', 'cone'), carol: net.homeHost('carol', 'symmetric'), dave: net.homeNeighbour('dave', 'alice') }
  let relayLine
  for (const relay of relays) {
    const p = startSupernode(relay)
    relay.id = (await p.wait(/^supernode peer id: (\S+)$/)).m[1]
    relayLine = (await p.wait(/^relay: on \((.*)\)$/)).m[1]
    relay.addr = `/ip4/${relay.host.ip}/tcp/${SUPERNODE_PORT}/p2p/${relay.id}`
  }
  const [pub, aliceFirst, carol, dave] = await Promise.all([startPeer('pub1', pubHost, { punchLog: false }), startPeer('alice', homes.alice), startPeer('carol', homes.carol), startPeer('dave', homes.dave)])
  let alice = aliceFirst
  const bob = await startPeer('bob', homes.bob)
  for (const p of [alice, bob, carol, dave]) {
    const from = p.mark()
    p.send('whoami')
    const { m } = await p.wait(/^dht mode: (\S+)$/, { from })
    if (m[1] !== 'client') throw new Error(`${p.name} is a DHT ${m[1]}: not behind NAT as meant`)
  }
  progress(`${RELAYS === 1 ? 'supernode' : `${RELAYS} supernodes`} (relay ${relayLine}), a public peer and 4 home peers joined; the home peers are DHT clients`)
  await Promise.all([alice, bob, carol, dave].map(p => register(p, p.name)))
  for (const p of [bob, carol, dave]) await befriend(alice, p)
  progress('registered; alice is friends with bob, carol and dave')

  const result = {
    setup: { trials: TRIALS, messages: MESSAGES, warmup: WARMUP, conversations: CONVERSATIONS, intervalMs: INTERVAL_MS, windowMs: WINDOW_MS, relayDataKiB: RELAY_DATA_KIB, relaySeconds: RELAY_SECONDS, relayMessageBytes: RELAY_MESSAGE_BYTES, phases: [...phases], quick: flags.quick, bundlesStale: stale ?? null },
    topology: { internet: `${pubHost.ip.replace(/\.\d+$/, '.0')}/24`, supernodes: relays.map(r => r.host.ip), public: [pubHost.ip], homes: Object.fromEntries(Object.entries(homes).map(([k, h]) => [k, { ip: h.ip, router: h.router.publicIp, nat: h.router.kind }])) },
    loadavg: { start: loadStart }
  }

  // --- 1. punch: bob's program on a new peer logs in while alice is logged out; alice's login notice opens the relayed connection
  if (phases.has('punch')) {
    await logout(carol)
    await logout(dave)
    const trials = []
    for (let k = 1; k <= TRIALS; k++) {
      // alice's program quits (logging out) and starts again on a new peer: a new peer id,
      // so nothing of an earlier trial counts (connections, the punch's one try a minute per peer)
      await alice.quit()
      const bobLog = bob.mark('err')
      const bobOut = bob.mark()
      alice = await startPeer('alice', homes.alice)
      const since = performance.now()
      const loggedIn = await login(alice, 'alice')
      const outcome = await Promise.any([punchOutcome(alice, bob, 0), punchOutcome(bob, alice, bobLog)]).catch(() => ({ direct: false, t: null, dialMs: null }))
      const notice = await bob.wait(/^\[presence\] alice is online$/, { from: bobOut, timeoutMs: 10_000 }).catch(() => undefined)
      const first = circuits(alice, bob, since)[0]
      const state = await link(alice, bob)
      const trial = {
        trial: k,
        msToDirect: outcome.direct && first != null ? outcome.t - first.t : null,
        punchDialMs: outcome.dialMs,
        direct: outcome.direct,
        linkAfter: state,
        relayedOpenedBy: first == null ? null : first.from === alice.id ? 'alice' : 'bob',
        relayedOpenedAfterLoginMs: first == null ? null : Math.round(first.t - loggedIn),
        noticeShownAtBobAfterRelayedMs: first == null || notice == null ? null : Math.round(notice.t - first.t)
      }
      trials.push(trial)
      console.log(`  trial ${k}: ${trial.direct ? `direct ${fmt(trial.msToDirect, 0)} ms after the relayed connection opened (the punch's dial ${trial.punchDialMs} ms)` : 'stayed relayed'}; relayed connection opened by ${trial.relayedOpenedBy}; peers says ${state}`)
    }
    result.punch = {
      what: 'alice on a new peer logs in; from the relay opening the relayed connection alice -> bob (for her login notice to bob, the first message between the two peers) until the punch has the direct connection (alice\'s log)',
      msToDirect: stats(trials.map(t => t.msToDirect)),
      punchDialMs: stats(trials.map(t => t.punchDialMs)),
      direct: trials.filter(t => t.direct).length,
      trials
    }
    progress(`punch: ${result.punch.direct} of ${TRIALS} direct, median ${fmt(result.punch.msToDirect.median, 0)} ms`)
    await login(carol)
    await login(dave)
  }

  // --- 2. round trips: direct (alice -> bob), relayed (alice -> carol), same home (alice -> dave)
  if (phases.has('rtt')) {
    /** The last punch between alice and `b` either logged: 'direct', 'failed', or undefined. */
    const lastPunch = b => {
      for (const [p, q] of [[alice, b], [b, alice]]) {
        const l = p.err.findLast(e => e.line.includes(`direct connection to ${q.id}`))
        if (l != null) return l.line.includes('no direct connection') ? 'failed' : 'direct'
      }
      return undefined
    }
    const settle = async (b) => {
      // the first message opens the relayed connection (if none is open) and its punch; measured once that is over
      await alice.command(`msg ${b.user} hello ${b.user}`, new RegExp(`^\\[msg\\] to ${b.user}: delivered$`))
      for (let i = 0; i < 30 && lastPunch(b) == null; i++) await sleep(500)
      await sleep(1_000)
      return { link: await link(alice, b), punch: lastPunch(b) ?? 'none seen' }
    }
    const pairs = [['direct', bob], ['relayed', carol], ['sameHome', dave]]
    const first = []
    for (const [, b] of pairs) first.push(await settle(b))
    // the peers' own work after the logins (presence, mailboxes) out of the way; meanwhile each one's CPU
    const quiet = [...relays.map(r => r.p), pub, alice, bob, carol, dave]
    const cpuBefore = await Promise.all(quiet.map(p => cpuMs(p.pid)))
    const quietFrom = performance.now()
    await sleep(SETTLE_MS)
    const cpuAfter = await Promise.all(quiet.map(p => cpuMs(p.pid)))
    result.quietCpuPctOfOneCore = Object.fromEntries(quiet.map((p, k) => [p.name, Math.round((cpuAfter[k] - cpuBefore[k]) / (performance.now() - quietFrom) * 100 * 10) / 10]))
    progress(`CPU before the round trips, nobody sending (% of one core): ${Object.entries(result.quietCpuPctOfOneCore).map(([k, v]) => `${k} ${v}`).join(', ')}`)
    const before = await Promise.all(pairs.map(([, b]) => link(alice, b)))
    const trips = await roundTrips(alice, pairs.map(([, b]) => b), MESSAGES, WARMUP)
    const after = await Promise.all(pairs.map(([, b]) => link(alice, b)))
    const rtt = {}
    pairs.forEach(([key, b], k) => {
      rtt[key] = { pair: `alice -> ${b.name} (${homes[b.name].router.kind}${b === dave ? ', alice\'s home' : ''})`, link: before[k] === after[k] ? before[k] : `${before[k]} then ${after[k]}`, punchAfterFirstMessage: first[k].punch, ...trips[k] }
    })
    progress(`round trips: ${pairs.map(([key, b]) => `alice -> ${b.name} ${rtt[key].link} ${fmt(rtt[key].median, 2)} ms`).join(', ')}`)
    result.rttMs = rtt
  }

  // --- 3. the supernode's CPU relaying CONVERSATIONS pairs behind symmetric NAT
  if (phases.has('cpu')) {
    const pairs = []
    for (let i = 0; i < CONVERSATIONS; i++) pairs.push([net.homeHost(`s${i}a`, 'symmetric'), net.homeHost(`s${i}b`, 'symmetric')])
    const hosts = pairs.flat()
    const peersOf = await inBatches(hosts, SETUP_BATCH, async h => await startPeer(h.name, h))
    await inBatches(peersOf, SETUP_BATCH, async p => await register(p, `conv-${p.name}`))
    const convs = []
    for (let i = 0; i < CONVERSATIONS; i++) convs.push([peersOf[2 * i], peersOf[2 * i + 1]])
    await inBatches(convs, SETUP_BATCH, async ([a, b]) => await befriend(a, b))
    progress(`${CONVERSATIONS} pairs behind symmetric NAT joined, registered, befriended`)
    // a message each way opens their relayed connection; its punch fails (symmetric NAT)
    await inBatches(convs, SETUP_BATCH, async ([a, b]) => {
      const from = a.mark('err')
      await a.command(`msg ${b.user} hello`, new RegExp(`^\\[msg\\] to ${b.user}: `))
      await b.command(`msg ${a.user} hello`, new RegExp(`^\\[msg\\] to ${a.user}: `))
      await punchOutcome(a, b, from, 20_000).catch(() => {})
    })
    const links = await Promise.all(convs.map(([a, b]) => link(a, b)))
    await sleep(SETTLE_MS)
    const window = async (send) => {
      const load = loadavg()
      const before = await Promise.all(relays.map(r => cpuMs(r.p.pid)))
      const t = performance.now()
      let sent = 0
      let delivered = 0
      const ticks = []
      if (send) {
        convs.forEach(([a, b], i) => {
          // each pair every INTERVAL_MS, the sides taking turns; the pairs spread over the interval
          let n = 0
          const tick = () => {
            const [from, to] = n++ % 2 === 0 ? [a, b] : [b, a]
            const mark = from.mark()
            from.send(`msg ${to.user} relayed ${n}`)
            sent++
            from.wait(new RegExp(`^\\[msg\\] to ${to.user}: delivered$`), { from: mark, timeoutMs: WINDOW_MS + 30_000 }).then(() => { delivered++ }, () => {})
          }
          const start = setTimeout(() => { tick(); ticks.push(setInterval(tick, INTERVAL_MS)) }, i * INTERVAL_MS / convs.length)
          ticks.push(start)
        })
      }
      await sleep(WINDOW_MS)
      for (const h of ticks) { clearTimeout(h); clearInterval(h) }
      const after = await Promise.all(relays.map(r => cpuMs(r.p.pid)))
      const elapsed = performance.now() - t
      const pct = relays.map((_, k) => Math.round((after[k] - before[k]) / elapsed * 100 * 100) / 100)
      return { cpuPctOfOneCore: Math.round(pct.reduce((x, y) => x + y, 0) * 100) / 100, perRelay: pct, seconds: Math.round(elapsed / 100) / 10, sent, delivered: () => delivered, loadBefore: load, loadAfter: loadavg() }
    }
    const quiet = await window(false)
    progress(`${RELAYS === 1 ? 'supernode' : 'supernodes (together)'} quiet with ${CONVERSATIONS * 2} relayed peers: ${quiet.cpuPctOfOneCore} % of one core`)
    const busy = await window(true)
    await sleep(5_000) // the last messages' acks
    const linksAfter = await Promise.all(convs.map(([a, b]) => link(a, b)))
    result.cpu = {
      conversations: CONVERSATIONS,
      intervalMs: INTERVAL_MS,
      relayedBefore: links.filter(l => l === 'relayed').length,
      relayedAfter: linksAfter.filter(l => l === 'relayed').length,
      links: linksAfter,
      quiet: { cpuPctOfOneCore: quiet.cpuPctOfOneCore, perRelay: quiet.perRelay, seconds: quiet.seconds, loadavg: [quiet.loadBefore, quiet.loadAfter] },
      relaying: { cpuPctOfOneCore: busy.cpuPctOfOneCore, perRelay: busy.perRelay, seconds: busy.seconds, messagesSent: busy.sent, delivered: busy.delivered(), perSecond: Math.round(busy.sent / busy.seconds * 10) / 10, loadavg: [busy.loadBefore, busy.loadAfter] }
    }
    progress(`${RELAYS === 1 ? 'supernode' : 'supernodes (together)'} relaying ${CONVERSATIONS} conversations: ${busy.cpuPctOfOneCore} % of one core (${busy.sent} messages, ${busy.delivered()} delivered)`)
    await Promise.all(peersOf.map(p => p.quit()))
  }

  // --- 4. what one relayed connection carries before the relay ends it
  if (phases.has('relay')) {
    let limitLine
    for (const relay of relays) {
      relay.p.child.kill('SIGTERM')
      await relay.p.exited
      limitLine = (await startSupernode(relay, { dataKiB: RELAY_DATA_KIB, seconds: RELAY_SECONDS }).wait(/^relay: on \((.*)\)$/)).m[1]
    }
    // alice and carol reserve again (a relayed address of theirs names a supernode)
    for (const p of [alice, carol]) {
      const until = performance.now() + 120_000
      for (;;) {
        const from = p.mark()
        p.send('whoami')
        const { i } = await p.wait(/^dht mode: /, { from })
        if (p.out.slice(from, i).some(l => relays.some(r => l.line.startsWith(`address: ${r.addr}/p2p-circuit`)))) break
        if (performance.now() > until) throw new Error(`${p.name} did not reserve on a restarted relay`)
        await sleep(2_000)
      }
    }
    progress(`relay${RELAYS > 1 ? 's' : ''} restarted (${limitLine}); alice and carol reserved again`)
    const m = meter(carol.host.router, relays.map(r => r.host.ip))
    const text = 'x'.repeat(RELAY_MESSAGE_BYTES)
    // what carol and the relays exchange anyway (DHT, presence), over 5 s, taken off below
    const quietFrom = performance.now()
    const wireQuiet = m.read()
    await sleep(5_000)
    const since = performance.now()
    const wireBefore = m.read()
    const backgroundPerMs = (wireBefore[0] + wireBefore[1] - wireQuiet[0] - wireQuiet[1]) / (since - quietFrom)
    const sends = []
    const max = Math.ceil(3 * RELAY_DATA_KIB * 1024 / RELAY_MESSAGE_BYTES) + 50
    // the relayed connections alice dials to carol (carol may dial some too: not counted)
    const dialled = after => circuits(alice, carol, after).filter(c => c.from === alice.id)
    for (let i = 1; i <= max && dialled(since).length < 2; i++) {
      const t = performance.now()
      const { m: r, t: done } = await alice.command(`msg carol ${i} ${text}`, /^\[msg\] to carol: (.*)$/)
      sends.push({ i, t, done, status: r[1] })
    }
    const wireAfter = m.read()
    const wireMs = performance.now() - since
    m.remove()
    const opened = dialled(since)
    let data = { cut: false }
    if (opened.length >= 2) {
      // the connection opened at opened[0] and cut before opened[1]: the messages delivered in between
      const carried = sends.filter(s => s.done > opened[0].t && s.done < opened[1].t && s.status === 'delivered')
      data = {
        cut: true,
        messagesCarried: carried.length,
        secondsOpen: Math.round((opened[1].t - opened[0].t) / 100) / 10,
        relayBytesPerMessage: carried.length > 0 ? Math.round(RELAY_DATA_KIB * 1024 / carried.length) : null
      }
    }
    const delivered = sends.filter(s => s.status === 'delivered').length
    data = {
      ...data,
      limitKiB: RELAY_DATA_KIB,
      messageTextBytes: RELAY_MESSAGE_BYTES,
      messagesSent: sends.length,
      delivered,
      statuses: sends.reduce((o, s) => ({ ...o, [s.status]: (o[s.status] ?? 0) + 1 }), {}),
      relayedConnectionsDialled: opened.length,
      // ms from the first message: each relayed connection the relay opened (and who dialled), each message's result
      timeline: [...circuits(alice, carol, since).map(c => ({ ms: Math.round(c.t - sends[0].t), opened: `${c.from === alice.id ? 'alice -> carol' : 'carol -> alice'} via ${c.relay}` })), ...sends.map(x => ({ ms: Math.round(x.done - sends[0].t), message: x.i, status: x.status }))].sort((a, b) => a.ms - b.ms),
      wireBytesAtCarolsRouter: { toRelay: wireAfter[0] - wireBefore[0], fromRelay: wireAfter[1] - wireBefore[1] },
      wireBackgroundBytesPerSecond: Math.round(backgroundPerMs * 1000),
      // all of carol's IP traffic with the relays while alice sent, less the background's rate
      wireBytesPerMessage: delivered > 0 ? Math.round((wireAfter[0] - wireBefore[0] + wireAfter[1] - wireBefore[1] - backgroundPerMs * wireMs) / delivered) : null
    }
    progress(`data limit: ${data.cut ? `a relayed connection carried ${data.messagesCarried} messages of ${RELAY_MESSAGE_BYTES} B before the relay cut it at ${RELAY_DATA_KIB} KiB` : `no cut seen in ${sends.length} messages`}`)

    // the time limit: a small message every 2 s for 3 limits; each relayed connection
    // alice dials lasts until the relay ends it, and the next message dials the next one
    await sleep(3_000)
    const keepFrom = performance.now()
    const keep = []
    while (performance.now() < keepFrom + (3 * RELAY_SECONDS + 5) * 1000) {
      const t = performance.now()
      const { m: r, t: done } = await alice.command(`msg carol still here ${keep.length + 1}`, /^\[msg\] to carol: (.*)$/)
      keep.push({ t, done, status: r[1] })
      await sleep(Math.max(0, 2_000 - (performance.now() - t)))
    }
    // the openings come in bursts (a redial may open two within a second: kept as one); from
    // one burst to the next the relay ended what the first opened, after the last message
    // delivered before the next burst
    const bursts = []
    for (const c of dialled(keepFrom)) if (bursts.length === 0 || c.t - bursts.at(-1).at(-1).t > 2_000) bursts.push([c]); else bursts.at(-1).push(c)
    const spans = []
    bursts.forEach((b, k) => {
      const next = bursts[k + 1]
      if (next == null) return
      const lastOnIt = keep.filter(x => x.status === 'delivered' && x.done > b[0].t && x.done < next[0].t).at(-1)
      spans.push({ atLeast: lastOnIt != null ? (lastOnIt.done - b[0].t) / 1000 : null, atMost: (next[0].t - b[0].t) / 1000, opened: b.length })
    })
    const duration = {
      cut: spans.length > 0,
      connections: spans.length,
      secondsAtLeast: stats(spans.map(x => x.atLeast), 1),
      secondsAtMost: stats(spans.map(x => x.atMost), 1),
      spans: spans.map(x => ({ atLeast: x.atLeast == null ? null : Math.round(x.atLeast * 10) / 10, atMost: Math.round(x.atMost * 10) / 10, opened: x.opened })),
      messages: keep.length,
      statuses: keep.reduce((o, x) => ({ ...o, [x.status]: (o[x.status] ?? 0) + 1 }), {}),
      limitSeconds: RELAY_SECONDS
    }
    progress(`time limit: ${duration.cut ? `the relay ended alice's relayed connection ${duration.connections} times, after ${fmt(duration.secondsAtLeast.median, 1)}-${fmt(duration.secondsAtMost.median, 1)} s (median; limit ${RELAY_SECONDS} s)` : 'no cut seen'}`)
    const perConnectionAtDefaults = data.relayBytesPerMessage != null ? Math.floor(DEFAULT_RELAY.dataKiB * 1024 / data.relayBytesPerMessage) : null
    result.relay = { limits: limitLine, defaults: { dataKiB: DEFAULT_RELAY.dataKiB, seconds: DEFAULT_RELAY.seconds, messagesPerConnectionAtDefaults: perConnectionAtDefaults }, data, duration }
  }

  for (const p of [alice, bob, carol, dave, pub]) await p.quit()
  result.loadavg.end = loadavg()

  // --- the table
  const row = (name, s, d = 1) => `${name.padEnd(52)} ${String(s.n).padStart(4)} ${fmt(s.median, d).padStart(9)} ${fmt(s.p95, d).padStart(9)} ${fmt(s.min, d).padStart(9)} ${fmt(s.max, d).padStart(9)}`
  const head = title => `${title.padEnd(52)} ${'n'.padStart(4)} ${'median'.padStart(9)} ${'p95'.padStart(9)} ${'min'.padStart(9)} ${'max'.padStart(9)}`
  console.log('')
  if (result.punch != null) {
    console.log(head('hole punch (ms)'))
    console.log(row('relayed alice -> bob until direct (cone NATs)', result.punch.msToDirect, 0))
    console.log(row('  of it the punch\'s simultaneous dial', result.punch.punchDialMs, 0))
    console.log(`(${result.punch.direct} of ${TRIALS} trials direct; t0: the relay opens the relayed connection for alice's login notice to bob)`)
    console.log('')
  }
  if (result.rttMs != null) {
    console.log(head('DM round trip, msg -> delivered (ms)'))
    for (const [key, label] of [['relayed', 'relayed'], ['direct', 'direct (after the punch)'], ['sameHome', 'same home']]) {
      const r = result.rttMs[key]
      console.log(row(`${label}: ${r.pair.replace(/ \(.*/, '')}, ${r.link}`, r, 2))
    }
    console.log(`(before them, ${SETTLE_MS / 1000} s with nobody sending, CPU % of one core: ${Object.entries(result.quietCpuPctOfOneCore).map(([k, v]) => `${k} ${v}`).join(', ')})`)
    console.log('')
  }
  if (result.cpu != null) {
    const c = result.cpu
    console.log(`${RELAYS === 1 ? 'supernode' : `${RELAYS} supernodes' (together)`} CPU, % of one core (/proc/<pid>/stat over ${WINDOW_MS / 1000} s)`)
    console.log(`  ${CONVERSATIONS} relayed conversations, a message every ${INTERVAL_MS} ms each: ${fmt(c.relaying.cpuPctOfOneCore, 2)} % (${c.relaying.messagesSent} sent, ${c.relaying.delivered} delivered; ${c.relayedAfter} of ${CONVERSATIONS} pairs relayed)`)
    console.log(`  baseline: the same ${CONVERSATIONS * 2} peers silent: ${fmt(c.quiet.cpuPctOfOneCore, 2)} %`)
    console.log('')
  }
  if (result.relay != null) {
    const { data, duration, defaults } = result.relay
    console.log(`relay limits (set: ${RELAY_DATA_KIB} KiB, ${RELAY_SECONDS} s; defaults ${defaults.dataKiB} KiB, ${defaults.seconds} s)`)
    console.log(`  data: ${data.cut ? `one relayed connection carried ${data.messagesCarried} messages of ${RELAY_MESSAGE_BYTES} B text in ${data.secondsOpen} s, then the relay cut it: ~${data.relayBytesPerMessage} B per message as the relay counts` : 'no cut seen'}; ${data.delivered} of ${data.messagesSent} delivered; IP bytes at carol's router ~${data.wireBytesPerMessage} per message (less ${data.wireBackgroundBytesPerSecond} B/s of background)`)
    console.log(`  time: ${duration.cut ? `the relay ended alice's relayed connection ${duration.connections} times (a message every 2 s) after ${fmt(duration.secondsAtLeast.median, 1)} to ${fmt(duration.secondsAtMost.median, 1)} s (median; between the last message on it and the next connection)` : 'no cut seen'} (limit ${RELAY_SECONDS} s)`)
    if (defaults.messagesPerConnectionAtDefaults != null) console.log(`  at the defaults: ~${defaults.messagesPerConnectionAtDefaults} such messages per relayed connection, or ${defaults.seconds / 60} min`)
    console.log('')
  }
  console.log(run.machineLine())
  const file = await run.writeResult(flags.out, result)
  console.log(`wrote ${file}`)
  let code = 0
  if (result.punch != null && result.punch.direct < TRIALS) { console.error(`${TRIALS - result.punch.direct} punch trials stayed relayed`); code = 1 }
  return code
}

await run.run(main)
