#!/usr/bin/env node
// Idle CPU of logged-in users: a supernode and N `node` programs in command mode (built,
// from dist/), each a process of its own; every user registers, logs in and befriends the
// next --friends users (a ring), then nobody does anything for --window ms. The CPU each
// process used in the window (utime + stime from /proc/<pid>/stat) as % of one core:
// median, p95, max over the peers, the supernode apart. With --profile, one peer runs under
// `node --cpu-prof` and the samples that fall in the window are summed by function and by
// module (what an idle peer still does). Prints a table and writes JSON under results/.
//
//   npm run bench:idle -- [--users 10] [--friends 2] [--settle 30000] [--window 60000] [--profile]
//   (--root <checkout>: run another checkout's built programs, e.g. a worktree of an older commit)
import { spawn } from 'node:child_process'
import { copyFile, mkdir, readdir, readFile } from 'node:fs/promises'
import { loadavg } from 'node:os'
import { join, resolve } from 'node:path'
import { createInterface } from 'node:readline'
import { parseArgs } from 'node:util'
import { BenchRun, RESULTS, ROOT, fmt, sleep, stats } from './lib/bench.mjs'

const { values: flags } = parseArgs({
  options: {
    users: { type: 'string', default: '10' },
    friends: { type: 'string', default: '2' },
    settle: { type: 'string', default: '30000' },
    window: { type: 'string', default: '60000' },
    profile: { type: 'boolean', default: false },
    root: { type: 'string', default: ROOT },
    out: { type: 'string', default: RESULTS },
    help: { type: 'boolean', default: false }
  }
})
if (flags.help) {
  console.log('usage: node scripts/bench-idle.mjs [--users 10] [--friends 2 (each befriends the next n)] [--settle 30000 (ms quiet before the window)] [--window 60000 (ms measured)] [--profile (one peer under --cpu-prof)] [--root <checkout> (whose dist/ to run)] [--out results/]')
  process.exit(0)
}
const USERS = Number(flags.users)
const FRIENDS = Math.min(Number(flags.friends), USERS - 1)
const SETTLE_MS = Number(flags.settle)
const WINDOW_MS = Number(flags.window)
const CHECKOUT = resolve(flags.root)
const STEP_TIMEOUT_MS = 180_000
/** A friend request or answer that fell back to the mailbox shows at the next mailbox read (up to 5 min). */
const FRIEND_TIMEOUT_MS = 400_000
/** Programs started (and users registered, friendships made) at once during setup. */
const SETUP_BATCH = 5
/** The peer run under --cpu-prof (not the first: user 0 is nobody's special case either way). */
const PROFILED = 1
/** Clock ticks per second of /proc/<pid>/stat's utime and stime (getconf CLK_TCK on Linux). */
const CLK_TCK = 100

if (!(USERS >= 2) || !(WINDOW_MS > 0)) {
  console.error('--users must be at least 2 and --window positive')
  process.exit(2)
}

const run = new BenchRun('idle')

/** A program in command mode: its stdout lines, its stdin. */
class Program {
  constructor (name, main, { args = [], env = {}, execArgv = [] } = {}) {
    this.name = name
    this.lines = []
    this.waiters = new Set()
    const base = {}
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('CONF_CHAT_') && k !== 'DEBUG') base[k] = v
    this.child = run.track(spawn(process.execPath, [...execArgv, main, ...args], { cwd: CHECKOUT, env: { ...base, NO_COLOR: '1', ...env }, stdio: 'pipe' }))
    this.child.stdin.on('error', () => {})
    this.exited = new Promise(resolve => this.child.once('exit', resolve))
    this.child.once('exit', () => { this.gone = true; for (const w of this.waiters) w() })
    createInterface({ input: this.child.stdout }).on('line', line => {
      this.lines.push(line)
      for (const w of this.waiters) w()
    })
    this.stderr = []
    createInterface({ input: this.child.stderr }).on('line', line => { this.stderr.push(line) })
  }

  get pid () { return this.child.pid }

  send (...lines) { for (const line of lines) this.child.stdin.write(line + '\n') }

  /** The first stdout line (from line `from` on) matching `re`, waiting up to `timeoutMs`. */
  waitFor (re, timeoutMs = STEP_TIMEOUT_MS, from = 0) {
    return new Promise((resolve, reject) => {
      const check = () => {
        const line = this.lines.slice(from).find(l => re.test(l))
        if (line != null) { done(); resolve(line.match(re)) } else if (this.gone) { done(); reject(new Error(`${this.name} exited\n${this.stderr.slice(-10).join('\n')}`)) }
      }
      const timer = setTimeout(() => {
        done()
        reject(new Error(`${this.name}: no line matching ${re} within ${timeoutMs} ms; last lines:\n${this.lines.slice(-10).join('\n')}\n${this.stderr.slice(-10).join('\n')}`))
      }, timeoutMs)
      const done = () => { clearTimeout(timer); this.waiters.delete(check) }
      this.waiters.add(check)
      check()
    })
  }

  /** Quit (logs out), SIGKILL after `graceMs`. */
  async quit (graceMs = 20_000) {
    if (this.child.exitCode != null || this.child.signalCode != null) return
    this.send('quit')
    const timer = setTimeout(() => { this.child.kill('SIGKILL') }, graceMs)
    await this.exited
    clearTimeout(timer)
  }
}

/** CPU time (utime + stime) of a process so far, in seconds. */
async function cpuSeconds (pid) {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  // fields[0] is field 3 (state): utime is field 14, stime field 15
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK
}

async function rssMiB (pid) {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  return Number(status.match(/^VmRSS:\s+(\d+) kB/m)?.[1] ?? NaN) / 1024
}

/**
 * Send `command` to `p` and wait for `done()`; an `[error]` line from `p` meanwhile (a
 * lookup that failed on a loaded machine) sends it again, up to 5 times.
 */
async function attempt (p, command, done) {
  for (let i = 1; ; i++) {
    const from = p.lines.length
    p.send(command)
    const failed = p.waitFor(/^\[error\] /, FRIEND_TIMEOUT_MS, from).then(m => m[0], () => undefined)
    const result = await Promise.race([done().then(() => undefined), failed])
    if (result == null) return
    if (i >= 5) throw new Error(`${p.name}: ${command}: ${result}`)
    console.log(`${p.name}: ${command}: ${result}; again`)
    await sleep(2_000)
  }
}

/** `fn(item, index)` over `items`, `limit` at a time. */
async function inBatches (items, limit, fn) {
  for (let i = 0; i < items.length; i += limit) await Promise.all(items.slice(i, i + limit).map((item, j) => fn(item, i + j)))
}

/**
 * The samples of a V8 CPU profile that fall in [fromUs, toUs] (the monotonic clock, as
 * process.hrtime), summed by function and by module: ms of CPU each.
 */
function summarizeProfile (profile, fromUs, toUs) {
  const nodes = new Map(profile.nodes.map(n => [n.id, n]))
  const parents = new Map()
  for (const n of profile.nodes) for (const c of n.children ?? []) parents.set(c, n.id)
  const byFunction = new Map()
  const byModule = new Map()
  const byCaller = new Map()
  let t = profile.startTime
  let busyUs = 0
  let idleUs = 0
  const short = url => url.replace(/^file:\/\//, '').replace(/^.*\/node_modules\//, '').replace(/^.*\/packages\//, 'packages/')
  const moduleOf = url => {
    if (url === '') return '(native/builtin)'
    if (url.startsWith('node:')) return 'node:' + url.slice(5).split('/')[0]
    const s = short(url)
    if (s.startsWith('packages/')) return s.replace(/\.js$/, '')
    const parts = s.split('/')
    return parts[0].startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]
  }
  // who asked for the work: the nearest frame up the stack in our packages, else in a
  // libp2p part that works on its own (an async continuation loses the rest of its stack)
  const PARTS = ['connection-monitor', 'kad-dht', 'peer-store', 'identify', 'yamux', 'libp2p-noise', 'libp2p-tcp', 'classic-level', 'datastore-level']
  const callerOf = id => {
    let library
    for (let n = nodes.get(id); n != null; n = nodes.get(parents.get(n.id))) {
      const url = n.callFrame.url
      if (url.includes('/packages/') && !url.includes('/node_modules/')) return short(url).replace(/\.js$/, '').replace('/dist/src/', '/')
      library ??= PARTS.find(p => url.includes(p))
    }
    return library ?? 'other'
  }
  for (let i = 0; i < profile.samples.length; i++) {
    const dt = profile.timeDeltas[i] ?? 0
    t += dt
    if (t < fromUs || t > toUs) continue
    const node = nodes.get(profile.samples[i])
    const f = node.callFrame
    if (f.functionName === '(idle)') { idleUs += dt; continue }
    busyUs += dt
    const fname = `${f.functionName || '(anonymous)'} ${short(f.url)}:${f.lineNumber + 1}`
    byFunction.set(fname, (byFunction.get(fname) ?? 0) + dt)
    const m = f.functionName.startsWith('(') ? f.functionName : moduleOf(f.url)
    byModule.set(m, (byModule.get(m) ?? 0) + dt)
    const caller = callerOf(node.id)
    byCaller.set(caller, (byCaller.get(caller) ?? 0) + dt)
  }
  const top = (map, n) => [...map].sort((a, b) => b[1] - a[1]).slice(0, n).map(([what, us]) => ({ what, ms: Math.round(us / 100) / 10 }))
  return { windowMs: Math.round((toUs - fromUs) / 1000), busyMs: Math.round(busyUs / 1000), idleMs: Math.round(idleUs / 1000), byCaller: top(byCaller, 25), byModule: top(byModule, 25), byFunction: top(byFunction, 30) }
}

async function main () {
  const home = await run.tempDir()
  const profDir = join(home, 'profile')
  await mkdir(profDir)
  console.log(`bench-idle: supernode + ${USERS} users (node programs in command mode, ${CHECKOUT}), each befriends the next ${FRIENDS}; settle ${SETTLE_MS / 1000} s, window ${WINDOW_MS / 1000} s`)
  const supernode = new Program('supernode', join(CHECKOUT, 'packages/supernode/dist/main.js'), { env: { CONF_CHAT_HOME: home, CONF_CHAT_PORT: '0' } })
  const [, snAddr] = await supernode.waitFor(/^listening on (\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\/\S+)$/)
  await supernode.waitFor(/^address file: /)
  let t = performance.now()
  const names = Array.from({ length: USERS }, (_, i) => `idle${String(i).padStart(3, '0')}`)
  const users = []
  await inBatches(names, SETUP_BATCH, async (name, i) => {
    const execArgv = flags.profile && i === PROFILED ? ['--cpu-prof', '--cpu-prof-dir', profDir] : []
    const p = new Program(name, join(CHECKOUT, 'packages/cli/dist/main.js'), {
      args: ['--commands', '--bootstrap', snAddr, '--data', join(home, name)],
      env: { CONF_CHAT_HOME: home, CONF_CHAT_BCRYPT_COST: '4', CONF_CHAT_KDF_MEMORY: '8' },
      execArgv
    })
    users[i] = p
    await p.waitFor(/^joined the network via /)
  })
  const startMs = performance.now() - t
  t = performance.now()
  // on a loaded machine a registration can fail half-way (the account written, the
  // directory entry not): then the name is taken by this very user, who logs in instead
  await inBatches(users, SETUP_BATCH, async p => {
    for (let attempt = 1; ; attempt++) {
      const from = p.lines.length
      if (attempt === 1) p.send('register', p.name, `violet kettle ${p.name}`, `Idle ${p.name}`)
      else p.send(`login ${p.name}`, `violet kettle ${p.name}`)
      const [line] = await p.waitFor(new RegExp(`^(\\[register\\] Registered ${p.name} |\\[login\\] Logged in as ${p.name} |\\[error\\] )`), STEP_TIMEOUT_MS, from)
      if (!line.startsWith('[error]')) return
      if (attempt >= 5) throw new Error(`${p.name}: ${line}`)
      console.log(`${p.name}: ${line}; logging in instead`)
      await sleep(2_000)
    }
  })
  const pairs = []
  for (let d = 1; d <= FRIENDS; d++) for (let i = 0; i < USERS; i++) pairs.push([users[i], users[(i + d) % USERS]])
  // one request per user at a time: a batch takes every user at most once as each side
  for (let d = 1; d <= FRIENDS; d++) {
    await inBatches(pairs.slice((d - 1) * USERS, d * USERS), SETUP_BATCH, async ([a, b]) => {
      await attempt(a, `friend-add ${b.name}`, () => b.waitFor(new RegExp(`^\\[friends\\] ${a.name} wants to be your friend`), FRIEND_TIMEOUT_MS))
      await attempt(b, `friend-accept ${a.name}`, () => a.waitFor(new RegExp(`^\\[friends\\] ${b.name} accepted: you are now friends`), FRIEND_TIMEOUT_MS))
    })
  }
  const setupMs = performance.now() - t
  console.log(`started in ${(startMs / 1000).toFixed(1)} s; registered and befriended (${pairs.length} friendships) in ${(setupMs / 1000).toFixed(1)} s`)
  if (SETTLE_MS > 0) {
    console.log(`settling for ${(SETTLE_MS / 1000).toFixed(0)} s (1-min load average now ${loadavg()[0].toFixed(1)})`)
    await sleep(SETTLE_MS)
  }

  const all = [supernode, ...users]
  const loadBefore = loadavg()
  const before = await Promise.all(all.map(p => cpuSeconds(p.pid)))
  const fromUs = Number(process.hrtime.bigint() / 1000n)
  const t0 = performance.now()
  console.log(`window: ${WINDOW_MS / 1000} s of nothing (load average ${loadBefore.map(x => x.toFixed(2)).join(' ')})`)
  await sleep(WINDOW_MS)
  const after = await Promise.all(all.map(p => cpuSeconds(p.pid)))
  const toUs = Number(process.hrtime.bigint() / 1000n)
  const elapsedS = (performance.now() - t0) / 1000
  const loadAfter = loadavg()
  const pct = all.map((_, i) => 100 * (after[i] - before[i]) / elapsedS)
  const rss = await Promise.all(all.map(p => rssMiB(p.pid)))
  const peerPct = stats(pct.slice(1), 3)
  const linesInWindow = users.map(p => p.lines.length)

  await Promise.all(all.map(p => p.quit()))
  let profile
  let profileFile
  if (flags.profile) {
    const files = (await readdir(profDir)).filter(f => f.endsWith('.cpuprofile'))
    if (files.length === 0) console.log('no profile written (the profiled peer did not exit cleanly)')
    else {
      profile = summarizeProfile(JSON.parse(await readFile(join(profDir, files[0]), 'utf8')), fromUs, toUs)
      // kept for a closer look (Chrome DevTools, speedscope); the window is profile.fromUs..toUs
      await mkdir(flags.out, { recursive: true })
      profileFile = join(flags.out, `bench-idle-${USERS}-${new Date().toISOString().replace(/[:.]/g, '-')}.cpuprofile`)
      await copyFile(join(profDir, files[0]), profileFile)
    }
  }

  const result = {
    setup: { users: USERS, friendsEach: FRIENDS * 2, friendships: pairs.length, settleMs: SETTLE_MS, windowMs: WINDOW_MS, checkout: CHECKOUT, startMs: Math.round(startMs), setupMs: Math.round(setupMs) },
    loadavgWindow: { before: loadBefore, after: loadAfter },
    idleCpuPctOfOneCore: { peers: peerPct, supernode: Math.round(pct[0] * 1000) / 1000, perPeer: Object.fromEntries(users.map((p, i) => [p.name, Math.round(pct[i + 1] * 1000) / 1000])) },
    networkCpuPctOfOneCore: Math.round(pct.reduce((a, b) => a + b, 0) * 1000) / 1000,
    rssMiB: { supernode: Math.round(rss[0]), peers: stats(rss.slice(1), 1) },
    outputLinesAtEnd: linesInWindow,
    ...(profile != null ? { profile: { peer: users[PROFILED].name, file: profileFile, fromUs, toUs, ...profile } } : {})
  }

  console.log('')
  console.log(`idle CPU, % of one core over ${elapsedS.toFixed(1)} s (utime+stime from /proc/<pid>/stat)`)
  console.log(`${'what'.padEnd(30)} ${'n'.padStart(4)} ${'median'.padStart(8)} ${'p95'.padStart(8)} ${'max'.padStart(8)} ${'mean'.padStart(8)}`)
  console.log(`${`logged-in peer (${USERS} users)`.padEnd(30)} ${String(peerPct.n).padStart(4)} ${fmt(peerPct.median, 3).padStart(8)} ${fmt(peerPct.p95, 3).padStart(8)} ${fmt(peerPct.max, 3).padStart(8)} ${fmt(peerPct.mean, 3).padStart(8)}`)
  console.log(`${'supernode'.padEnd(30)} ${'1'.padStart(4)} ${fmt(pct[0], 3).padStart(8)}`)
  console.log(`whole network: ${fmt(result.networkCpuPctOfOneCore, 2)} % of one core; RSS: peers median ${fmt(result.rssMiB.peers.median)} MiB, supernode ${result.rssMiB.supernode} MiB`)
  console.log(`load average in the window: ${loadBefore.map(x => x.toFixed(2)).join(' ')} -> ${loadAfter.map(x => x.toFixed(2)).join(' ')}`)
  if (profile != null) {
    console.log(`\nprofile of ${users[PROFILED].name} in the window: ${profile.busyMs} ms busy of ${profile.windowMs} ms`)
    console.log('by caller (our nearest frame up the stack, else the libp2p part; ms):')
    for (const r of profile.byCaller.slice(0, 15)) console.log(`  ${String(r.ms).padStart(8)}  ${r.what}`)
    console.log('by module (self time, ms):')
    for (const r of profile.byModule.slice(0, 15)) console.log(`  ${String(r.ms).padStart(8)}  ${r.what}`)
    console.log('by function (self time, ms):')
    for (const r of profile.byFunction.slice(0, 20)) console.log(`  ${String(r.ms).padStart(8)}  ${r.what}`)
  }
  console.log(run.machineLine())
  const file = await run.writeResult(flags.out, result, `idle-${USERS}`)
  console.log(`wrote ${file}`)
}

await run.run(main)
