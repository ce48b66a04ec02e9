// The soak test (`npm run soak`, and test/soak.test.ts in CI): the real `supernode` and
// `node` programs as processes (command mode), six users on eight peers, direct messages
// between friends and one conference, for a set time under a scripted storm: kill -9 and
// restart of peers, SIGSTOP of whole peers for longer than the ack and read time limits,
// both cores starved by busy loops, and logins on other peers (the older login ends).
// Every message whose sender was told `delivered` or `queued` must be shown to its
// recipient exactly once; friendships and the conference membership must never
// disappear. The ledger says what was sent, acknowledged, shown, lost and duplicated.
import { spawn } from 'node:child_process'
import { createWriteStream } from 'node:fs'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { ROOT, sleep, stats } from './bench.mjs'
import { MALLOC_ENV, NODE_FLAGS } from '../../packages/program/dist/heap.js'

export const SUPERNODE_MAIN = join(ROOT, 'packages/supernode/dist/conf-chat-supernode.js')
export const NODE_MAIN = join(ROOT, 'packages/cli/dist/conf-chat.js')

export const USERS = ['alice', 'bob', 'carol', 'dave', 'erin', 'frank']
const PASSWORD = 'soak violet kettle 1'
/** Cheap hashing and a short presence expiry (README flags): the storm logs in often. */
const PEER_FLAGS = ['--bcrypt-cost', '4', '--kdf-memory', '8', '--presence-ttl', '30', '--commands']
/** Longer than the ack (5 s) and DHT read (15 s) time limits. */
export const PAUSE_MS = 20_000
export const STARVE_MS = 15_000
/** A command's answer may wait behind a pause, a starvation and a restart. */
const COMMAND_MS = 120_000
const TOKEN = /\bsoak(\d+)\b/

/** A small seeded PRNG (mulberry32): the same seed gives the same storm. */
export function random (seed) {
  let a = seed >>> 0
  const next = () => {
    a = (a + 0x6D2B79F5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  return {
    next,
    between: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)),
    pick: xs => xs[Math.floor(next() * xs.length)]
  }
}

/** A program run as a child process, its stdout read line by line. */
class Program {
  constructor (run, name, main, args, env, logFile) {
    this.name = name
    this.lines = []
    this.listeners = new Set()
    this.child = run.track(spawn(process.execPath, [...NODE_FLAGS, main, ...args], {
      env: { ...cleanEnv(), ...MALLOC_ENV, NO_COLOR: '1', ...env },
      stdio: ['pipe', 'pipe', 'pipe']
    }))
    this.pid = this.child.pid
    this.exited = new Promise(resolve => this.child.once('exit', (code, signal) => resolve({ code, signal })))
    this.alive = true
    void this.exited.then(() => { this.alive = false; for (const l of this.listeners) l(null) })
    this.child.stdin.on('error', () => {}) // a killed program's stdin
    const stderr = []
    this.stderr = stderr
    if (logFile != null) {
      const out = createWriteStream(logFile, { flags: 'a' })
      this.child.stderr.pipe(out)
      this.child.stdout.pipe(out)
    } else {
      createInterface({ input: this.child.stderr }).on('line', line => { stderr.push(line); if (stderr.length > 200) stderr.shift() })
    }
    createInterface({ input: this.child.stdout }).on('line', line => {
      this.lines.push(line)
      if (this.lines.length > 400) this.lines.shift()
      for (const l of this.listeners) l(line)
    })
  }

  write (...lines) {
    if (this.alive) this.child.stdin.write(lines.map(l => l + '\n').join(''))
  }

  /** The first line from now on that matches one of `res` ({ index, match }); rejects when the program exits or after `ms`. */
  waitFor (res, ms = COMMAND_MS) {
    return new Promise((resolve, reject) => {
      const done = (fn, v) => { clearTimeout(timer); this.listeners.delete(listener); fn(v) }
      const listener = line => {
        if (line == null) return done(reject, new Error(`${this.name} exited`))
        for (let i = 0; i < res.length; i++) {
          const match = line.match(res[i])
          if (match != null) return done(resolve, { index: i, match, line })
        }
      }
      const timer = setTimeout(() => done(reject, new Error(`${this.name}: no ${res.join(' or ')} within ${ms} ms`)), ms)
      if (!this.alive) return done(reject, new Error(`${this.name} exited`))
      this.listeners.add(listener)
    })
  }

  signal (sig) {
    if (this.alive) this.child.kill(sig)
  }
}

function cleanEnv () {
  const env = {}
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('CONF_CHAT_') && k !== 'DEBUG') env[k] = v
  return env
}

/**
 * A peer: one data directory, run again after each kill, and the user last logged in on
 * it. Its commands run one at a time (command mode answers them in order).
 */
class Peer {
  constructor (soak, index) {
    this.soak = soak
    this.index = index
    this.name = `peer${index}`
    this.program = undefined
    this.user = undefined
    /** The user whose session may still show messages here (an older login ends a moment after the newer one). */
    this.lastUser = undefined
    this.queue = Promise.resolve()
    this.starts = 0
    this.busy = false
  }

  async start () {
    const { run, bootstrap } = this.soak
    this.home ??= await run.tempDir()
    this.starts++
    const logFile = this.soak.logDir != null ? join(this.soak.logDir, `${this.name}.log`) : undefined
    const debug = logFile != null ? ['--log-level', 'debug'] : []
    const p = new Program(run, `${this.name}#${this.starts}`, NODE_MAIN, [...PEER_FLAGS, ...debug, '--data', join(this.home, 'data'), '--bootstrap', bootstrap], { CONF_CHAT_HOME: this.home }, logFile)
    this.program = p
    this.queue = Promise.resolve()
    p.listeners.add(line => { if (line != null) this.soak.observe(this, line) })
    await p.waitFor([/^bootstrap: /], 60_000)
  }

  get alive () { return this.program?.alive === true }

  /**
   * Run one command on this peer's current program: write `lines`, resolve with the first
   * answer line matching one of `answers` or `[error]` ({ index, match, line }; index -1 for
   * an error). Rejects if the program exits first or after COMMAND_MS.
   */
  command (lines, answers) {
    const p = this.program
    const result = this.queue.then(async () => {
      if (p !== this.program || !p.alive) throw new Error(`${p.name} is gone`)
      const waiting = p.waitFor([/^\[error\] (.*)$/, ...answers])
      p.write(...lines)
      const r = await waiting
      return { ...r, index: r.index - 1 }
    })
    this.queue = result.catch(() => {})
    return result
  }

  async login (user) {
    // the new session may show a message before the login's own answer line
    const before = this.lastUser
    this.lastUser = user
    const r = await this.command([`login ${user}`, PASSWORD], [new RegExp(`^\\[login\\] Logged in as ${user} `)]).catch(err => ({ index: -1, line: err.message }))
    if (r.index < 0) {
      this.lastUser = before
      throw new Error(`login ${user} on ${this.name}: ${r.line}`)
    }
    this.user = user
  }
}

/**
 * The soak: `durationMs` of storm and traffic, then a drain of up to `drainMs` in which
 * everyone is up and logged in and every acknowledged message must be shown. Resolves
 * with the ledger.
 */
export class Soak {
  constructor (run, { durationMs, drainMs = 240_000, seed = 1, peers = 8, log = () => {}, logDir }) {
    this.logDir = logDir
    this.run = run
    this.durationMs = durationMs
    this.drainMs = drainMs
    this.rng = random(seed)
    this.seed = seed
    this.log = log
    this.peers = Array.from({ length: peers }, (_, i) => new Peer(this, i))
    this.messages = new Map() // token -> { from, to: [users], kind, sentAt, acked: Set, shown: Map<user, [ms]> }
    this.nextToken = 1
    this.storm = { kills: 0, pauses: 0, starvations: 0, moves: 0, restarts: 0 }
    this.violations = [] // friendships or memberships missing after a login
    this.misdelivered = []
    this.commandErrors = []
    this.conference = undefined
    this.stopping = false
    this.startedAt = performance.now()
    this.pausedPids = new Set()
  }

  elapsed () { return ((performance.now() - this.startedAt) / 1000).toFixed(1) }

  say (line) { this.log(`${this.elapsed().padStart(7)}s ${line}`) }

  /** Where `user` is logged in now (the last peer it logged in on). */
  peerOf (user) { return this.peers.find(p => p.user === user) }

  observe (peer, line) {
    const m = line.match(TOKEN)
    if (m == null || !/^(\[DM from |\[CONF |\s+\[\d\d:\d\d:\d\d\] \[(DM from|CONF) )/.test(line)) return
    const msg = this.messages.get(Number(m[1]))
    const user = peer.lastUser
    if (msg == null || user == null || !msg.to.includes(user)) {
      this.misdelivered.push({ peer: peer.name, user, line })
      return
    }
    const seen = msg.shown.get(user) ?? []
    seen.push(performance.now())
    msg.shown.set(user, seen)
    ;(msg.where ??= []).push(`${peer.program.name} at ${this.elapsed()}s: ${line.trim()}`)
    if (seen.length > 1) this.say(`DUPLICATE soak${m[1]} shown to ${user} ${seen.length} times: ${msg.where.join(' | ')}`)
  }

  async setUp () {
    const { run } = this
    const home = await run.tempDir()
    this.supernode = new Program(run, 'supernode', SUPERNODE_MAIN, ['--port', '0'], { CONF_CHAT_HOME: home })
    const addr = await this.supernode.waitFor([/^listening on (\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\/\S+)$/], 60_000)
    this.bootstrap = addr.match[1]
    await Promise.all(this.peers.map(async p => { await p.start() }))
    this.say(`supernode and ${this.peers.length} peers up`)
    await Promise.all(USERS.map(async (user, i) => {
      const peer = this.peers[i]
      const r = await retry(() => peer.command([`register ${user}`, PASSWORD, `${user} soak`], [new RegExp(`^\\[register\\] Registered ${user} `)]), `register ${user}`)
      if (r.index < 0) throw new Error(`register ${user}: ${r.line}`)
      peer.user = user
      peer.lastUser = user
    }))
    this.say(`registered ${USERS.join(', ')}`)
    // every pair friends: the first asks, the second accepts once the request is there
    const pairs = USERS.flatMap((a, i) => USERS.slice(i + 1).map(b => [a, b]))
    for (const [a, b] of pairs) {
      await retry(() => this.peerOf(a).command([`friend-add ${b}`], [new RegExp(`^\\[friends\\] (Friend request sent to|You and) ${b} `)]), `friend-add ${a} → ${b}`)
    }
    for (const [a, b] of pairs) {
      await retry(async () => {
        const r = await this.peerOf(b).command([`friend-accept ${a}`], [new RegExp(`^\\[friends\\] You and ${a} are now friends`)])
        if (r.index < 0) throw new Error(r.line)
        return r
      }, `friend-accept ${b} ← ${a}`, 30)
    }
    for (const user of USERS) {
      await retry(async () => {
        const missing = await this.missingFriends(this.peerOf(user))
        if (missing.length > 0) throw new Error(`${user} not yet friends with ${missing.join(', ')}`)
      }, `friends of ${user}`, 30)
    }
    this.say('every pair of users are friends')
    const r = await retry(() => this.peerOf('alice').command([`conf-create soak ${USERS.slice(1).join(' ')}`], [/^\[conf-create\] Created conference (conf-\S+) /]), 'conf-create')
    if (r.index < 0) throw new Error(`conf-create: ${r.line}`)
    this.conference = r.match[1]
    for (const user of USERS) {
      await retry(async () => {
        if (!(await this.inConference(this.peerOf(user)))) throw new Error(`${user} does not list ${this.conference} yet`)
      }, `conf-list of ${user}`, 30)
    }
    this.say(`conference ${this.conference} with all six`)
  }

  async missingFriends (peer) {
    const p = peer.program
    const listed = []
    const collect = line => { const m = line?.match(/^ {2}(\w+) \((online|offline)\)$/); if (m != null) listed.push(m[1]) }
    p.listeners.add(collect)
    try {
      const r = await peer.command(['friends'], [/^\[friends\] (\d+) friends?$/])
      if (r.index < 0) throw new Error(`friends on ${peer.name}: ${r.line}`)
      await peer.command(['whoami'], [/^user: /]) // the listing's lines come before the next answer
    } finally {
      p.listeners.delete(collect)
    }
    return USERS.filter(u => u !== peer.user && !listed.includes(u))
  }

  async inConference (peer) {
    const p = peer.program
    let found = false
    const collect = line => { if (line?.startsWith(`  ${this.conference} `)) found = true }
    p.listeners.add(collect)
    try {
      const r = await peer.command(['conf-list'], [/^\[conf-list\] \d+ conference/])
      if (r.index < 0) throw new Error(`conf-list on ${peer.name}: ${r.line}`)
      await peer.command(['whoami'], [/^user: /])
    } finally {
      p.listeners.delete(collect)
    }
    return found
  }

  /** After a login in the storm: the user's friends and conference must all be there. */
  async checkState (peer, when) {
    const user = peer.user
    try {
      const missing = await this.missingFriends(peer)
      if (missing.length > 0) this.violate(`${user} after ${when} on ${peer.name}: friends missing: ${missing.join(', ')}`)
      if (!(await this.inConference(peer))) this.violate(`${user} after ${when} on ${peer.name}: conference ${this.conference} missing`)
    } catch (err) {
      this.say(`state check of ${user} on ${peer.name} not done: ${err.message}`)
    }
  }

  violate (what) {
    this.violations.push(what)
    this.say(`VIOLATION ${what}`)
  }

  // ------------------------------------------------------------------ traffic

  async sendDm (user) {
    const peer = this.peerOf(user)
    if (peer == null || !peer.alive) return
    const to = this.rng.pick(USERS.filter(u => u !== user))
    const token = this.nextToken++
    const msg = { token, from: user, to: [to], kind: 'dm', sentAt: performance.now(), sentAtS: this.elapsed(), acked: new Set(), shown: new Map(), answer: undefined }
    this.messages.set(token, msg)
    try {
      const r = await peer.command([`msg ${to} soak${token} from ${user}`], [new RegExp(`^\\[msg\\] to ${to}: (delivered|queued.*|failed.*)$`)])
      msg.answer = r.index < 0 ? `error: ${r.match[1]}` : r.match[1]
      if (r.index >= 0 && !r.match[1].startsWith('failed')) msg.acked.add(to)
      else this.commandErrors.push(`${user} → ${to} soak${token}: ${r.line}`)
    } catch (err) {
      msg.answer = `no answer: ${err.message}`
    }
  }

  async sendConference (user) {
    const peer = this.peerOf(user)
    if (peer == null || !peer.alive) return
    const token = this.nextToken++
    const to = USERS.filter(u => u !== user)
    const msg = { token, from: user, to, kind: 'conference', sentAt: performance.now(), sentAtS: this.elapsed(), acked: new Set(), shown: new Map(), answer: undefined }
    this.messages.set(token, msg)
    try {
      const r = await peer.command([`conf-send ${this.conference} soak${token} from ${user}`], [/^\[conf-send\] to \S+: (.*)$/])
      msg.answer = r.index < 0 ? `error: ${r.match[1]}` : r.match[1]
      if (r.index < 0) { this.commandErrors.push(`${user} conf soak${token}: ${r.line}`); return }
      const failed = r.match[1].match(/\d+ failed \((.*)\)$/)?.[1] ?? ''
      const failedUsers = new Set([...failed.matchAll(/(?:^|; )(\w+): /g)].map(m => m[1]))
      for (const u of to) if (!failedUsers.has(u)) msg.acked.add(u)
      if (failedUsers.size > 0) this.commandErrors.push(`${user} conf soak${token}: ${r.line}`)
    } catch (err) {
      msg.answer = `no answer: ${err.message}`
    }
  }

  async traffic (until) {
    const loops = USERS.map(async user => {
      await sleep(this.rng.between(0, 1500))
      while (performance.now() < until && !this.stopping) {
        await this.sendDm(user)
        await sleep(this.rng.between(700, 2500))
      }
    })
    loops.push((async () => {
      while (performance.now() < until && !this.stopping) {
        await sleep(this.rng.between(3000, 6000))
        await this.sendConference(this.rng.pick(USERS))
      }
    })())
    await Promise.all(loops)
  }

  // ------------------------------------------------------------------ storm

  /** Peers with a user on them and no storm action under way. */
  calmPeers () { return this.peers.filter(p => p.user != null && p.alive && !p.busy) }

  async kill (peer) {
    peer.busy = true
    const user = peer.user
    this.storm.kills++
    this.say(`kill -9 ${peer.name} (${user}, pid ${peer.program.pid})`)
    peer.program.signal('SIGKILL')
    await peer.program.exited
    await sleep(this.rng.between(1000, 6000))
    await peer.start()
    this.storm.restarts++
    await retry(() => peer.login(user), `login ${user} after restart`, 10)
    this.say(`${peer.name} restarted, ${user} logged in again`)
    await this.checkState(peer, 'a restart')
    peer.busy = false
  }

  async pause (peer) {
    peer.busy = true
    this.storm.pauses++
    this.say(`SIGSTOP ${peer.name} (${peer.user}) for ${PAUSE_MS / 1000} s`)
    this.pausedPids.add(peer.program)
    peer.program.signal('SIGSTOP')
    await sleep(PAUSE_MS)
    peer.program.signal('SIGCONT')
    this.pausedPids.delete(peer.program)
    this.say(`SIGCONT ${peer.name}`)
    peer.busy = false
  }

  async starve () {
    this.storm.starvations++
    this.say(`busy loops on both cores for ${STARVE_MS / 1000} s`)
    const loops = [0, 1].map(() => this.run.track(spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' })))
    await sleep(STARVE_MS)
    for (const l of loops) l.kill('SIGKILL')
    this.say('busy loops ended')
  }

  /** `user` logs in on a peer with nobody logged in: the older login (on `from`) ends. */
  async move (from) {
    const spare = this.peers.find(p => p.user == null && p.alive && !p.busy)
    if (spare == null) return
    from.busy = true
    spare.busy = true
    const user = from.user
    this.storm.moves++
    this.say(`${user} logs in on ${spare.name} (was on ${from.name})`)
    try {
      await retry(() => spare.login(user), `login ${user} on ${spare.name}`, 10)
      from.user = undefined
      // the older session ends by takeover: its peer says so
      await from.program.waitFor([/logged out: your account logged in on another peer/], 60_000).catch(() => {})
      await this.checkState(spare, 'a login on another peer')
    } finally {
      from.busy = false
      spare.busy = false
    }
  }

  async chaos (until) {
    const actions = []
    let round = []
    while (performance.now() < until && !this.stopping) {
      await sleep(this.rng.between(6000, 12000))
      if (performance.now() >= until) break
      const calm = this.calmPeers()
      // every kind of trouble in each round of four, in a random order
      if (round.length === 0) round = shuffle(['kill', 'pause', 'starve', 'move'], this.rng)
      const kind = round.shift()
      const peer = this.rng.pick(calm)
      if (peer == null) continue
      if (kind === 'kill') actions.push(this.kill(peer))
      else if (kind === 'pause') actions.push(this.pause(peer))
      else if (kind === 'starve') actions.push(this.starve())
      else actions.push(this.move(peer))
    }
    await Promise.all(actions.map(a => a.catch(err => { this.say(`storm action failed: ${err.message}`) })))
  }

  // ------------------------------------------------------------------ run

  async runStorm () {
    const until = performance.now() + this.durationMs
    this.say(`storm and traffic for ${this.durationMs / 1000} s (seed ${this.seed})`)
    await Promise.all([this.traffic(until), this.chaos(until)])
    this.say('storm over: everyone is up and logged in; waiting for every acknowledged message')
    for (const user of USERS) {
      const peer = this.peerOf(user)
      if (peer != null && !peer.alive) throw new Error(`${user}'s ${peer.name} is down after the storm`)
    }
    const deadline = performance.now() + this.drainMs
    while (performance.now() < deadline && this.pending().length > 0) await sleep(1000)
    this.say(`drained: ${this.pending().length} acknowledged deliveries not shown`)
    for (const user of USERS) await this.checkState(this.peerOf(user), 'the storm')
  }

  /** Acknowledged (message, recipient) pairs not shown yet. */
  pending () {
    const out = []
    for (const m of this.messages.values()) for (const u of m.acked) if (!m.shown.has(u)) out.push({ token: m.token, to: u })
    return out
  }

  ledger () {
    let acknowledged = 0; let shown = 0; let duplicated = 0; let unconfirmedShown = 0
    const lost = []; const dups = []; const latency = []
    for (const m of this.messages.values()) {
      for (const u of m.to) {
        const times = m.shown.get(u)
        if (m.acked.has(u)) {
          acknowledged++
          if (times == null) lost.push(`soak${m.token} ${m.from} → ${u} (${m.kind}, sent at ${m.sentAtS}s, answer ${m.answer})`)
        } else if (times != null) unconfirmedShown++
        if (times != null) {
          shown++
          latency.push(times[0] - m.sentAt)
          if (times.length > 1) { duplicated++; dups.push(`soak${m.token} ${m.from} → ${u} ×${times.length}`) }
        }
      }
    }
    const messages = [...this.messages.values()]
    const lat = stats(latency, 0)
    return {
      seed: this.seed,
      durationMs: this.durationMs,
      sent: { messages: messages.length, dm: messages.filter(m => m.kind === 'dm').length, conference: messages.filter(m => m.kind === 'conference').length, deliveries: messages.reduce((n, m) => n + m.to.length, 0) },
      acknowledged,
      shown,
      unconfirmedShown,
      lost: lost.length,
      duplicated: duplicated,
      misdelivered: this.misdelivered.length,
      deliveryMs: { p50: lat.median, p99: lat.p99, max: lat.max },
      storm: this.storm,
      violations: this.violations,
      details: { lost, duplicated: dups, misdelivered: this.misdelivered.map(m => `${m.peer} (${m.user}): ${m.line}`), refusedOrErrors: this.commandErrors.slice(0, 50) }
    }
  }

  /** Let every paused program go on (before stopping, so that it can stop). */
  release () {
    for (const p of this.pausedPids) p.signal('SIGCONT')
    this.stopping = true
  }
}

function shuffle (xs, rng) {
  const out = [...xs]
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rng.next() * (i + 1))
    ;[out[i], out[j]] = [out[j], out[i]]
  }
  return out
}

async function retry (fn, what, attempts = 5) {
  let last
  for (let i = 1; i <= attempts; i++) {
    try {
      const r = await fn()
      if (r?.index != null && r.index < 0) throw new Error(r.line)
      return r
    } catch (err) {
      last = err
      await sleep(Math.min(1000 * i, 5000))
    }
  }
  throw new Error(`${what}: ${last?.message ?? last}`)
}

/** The ledger as lines for a person. */
export function ledgerLines (l) {
  return [
    `sent: ${l.sent.messages} messages (${l.sent.dm} direct, ${l.sent.conference} conference), ${l.sent.deliveries} deliveries`,
    `acknowledged (sender told delivered or queued): ${l.acknowledged}`,
    `shown: ${l.shown} (of which ${l.unconfirmedShown} whose sender got no answer: killed or paused while sending)`,
    `lost: ${l.lost}   duplicated: ${l.duplicated}   misdelivered: ${l.misdelivered}`,
    `time to delivery: p50 ${l.deliveryMs.p50} ms, p99 ${l.deliveryMs.p99} ms, max ${l.deliveryMs.max} ms`,
    `storm: ${l.storm.kills} kill -9 (${l.storm.restarts} restarts), ${l.storm.pauses} SIGSTOP of ${PAUSE_MS / 1000} s, ${l.storm.starvations} starvations of ${STARVE_MS / 1000} s, ${l.storm.moves} logins on another peer`,
    `friendships or memberships missing after a login: ${l.violations.length}`,
    ...l.violations.map(v => `  ${v}`),
    ...l.details.lost.map(x => `  lost ${x}`),
    ...l.details.duplicated.map(x => `  duplicated ${x}`),
    ...l.details.misdelivered.map(x => `  misdelivered ${x}`)
  ]
}
