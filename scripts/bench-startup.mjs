#!/usr/bin/env node
/**
 * Start-up benchmark of the built programs (run `npm run bench:startup`, which builds first).
 * In a temp CONF_CHAT_HOME on loopback it starts a supernode on a free port, then, RUNS
 * times each: the node program (`node packages/cli/dist/main.js`, no flags) and
 * `npm run node` (what a user types: npm + the tsc -b check + the program), and measures
 * the time from spawning until the "joined the network" line. Then it reads the RSS
 * (VmRSS) of an idle node and of the supernode after IDLE_MS. Prints the figures and
 * writes them as JSON to results/bench-startup-<time>.json.
 */
import { spawn } from 'node:child_process'
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const RUNS = Number(process.env.RUNS ?? 5)
const IDLE_MS = Number(process.env.IDLE_MS ?? 5000)
const WAIT_MS = 60_000

const started = new Set()

function env (home, extra = {}) {
  const e = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('CONF_CHAT_') && k !== 'DEBUG'))
  return { ...e, NO_COLOR: '1', CONF_CHAT_HOME: home, ...extra }
}

function start (command, args, options) {
  const t0 = performance.now()
  const child = spawn(command, args, { cwd: ROOT, stdio: 'pipe', ...options })
  started.add(child)
  const lines = []
  const waiters = []
  child.stderr.resume()
  createInterface({ input: child.stdout }).on('line', line => {
    lines.push({ line, ms: performance.now() - t0 })
    for (const w of [...waiters]) w()
  })
  const exited = new Promise(resolve => child.once('close', (code, signal) => { started.delete(child); resolve({ code, signal }) }))
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

const median = xs => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2 }
const round = x => Math.round(x)

async function main () {
  const home = await mkdtemp(join(tmpdir(), 'conf-chat-bench-'))
  try {
    const port = await freePort()
    const supernode = start(process.execPath, [join(ROOT, 'packages/supernode/dist/main.js')], { env: env(home, { CONF_CHAT_PORT: String(port) }) })
    const snReady = await supernode.waitFor(/^address file: /)
    console.log(`supernode on 127.0.0.1:${port}, ready ${round(snReady.ms)} ms after spawn`)

    const runs = { program: [], npmRunNode: [] }
    for (const [kind, command, args] of [
      ['program', process.execPath, [join(ROOT, 'packages/cli/dist/main.js')]],
      ['npmRunNode', 'npm', ['run', '--silent', 'node']]
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

    // idle RSS of a peer process and of the supernode
    const idle = start(process.execPath, [join(ROOT, 'packages/cli/dist/main.js')], { env: env(home) })
    await idle.waitFor(/^joined the network via /)
    await new Promise(resolve => setTimeout(resolve, IDLE_MS))
    const rss = { peerKb: await rssKb(idle.child.pid), supernodeKb: await rssKb(supernode.child.pid) }
    idle.child.stdin.end('quit\n')
    await idle.exited
    supernode.child.kill('SIGTERM')
    await supernode.exited

    const result = {
      benchmark: 'startup',
      date: new Date().toISOString(),
      node: process.version,
      cpus: cpus().length,
      runs: RUNS,
      idleMs: IDLE_MS,
      medians: {
        programJoinedMs: median(runs.program.map(r => r.joinedMs)),
        programPeerIdLineMs: median(runs.program.map(r => r.peerIdLineMs)),
        npmRunNodeJoinedMs: median(runs.npmRunNode.map(r => r.joinedMs))
      },
      rss,
      samples: runs,
      commands: {
        program: 'node packages/cli/dist/main.js (no flags; CONF_CHAT_HOME with a supernode.json)',
        npmRunNode: 'npm run --silent node (npm + tsc -b check + the program)'
      }
    }
    console.log('')
    console.log(`spawn -> "joined", node program (median of ${RUNS}): ${result.medians.programJoinedMs} ms (peer id printed at ${result.medians.programPeerIdLineMs} ms)`)
    console.log(`spawn -> "joined", npm run node  (median of ${RUNS}): ${result.medians.npmRunNodeJoinedMs} ms`)
    console.log(`RSS after ${IDLE_MS / 1000} s idle: peer ${(rss.peerKb / 1024).toFixed(1)} MB, supernode ${(rss.supernodeKb / 1024).toFixed(1)} MB`)
    await mkdir(join(ROOT, 'results'), { recursive: true })
    const file = join(ROOT, 'results', `bench-startup-${result.date.replace(/[:.]/g, '-')}.json`)
    await writeFile(file, JSON.stringify(result, null, 2) + '\n')
    console.log(`wrote ${file}`)
  } finally {
    for (const child of started) child.kill('SIGKILL') // only what this script spawned
    await rm(home, { recursive: true, force: true })
  }
}

await main()
