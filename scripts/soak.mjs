#!/usr/bin/env node
/**
 * `npm run soak -- --minutes 30`: the soak test at length (CI runs 3 minutes of it in
 * test/soak.test.ts). A supernode and 8 peers (the real programs, command mode) with 6
 * users who send each other direct messages and write in one conference, under a storm
 * of kill -9 and restarts, SIGSTOP pauses, busy loops on both cores and logins on other
 * peers (scripts/lib/soak.mjs). Prints the ledger (sent, acknowledged, shown, lost,
 * duplicated, time to delivery) and writes it as JSON to results/; exits 1 on any loss,
 * duplicate, misdelivery or missing friendship or membership.
 */
import { mkdirSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { BenchRun, RESULTS } from './lib/bench.mjs'
import { Soak, ledgerLines } from './lib/soak.mjs'

const { values: flags } = parseArgs({
  options: {
    minutes: { type: 'string', default: '30' },
    drain: { type: 'string', default: '240' },
    seed: { type: 'string', default: String(Date.now() % 100000) },
    out: { type: 'string', default: RESULTS },
    quiet: { type: 'boolean', default: false },
    'log-dir': { type: 'string' },
    help: { type: 'boolean', default: false }
  }
})
if (flags.help) {
  console.log('usage: npm run soak -- [--minutes 30] [--drain <seconds after the storm, 240>] [--seed <n>] [--out results/] [--quiet] [--log-dir <dir>: the debug log and output of each peer]')
  process.exit(0)
}

if (flags['log-dir'] != null) mkdirSync(flags['log-dir'], { recursive: true })
const run = new BenchRun('soak')
await run.run(async () => {
  const soak = new Soak(run, {
    durationMs: Number(flags.minutes) * 60_000,
    drainMs: Number(flags.drain) * 1000,
    seed: Number(flags.seed),
    log: flags.quiet ? () => {} : line => { console.log(line) },
    logDir: flags['log-dir']
  })
  run.atStop(() => { soak.release() })
  await soak.setUp()
  await soak.runStorm()
  const ledger = soak.ledger()
  console.log('')
  console.log(`soak: ${flags.minutes} min, seed ${flags.seed}`)
  for (const line of ledgerLines(ledger)) console.log(line)
  console.log(run.machineLine())
  const file = await run.writeResult(flags.out, { ledger })
  console.log(`JSON: ${file}`)
  const ok = ledger.lost === 0 && ledger.duplicated === 0 && ledger.misdelivered === 0 && ledger.violations.length === 0
  console.log(ok ? 'PASS' : 'FAIL')
  return ok ? 0 : 1
})
