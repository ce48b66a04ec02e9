#!/usr/bin/env node
// Conference fan-out between peer PROCESSES on loopback: a supernode and 20 users, each a
// child process running scripts/bench-conference-worker.mjs (built packages, dist/), all
// DHT servers with the product's default settings. The owner makes a conference of all
// 20 (all online) and sends N messages one after another; for each, the time from the
// conf-send call until every one of the 19 other members has it shown (the latest arrival,
// on the machine's shared wall clock), and until conf-send resolves (every member's ack).
// Prints a table and writes JSON under results/.
//
// Setting up 20 accounts, friendships and the conference leaves every peer busy for a while
// (mailbox checks, presence, history pages, DHT upkeep); --settle waits that out first, so
// the sends measure the steady state.
//
//   npm run build && node scripts/bench-conference.mjs [--members 20] [--sends 30] [--warmup 3] [--gap 200] [--settle 120000]
import { loadavg } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { BenchRun, RESULTS, ROOT, fmt, sleep, stats } from './lib/bench.mjs'
import { makeConference, measureConference } from './lib/conference.mjs'

const { values: flags } = parseArgs({
  options: {
    members: { type: 'string', default: '20' },
    sends: { type: 'string', default: '30' },
    warmup: { type: 'string', default: '3' },
    settle: { type: 'string', default: '120000' },
    gap: { type: 'string', default: '200' },
    text: { type: 'string', default: '64' },
    out: { type: 'string', default: RESULTS },
    help: { type: 'boolean', default: false }
  }
})
if (flags.help) {
  console.log('usage: node scripts/bench-conference.mjs [--members 20] [--sends 30] [--warmup 3] [--gap 200 (ms between sends)] [--settle 120000 (ms idle after setup)] [--text 64 (characters)] [--out results/]')
  process.exit(0)
}
const MEMBERS = Number(flags.members)
const SENDS = Number(flags.sends)
const WARMUP = Number(flags.warmup)
const SETTLE_MS = Number(flags.settle)
const GAP_MS = Number(flags.gap)
const TEXT_CHARS = Number(flags.text)
const STEP_TIMEOUT_MS = 120_000

const run = new BenchRun('conference', { workerScript: join(ROOT, 'scripts', 'bench-conference-worker.mjs') })
const startWorker = async (name, role, init) => await run.startWorker(name, role, init, { timeoutMs: STEP_TIMEOUT_MS + 60_000 })

async function main () {
  console.log(`bench-conference: supernode + ${MEMBERS} users, each a process; ${WARMUP} warm-up and ${SENDS} measured sends`)
  let t = performance.now()
  const supernode = await startWorker('supernode', 'peer', {})
  const bootstrap = [supernode.info.addrs[0]]
  const names = Array.from({ length: MEMBERS }, (_, i) => `member${String(i).padStart(2, '0')}`)
  // default settings (bcrypt, Argon2id, presence, timeouts): the figures are the product's
  const users = (await Promise.all(names.map(name => startWorker(name, 'node', { bootstrap })))).map(x => x.w)
  const startMs = performance.now() - t
  t = performance.now()
  const { owner, members, conference } = await makeConference(users, { timeoutMs: STEP_TIMEOUT_MS })
  const setupMs = performance.now() - t
  console.log(`started in ${(startMs / 1000).toFixed(1)} s; registered, befriended and invited in ${(setupMs / 1000).toFixed(1)} s; ${conference}`)
  if (SETTLE_MS > 0) {
    console.log(`settling for ${(SETTLE_MS / 1000).toFixed(0)} s (1-min load average now ${loadavg()[0].toFixed(1)})`)
    await sleep(SETTLE_MS)
  }
  const loadAtSends = loadavg()[0]

  const { allShownMs, ackMs, where, missing } = await measureConference(owner, members, conference, { sends: SENDS, warmup: WARMUP, gapMs: GAP_MS, textChars: TEXT_CHARS, timeoutMs: STEP_TIMEOUT_MS })

  const rss = await Promise.all(run.workers.map(w => w.request('stats')))
  const result = {
    setup: { members: MEMBERS, sends: SENDS, warmup: WARMUP, gapMs: GAP_MS, textChars: TEXT_CHARS, processes: run.workers.length, startMs: Math.round(startMs), setupMs: Math.round(setupMs), settleMs: SETTLE_MS, loadavg1mAtSends: loadAtSends },
    sendToAllShownMs: stats(allShownMs, 2),
    sendToAllAckedMs: stats(ackMs, 2),
    deliveries: where,
    missingArrivals: missing,
    rssMiB: { supernode: Math.round(rss[0].rss / 2 ** 20), userMedian: stats(rss.slice(1).map(r => r.rss / 2 ** 20), 1).median }
  }

  const row = (name, s) => `${name.padEnd(44)} ${String(s.n).padStart(4)} ${fmt(s.median).padStart(8)} ${fmt(s.p95).padStart(8)} ${fmt(s.mean).padStart(8)} ${fmt(s.min).padStart(8)} ${fmt(s.max).padStart(8)}`
  console.log('')
  console.log(run.machineLine())
  console.log(`${`${MEMBERS}-member conference, all online (ms)`.padEnd(44)} ${'n'.padStart(4)} ${'median'.padStart(8)} ${'p95'.padStart(8)} ${'mean'.padStart(8)} ${'min'.padStart(8)} ${'max'.padStart(8)}`)
  console.log(row(`conf-send -> all ${MEMBERS - 1} others have it shown`, result.sendToAllShownMs))
  console.log(row(`conf-send -> resolved (all ${MEMBERS - 1} acks)`, result.sendToAllAckedMs))
  console.log(`deliveries: ${JSON.stringify(where)}; arrivals missing: ${missing}; RSS: supernode ${result.rssMiB.supernode} MiB, a user's peer ${result.rssMiB.userMedian} MiB (median)`)
  const file = await run.writeResult(flags.out, result)
  console.log(`\nwrote ${file}`)
  return missing > 0 ? 1 : 0
}

await run.run(main)
