#!/usr/bin/env node
/**
 * Start-up benchmark of the built programs (run `npm run bench:startup`, which builds first).
 * In a temp CONF_CHAT_HOME on loopback it starts a supernode (its bundle) on a free port,
 * then, RUNS times each: the node program as users run it (the bundle,
 * `node --max-semi-space-size=1 packages/cli/dist/conf-chat.js`: the programs' NODE_FLAGS,
 * as in its #! line), `npm run node` (what a user types: npm + the build's staleness check +
 * the bundle) and, for comparison, the unbundled tsc output (`node packages/cli/dist/main.js`,
 * the same flags), and measures the time from spawning until the
 * "joined the network" line. Then it reads the RSS (VmRSS) of an idle node (not logged in)
 * and of the supernode after IDLE_MS; then, with WORK_PEERS more node programs in the
 * network, the idle node registers and logs out WORK_USERS users (DHT puts and gets: the
 * account, name and presence records, the user directory), and its RSS is read again after
 * IDLE_MS, and once more IDLE_MS after its password checker (a worker thread that ends
 * 10 s after the last registration's check) ended, and then every 5 s for SETTLE_MS more
 * (V8 gives back the pages its heap grew by during the work only when its memory reducer
 * runs, some seconds after the work: the reading 5 s after the worker ended catches it
 * before or after, and the last of these readings is what the peer keeps). Baseline, in the same run: a bare
 * `node -e` process (spawn to its first line, and its idle RSS). The RSS is also split by
 * mapping (/proc/<pid>/smaps): the node binary, glibc's heap, anonymous memory, other
 * files. Prints the figures and writes them as JSON to results/bench-startup-<time>.json.
 *
 *   npm run bench:startup -- [--runs 5] [--idle-ms 5000] [--work-peers 4] [--work-users 10] [--settle-ms 30000]
 *                            (or RUNS=5 IDLE_MS=5000 WORK_PEERS=4 WORK_USERS=10 SETTLE_MS=30000)
 */
import { spawn } from 'node:child_process'
import { readFile, realpath } from 'node:fs/promises'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { parseArgs } from 'node:util'
import { BenchRun, RESULTS, ROOT, sleep, stats } from './lib/bench.mjs'
import { MALLOC_ENV, NODE_FLAGS } from '../packages/program/dist/heap.js'
import { PASSWORD_CHECKER_IDLE_MS } from '../packages/protocol/dist/password-strength.js'

const { values: flags } = parseArgs({
  options: {
    runs: { type: 'string', default: process.env.RUNS ?? '5' },
    'idle-ms': { type: 'string', default: process.env.IDLE_MS ?? '5000' },
    'work-peers': { type: 'string', default: process.env.WORK_PEERS ?? '4' },
    'work-users': { type: 'string', default: process.env.WORK_USERS ?? '10' },
    'settle-ms': { type: 'string', default: process.env.SETTLE_MS ?? '30000' },
    out: { type: 'string', default: RESULTS },
    help: { type: 'boolean', default: false }
  }
})
if (flags.help) {
  console.log('usage: node scripts/bench-startup.mjs [--runs 5 (or RUNS=)] [--idle-ms 5000 (or IDLE_MS=)] [--work-peers 4 (or WORK_PEERS=)] [--work-users 10 (or WORK_USERS=)] [--settle-ms 30000 (or SETTLE_MS=)] [--out results/]')
  process.exit(0)
}
const RUNS = Number(flags.runs)
const IDLE_MS = Number(flags['idle-ms'])
const WORK_PEERS = Number(flags['work-peers'])
const WORK_USERS = Number(flags['work-users'])
const SETTLE_MS = Number(flags['settle-ms'])
/** How often the RSS is read while the peer settles after the work. */
const SETTLE_STEP_MS = 5_000
/** The programs as users run them: the bundles `npm run build` makes (scripts/build-bundles.mjs). */
const NODE_BUNDLE = join(ROOT, 'packages/cli/dist/conf-chat.js')
const SUPERNODE_BUNDLE = join(ROOT, 'packages/supernode/dist/conf-chat-supernode.js')
/** tsc's output, unbundled, for comparison. */
const NODE_UNBUNDLED = join(ROOT, 'packages/cli/dist/main.js')
const WAIT_MS = 60_000

const run = new BenchRun('startup')

function env (home, extra = {}) {
  const e = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CONF_CHAT_') && k !== 'DEBUG'))
  return { ...e, ...MALLOC_ENV, NO_COLOR: '1', CONF_CHAT_HOME: home, ...extra }
}

function start (command, args, options) {
  const t0 = performance.now()
  const child = run.track(spawn(command, args, { cwd: ROOT, stdio: 'pipe', ...options }))
  const lines = []
  const waiters = []
  child.stderr.resume()
  createInterface({ input: child.stdout }).on('line', line => {
    lines.push({ line, ms: performance.now() - t0 })
    for (const w of [...waiters]) w()
  })
  const exited = new Promise(resolve => child.once('close', (code, signal) => resolve({ code, signal })))
  exited.then(() => { for (const w of [...waiters]) w() })
  const waitFor = re => new Promise((resolve, reject) => {
    const check = () => {
      const hit = lines.find(l => re.test(l.line))
      if (hit != null || child.exitCode != null || child.signalCode != null) {
        clearTimeout(timer)
        waiters.splice(waiters.indexOf(check), 1)
        if (hit != null) resolve(hit)
        else reject(new Error(`${command} ${args.join(' ')} exited before printing ${re}: ${lines.map(l => l.line).join(' | ')}`))
      }
    }
    const timer = setTimeout(() => {
      waiters.splice(waiters.indexOf(check), 1)
      reject(new Error(`no line matching ${re} within ${WAIT_MS} ms`))
    }, WAIT_MS)
    waiters.push(check)
    check()
  })
  return { child, waitFor, exited }
}

async function freePort () {
  const server = createServer()
  await new Promise((resolve, reject) => { server.once('error', reject); server.listen(0, '127.0.0.1', resolve) })
  const { port } = server.address()
  await new Promise(resolve => server.close(resolve))
  return port
}

async function rssKb (pid) {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  return Number(status.match(/^VmRSS:\s+(\d+) kB/m)[1])
}

/**
 * Where a process's resident memory is (kB, from /proc/<pid>/smaps): the node binary's
 * pages (code and read-only data: shared between node processes), glibc's main heap
 * (`[heap]`), anonymous mappings (V8's heap, big mallocs, other threads' malloc arenas,
 * WebAssembly memory) and other files (shared libraries, native addons).
 */
async function rssPartsKb (pid) {
  const parts = { nodeBinary: 0, mallocHeap: 0, anonymous: 0, otherFiles: 0 }
  const binary = await realpath(process.execPath)
  let part = 'anonymous'
  for (const line of (await readFile(`/proc/${pid}/smaps`, 'utf8')).split('\n')) {
    const mapping = line.match(/^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/)
    if (mapping != null) {
      const name = mapping[1]
      part = name === binary ? 'nodeBinary' : name === '[heap]' ? 'mallocHeap' : name === '' || name.startsWith('[') ? 'anonymous' : 'otherFiles'
    } else if (line.startsWith('Rss:')) {
      parts[part] += Number(line.split(/\s+/)[1])
    }
  }
  return parts
}

const round = x => Math.round(x)
const median = xs => stats(xs, 0).median

async function main () {
  const home = await run.tempDir()
  const port = await freePort()
  const supernode = start(process.execPath, [...NODE_FLAGS, SUPERNODE_BUNDLE], { env: env(home, { CONF_CHAT_PORT: String(port) }) })
  const snReady = await supernode.waitFor(/^address file: /)
  console.log(`supernode on 127.0.0.1:${port}, ready ${round(snReady.ms)} ms after spawn`)

  const runs = { bareNode: [], program: [], npmRunNode: [], unbundled: [] }
  // baseline: a bare Node.js process, spawn to its first line
  const bareArgs = ['-e', 'console.log("ready"); setInterval(() => {}, 1000)']
  for (let i = 0; i < RUNS; i++) {
    const bare = start(process.execPath, bareArgs, { env: env(home) })
    runs.bareNode.push({ firstLineMs: round((await bare.waitFor(/^ready$/)).ms) })
    bare.child.kill('SIGTERM')
    await bare.exited
  }
  console.log(`bare node -e: first line after ${median(runs.bareNode.map(r => r.firstLineMs))} ms (median of ${RUNS})`)
  for (const [kind, command, args] of [
    ['program', process.execPath, [...NODE_FLAGS, NODE_BUNDLE]],
    ['npmRunNode', 'npm', ['run', '--silent', 'node']],
    ['unbundled', process.execPath, [...NODE_FLAGS, NODE_UNBUNDLED]]
  ]) {
    for (let i = 0; i < RUNS; i++) {
      const node = start(command, args, { env: env(home) })
      const id = await node.waitFor(/^peer id: /)
      const joined = await node.waitFor(/^joined the network via /)
      runs[kind].push({ peerIdLineMs: round(id.ms), joinedMs: round(joined.ms) })
      console.log(`${kind} run ${i + 1}: peer id after ${round(id.ms)} ms, joined after ${round(joined.ms)} ms`)
      node.child.stdin.end('quit\n') // a clean stop, also through npm
      const exit = await node.exited
      if (exit.code !== 0) throw new Error(`${kind} exited with ${JSON.stringify(exit)}`)
    }
  }

  // idle RSS of a peer process (joined, not logged in), of the supernode, and of a bare node process
  const idle = start(process.execPath, [...NODE_FLAGS, NODE_BUNDLE], { env: env(home) })
  const bare = start(process.execPath, bareArgs, { env: env(home) })
  await idle.waitFor(/^joined the network via /)
  await bare.waitFor(/^ready$/)
  await sleep(IDLE_MS)
  const rss = { peerKb: await rssKb(idle.child.pid), supernodeKb: await rssKb(supernode.child.pid), bareNodeKb: await rssKb(bare.child.pid) }
  rss.peerParts = await rssPartsKb(idle.child.pid)
  rss.bareNodeParts = await rssPartsKb(bare.child.pid)
  bare.child.kill('SIGTERM')

  // the same peer after DHT work, in a network of WORK_PEERS more peers
  const others = []
  for (let i = 0; i < WORK_PEERS; i++) {
    const other = start(process.execPath, [...NODE_FLAGS, NODE_BUNDLE], { env: env(home) })
    await other.waitFor(/^joined the network via /)
    others.push(other)
  }
  const workStart = performance.now()
  for (let i = 0; i < WORK_USERS; i++) {
    const user = `bench${i}`
    idle.child.stdin.write(`register ${user}\nviolet kettle ${i}\nBench User ${i}\n`)
    await idle.waitFor(new RegExp(`^\\[register\\] Registered ${user} `))
    idle.child.stdin.write('logout\n')
    await idle.waitFor(new RegExp(`^\\[logout\\] Logged out ${user}$`))
  }
  const workMs = performance.now() - workStart
  console.log(`DHT work: ${WORK_USERS} users registered and logged out in ${round(workMs)} ms, ${WORK_PEERS + 2} peers in the network`)
  await sleep(IDLE_MS)
  rss.peerAfterWorkKb = await rssKb(idle.child.pid)
  // the password checker (a worker thread with zxcvbn's dictionaries) ends
  // PASSWORD_CHECKER_IDLE_MS after the last registration's check: read IDLE_MS after that
  await sleep(PASSWORD_CHECKER_IDLE_MS)
  rss.peerAfterCheckerKb = await rssKb(idle.child.pid)
  rss.peerAfterCheckerParts = await rssPartsKb(idle.child.pid)
  // then while it settles: the last reading is what it keeps
  rss.settlingKb = []
  for (let waited = 0; waited < SETTLE_MS; waited += SETTLE_STEP_MS) {
    await sleep(SETTLE_STEP_MS)
    rss.settlingKb.push(await rssKb(idle.child.pid))
  }
  if (rss.settlingKb.length > 0) rss.peerSettledParts = await rssPartsKb(idle.child.pid)
  rss.otherPeerKb = others.length > 0 ? await rssKb(others[0].child.pid) : null
  for (const p of [idle, ...others]) p.child.stdin.end('quit\n')
  await Promise.all([idle.exited, bare.exited, ...others.map(p => p.exited)])
  supernode.child.kill('SIGTERM')
  await supernode.exited

  const result = {
    runs: RUNS,
    idleMs: IDLE_MS,
    medians: {
      programJoinedMs: median(runs.program.map(r => r.joinedMs)),
      programPeerIdLineMs: median(runs.program.map(r => r.peerIdLineMs)),
      npmRunNodeJoinedMs: median(runs.npmRunNode.map(r => r.joinedMs)),
      unbundledJoinedMs: median(runs.unbundled.map(r => r.joinedMs)),
      bareNodeFirstLineMs: median(runs.bareNode.map(r => r.firstLineMs))
    },
    rss,
    work: { peers: WORK_PEERS, users: WORK_USERS, ms: round(workMs) },
    settle: { ms: SETTLE_MS, stepMs: SETTLE_STEP_MS },
    samples: runs,
    commands: {
      program: `node ${NODE_FLAGS.join(' ')} packages/cli/dist/conf-chat.js (the bundle, as its #! line starts it; CONF_CHAT_HOME with a supernode.json)`,
      npmRunNode: 'npm run --silent node (npm + the staleness check of the build + the bundle)',
      unbundled: `node ${NODE_FLAGS.join(' ')} packages/cli/dist/main.js (tsc output, not bundled)`,
      bareNode: `node ${bareArgs.map(a => JSON.stringify(a)).join(' ')}`
    }
  }
  const mb = kb => (kb / 1024).toFixed(1)
  console.log('')
  console.log(`spawn -> "joined", node program (median of ${RUNS}): ${result.medians.programJoinedMs} ms (peer id printed at ${result.medians.programPeerIdLineMs} ms)`)
  console.log(`spawn -> "joined", npm run node  (median of ${RUNS}): ${result.medians.npmRunNodeJoinedMs} ms`)
  console.log(`spawn -> "joined", unbundled dist/main.js (median of ${RUNS}): ${result.medians.unbundledJoinedMs} ms`)
  console.log(`baseline: spawn -> first line of a bare node -e (median of ${RUNS}): ${result.medians.bareNodeFirstLineMs} ms`)
  console.log(`RSS after ${IDLE_MS / 1000} s idle: peer ${mb(rss.peerKb)} MiB, supernode ${mb(rss.supernodeKb)} MiB (baseline: bare node -e ${mb(rss.bareNodeKb)} MiB)`)
  console.log(`RSS of the same peer ${IDLE_MS / 1000} s after the DHT work: ${mb(rss.peerAfterWorkKb)} MiB, its password checker still running (a peer that did none: ${rss.otherPeerKb == null ? '-' : mb(rss.otherPeerKb)} MiB)`)
  console.log(`RSS of the same peer ${IDLE_MS / 1000} s after its password checker ended (${(IDLE_MS + PASSWORD_CHECKER_IDLE_MS) / 1000} s after the work): ${mb(rss.peerAfterCheckerKb)} MiB`)
  if (rss.settlingKb.length > 0) {
    const afterChecker = IDLE_MS + rss.settlingKb.length * SETTLE_STEP_MS
    console.log(`RSS of the same peer ${afterChecker / 1000} s after its password checker ended (${(afterChecker + PASSWORD_CHECKER_IDLE_MS) / 1000} s after the work): ${mb(rss.settlingKb.at(-1))} MiB (every ${SETTLE_STEP_MS / 1000} s from the reading before: ${rss.settlingKb.map(mb).join(', ')})`)
  }
  const parts = p => `node binary ${mb(p.nodeBinary)}, malloc heap ${mb(p.mallocHeap)}, anonymous (V8 heap, big blocks, threads' arenas) ${mb(p.anonymous)}, other files ${mb(p.otherFiles)}`
  console.log(`  of the idle peer: ${parts(rss.peerParts)} (bare node -e: ${parts(rss.bareNodeParts)})`)
  console.log(`  of the peer once its password checker ended: ${parts(rss.peerAfterCheckerParts)}`)
  if (rss.peerSettledParts != null) console.log(`  of the peer at the last reading: ${parts(rss.peerSettledParts)}`)
  console.log(run.machineLine())
  const file = await run.writeResult(flags.out, result)
  console.log(`wrote ${file}`)
}

await run.run(main)
