#!/usr/bin/env node
// The whole benchmark suite (`npm run bench`, which builds first): runs each benchmark
// script in turn as a child process (start-up and idle RSS, messages, accounts, DHT at 10,
// 30 and 60 peers, a conference of 20), each writing its JSON under
// results/bench-<time>/, then prints one summary table, each figure next to its baseline
// measured in the same run, and writes all of it to results/bench-<time>.json.
// A part that fails is marked so in the table and the exit code is 1; the others still run.
//
//   node scripts/bench.mjs [--quick] [--only messages,dht-10,...] [--pause 5000] [--out results/]
import { spawn } from 'node:child_process'
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { parseArgs } from 'node:util'
import { RESULTS, ROOT, loadString, machineInfo, sleep } from './lib/bench.mjs'

/** The parts, in the order they run: script, its flags for the full run and for --quick. */
const PARTS = [
  { name: 'startup', script: 'bench-startup.mjs', stem: 'startup', full: ['--runs', '5', '--idle-ms', '5000'], quick: ['--runs', '1', '--idle-ms', '2000'] },
  { name: 'messages', script: 'bench-messages.mjs', stem: 'messages', full: ['--rtt', '500', '--oneway', '2000', '--offline', '1000'], quick: ['--rtt', '50', '--warmup', '10', '--oneway', '100', '--window', '8', '--offline', '50'] },
  { name: 'accounts', script: 'bench-accounts.mjs', stem: 'accounts', full: ['--peers', '10', '--users', '10'], quick: ['--peers', '3', '--users', '3'] },
  { name: 'dht-10', script: 'bench-dht.mjs', stem: 'dht-10p', full: ['--peers', '10', '--records', '50'], quick: ['--peers', '4', '--records', '5', '--warmup', '2', '--pings', '10'] },
  { name: 'dht-30', script: 'bench-dht.mjs', stem: 'dht-30p', full: ['--peers', '30', '--records', '50'], quick: ['--peers', '6', '--records', '5', '--warmup', '2', '--pings', '10'] },
  { name: 'dht-60', script: 'bench-dht.mjs', stem: 'dht-60p', full: ['--peers', '60', '--records', '50'], quick: ['--peers', '8', '--records', '5', '--warmup', '2', '--pings', '10'] },
  { name: 'conference', script: 'bench-conference.mjs', stem: 'conference', full: ['--members', '20', '--sends', '30'], quick: ['--members', '5', '--sends', '3', '--warmup', '1'] }
]
// in --quick the DHT parts run 4, 6 and 8 peers: their result files are named after those
for (const p of PARTS) if (p.name.startsWith('dht-')) p.quickStem = `dht-${p.quick[p.quick.indexOf('--peers') + 1]}p`

const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string', multiple: true },
    pause: { type: 'string' },
    timeout: { type: 'string' },
    out: { type: 'string', default: RESULTS },
    help: { type: 'boolean', default: false }
  }
})
if (flags.help) {
  console.log(`usage: node scripts/bench.mjs [--quick] [--only <names>] [--pause <ms>] [--timeout <min>] [--out results/]
  --quick     small parameters (a smoke run; the figures mean little)
  --only      a subset, comma separated or repeated: ${PARTS.map(p => p.name).join(', ')} (dht = all three)
  --pause     ms to wait between parts, for the load to settle (default 5000, quick 1000)
  --timeout   minutes one part may take before it is stopped (default 60, quick 10)`)
  process.exit(0)
}
const QUICK = flags.quick
const PAUSE_MS = Number(flags.pause ?? (QUICK ? 1000 : 5000))
const TIMEOUT_MS = Number(flags.timeout ?? (QUICK ? 10 : 60)) * 60_000

let parts = PARTS
if (flags.only != null) {
  const names = flags.only.flatMap(s => s.split(/[,\s]+/)).filter(Boolean)
  const unknown = names.filter(n => n !== 'dht' && !PARTS.some(p => p.name === n))
  if (unknown.length > 0) {
    console.error(`unknown part(s): ${unknown.join(', ')}; the parts are ${PARTS.map(p => p.name).join(', ')} (dht = all three)`)
    process.exit(2)
  }
  parts = PARTS.filter(p => names.includes(p.name) || (names.includes('dht') && p.name.startsWith('dht-')))
}

const startedAt = new Date()
const stamp = startedAt.toISOString().replace(/[:.]/g, '-')
const runDir = join(flags.out, `bench-${stamp}`)
let current // the part's child process now running
let interrupted

for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]]) {
  process.on(signal, () => {
    if (interrupted != null) return
    interrupted = { signal, code }
    console.error(`\n${signal}: stopping the part now running; the others are not run`)
    // a Ctrl+C reaches the whole process group; a SIGTERM sent to us alone is passed on
    if (signal === 'SIGTERM') current?.kill('SIGTERM')
  })
}

/** Run one part; resolves with what happened and its result (the JSON it wrote, if any). */
async function runPart (part) {
  const args = [join(ROOT, 'scripts', part.script), ...(QUICK ? part.quick : part.full), '--out', runDir]
  const command = `node ${relative(ROOT, args[0])} ${args.slice(1).join(' ')}`
  const stem = QUICK ? part.quickStem ?? part.stem : part.stem
  const t = performance.now()
  const child = current = spawn(process.execPath, args, { cwd: ROOT, stdio: 'inherit' })
  let timedOut = false
  const timer = setTimeout(() => {
    timedOut = true
    console.error(`${part.name}: still running after ${TIMEOUT_MS / 60_000} min; stopping it`)
    child.kill('SIGTERM')
    setTimeout(() => child.kill('SIGKILL'), 30_000).unref()
  }, TIMEOUT_MS)
  const { code, signal } = await new Promise(resolve => {
    child.once('exit', (code, signal) => resolve({ code, signal }))
    child.once('error', err => resolve({ code: null, signal: null, error: err.message }))
  })
  clearTimeout(timer)
  current = undefined
  const durationMs = Math.round(performance.now() - t)
  // the newest result file this part wrote
  const files = (await readdir(runDir).catch(() => [])).filter(f => f.startsWith(`bench-${stem}-`) && f.endsWith('.json')).sort()
  let result
  let resultFile
  if (files.length > 0) {
    resultFile = join(runDir, files.at(-1))
    try { result = JSON.parse(await readFile(resultFile, 'utf8')) } catch { result = undefined }
  }
  const ok = code === 0 && result != null
  const why = timedOut
    ? `stopped after ${TIMEOUT_MS / 60_000} min`
    : signal != null ? `killed by ${signal}` : code !== 0 ? `exit code ${code}` : result == null ? 'no result file' : undefined
  return { name: part.name, command, status: ok ? 'ok' : 'failed', why, exitCode: code, signal, durationMs, resultFile: resultFile && relative(ROOT, resultFile), result }
}

// ---- the summary: each figure next to its baseline measured in the same run ----

/** A figure with sensible precision: 0.143, 5.23, 41.2, 1483. */
function num (x) {
  if (x == null || !Number.isFinite(x)) return '-'
  const a = Math.abs(x)
  return x.toFixed(a < 1 ? 3 : a < 10 ? 2 : a < 100 ? 1 : 0)
}
const int = x => x == null || !Number.isFinite(x) ? '-' : String(Math.round(x))
const medP = (s, p = 'p95') => s == null ? '-' : `${num(s.median)} / ${num(s[p])}`
const mib = kb => kb / 1024

/** Rows { part, figure, value, baseline } for one part's result. */
function rowsOf (name, r, all) {
  if (r == null) return []
  if (name === 'startup') {
    const m = r.medians
    const bareRss = `bare node process ${num(mib(r.rss.bareNodeKb))}`
    return [
      ['start -> joined, node program (ms, median)', num(m.programJoinedMs), `bare node start -> first line ${num(m.bareNodeFirstLineMs)}`],
      ['start -> joined, npm run node (ms, median)', num(m.npmRunNodeJoinedMs), ''],
      [`idle RSS, peer process (MiB, after ${r.idleMs / 1000} s)`, num(mib(r.rss.peerKb)), bareRss],
      [`idle RSS, supernode (MiB, after ${r.idleMs / 1000} s)`, num(mib(r.rss.supernodeKb)), bareRss]
    ]
  }
  if (name === 'messages') {
    const rtt = r.rttMs
    const base = `raw TCP ${medP(rtt.tcp, 'p99')}; JSON conn-per-message ${medP(rtt.jsonConnectionPerMessage, 'p99')}`
    const o = r.oneWay
    const b = o.baselines
    const w = o.windowed.window
    return [
      ['live DM round trip, sendMessage -> ack (ms, median / p99)', medP(rtt.sendMessage, 'p99'), base],
      ['  chat protocol alone, envelope -> ack (ms, median / p99)', medP(rtt.chatProtocol, 'p99'), base],
      ['one-way DMs/s, 1 at a time (acked)', int(o.sequential.perSecond), `JSON one conn ${int(b.jsonOneConnection.sequential.perSecond)}; conn-per-message ${int(b.jsonConnectionPerMessage.sequential.perSecond)}`],
      [`one-way DMs/s, ${w} in flight (acked)`, int(o.windowed.perSecond), `JSON one conn ${int(b.jsonOneConnection.windowed.perSecond)}; conn-per-message ${int(b.jsonConnectionPerMessage.windowed.perSecond)}`],
      [`${r.offline.messages} offline messages: login -> all shown (ms)`, `${num(r.offline.loginToAllShownMs)}${r.offline.shown < r.offline.messages ? ` (only ${r.offline.shown})` : ''}`, `login alone ${num(r.offline.loginMs)}`]
    ]
  }
  if (name === 'accounts') {
    const l = r.loginMs
    const median = xs => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length === 0 ? null : s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2 }
    const logins = r.samples?.logins ?? []
    const deliberate = median(logins.map(x => x.bcryptMs + x.kdfMs))
    const network = median(logins.map(x => x.networkMs + x.sessionMs))
    return [
      [`login total, ${r.peers} peers (ms, median / p95)`, medP(l.total), `of which deliberate (bcrypt + KDF) ${num(deliberate)}, network ${num(network)} (medians)`],
      ['  bcrypt check, cost 10 (deliberate)', medP(l.bcrypt), ''],
      ['  password KDF, Argon2id (deliberate)', medP(l.kdf), ''],
      ['  network: user record lookup', medP(l.network), ''],
      ['  network: session start (presence, state)', medP(l.session), ''],
      ['logout -> seen offline on another peer (ms)', medP(r.logoutSeenOfflineMs), '']
    ]
  }
  if (name.startsWith('dht-')) {
    const ping = `libp2p ping ${medP(r.pingMs)}`
    return [
      [`DHT put, ${r.peers} peers (ms, median / p95)`, medP(r.putMs), ping],
      [`DHT get, ${r.peers} peers (ms, median / p95)${r.getFailures > 0 ? `, ${r.getFailures} failed` : ''}`, medP(r.getMs), ping]
    ]
  }
  if (name === 'conference') {
    const m = r.setup.members
    const dm = all.find(p => p.name === 'messages')?.result?.rttMs?.sendMessage
    return [
      [`conference of ${m}: send -> all ${m - 1} shown (ms, median / p95)`, medP(r.sendToAllShownMs), dm != null ? `one DM round trip ${medP(dm)} (messages part)` : ''],
      [`conference of ${m}: send -> all ${m - 1} acks (ms, median / p95)`, medP(r.sendToAllAckedMs), r.missingArrivals > 0 ? `${r.missingArrivals} arrivals missing` : '']
    ]
  }
  return []
}

function summarize (results) {
  const rows = []
  for (const p of results) {
    if (p.status !== 'ok') rows.push({ part: p.name, figure: `${p.name}: FAILED (${p.why}${p.result != null ? '; figures below are from its result file' : ''})`, value: '', baseline: '' })
    for (const [figure, value, baseline] of rowsOf(p.name, p.result, results)) rows.push({ part: p.name, figure, value, baseline })
  }
  return rows
}

function printTable (rows, machineBefore, machineAfter) {
  const head = { figure: 'figure', value: 'value', baseline: 'baseline (same run)' }
  const w = k => Math.max(...[head, ...rows].map(r => r[k].length))
  const [wf, wv] = [w('figure'), w('value')]
  const line = r => `${r.figure.padEnd(wf)}  ${r.value.padStart(wv)}  ${r.baseline}`.trimEnd()
  console.log('')
  console.log(`conf-chat benchmarks${QUICK ? ' (--quick: small parameters, a smoke run)' : ''}, ${startedAt.toISOString()}`)
  console.log(`node ${machineBefore.node}, ${machineBefore.cores} cores (${machineBefore.cpuModel}), ${machineBefore.memGiB} GiB; load average ${loadString(machineBefore.loadavg)} before, ${loadString(machineAfter.loadavg)} after`)
  console.log('')
  console.log(line(head))
  console.log(line({ figure: '-'.repeat(wf), value: '-'.repeat(wv), baseline: '-'.repeat(head.baseline.length) }))
  let last
  for (const r of rows) {
    if (last != null && r.part !== last && !(r.part.startsWith('dht-') && last.startsWith('dht-'))) console.log('')
    console.log(line(r))
    last = r.part
  }
}

async function main () {
  await mkdir(runDir, { recursive: true })
  const machineBefore = machineInfo()
  console.log(`bench: ${parts.map(p => p.name).join(', ')}${QUICK ? ' (--quick)' : ''}; results under ${relative(ROOT, runDir)}/`)
  const results = []
  for (const [i, part] of parts.entries()) {
    if (interrupted != null) {
      results.push({ name: part.name, status: 'failed', why: `not run (${interrupted.signal})` })
      continue
    }
    if (i > 0) await sleep(PAUSE_MS)
    console.log(`\n=== ${i + 1}/${parts.length} ${part.name}: node scripts/${part.script} ${(QUICK ? part.quick : part.full).join(' ')}`)
    const r = await runPart(part)
    results.push(r)
    console.log(`=== ${part.name}: ${r.status}${r.why != null ? ` (${r.why})` : ''} in ${(r.durationMs / 1000).toFixed(0)} s`)
  }
  const machineAfter = machineInfo()
  const rows = summarize(results)
  printTable(rows, machineBefore, machineAfter)
  const { loadavg: loadavgBefore, ...machine } = machineBefore
  const doc = {
    bench: 'suite',
    date: startedAt.toISOString(),
    durationMs: Date.now() - startedAt.getTime(),
    quick: QUICK,
    machine: { ...machine, loadavgBefore, loadavgAfter: machineAfter.loadavg },
    ok: results.every(r => r.status === 'ok'),
    summary: rows,
    parts: results
  }
  const file = join(flags.out, `bench-${stamp}.json`)
  await writeFile(file, JSON.stringify(doc, null, 2) + '\n')
  console.log(`\nwrote ${relative(ROOT, file)} (each part's own JSON under ${relative(ROOT, runDir)}/)`)
  if (interrupted != null) return interrupted.code
  return doc.ok ? 0 : 1
}

process.exit(await main())
