/**
 * The soak test, shortened for CI (issue 12): a supernode and 8 `node` programs with 6
 * users sending direct messages and conference messages for 3 minutes (SOAK_MINUTES)
 * while peers are killed with kill -9 and restarted, stopped with SIGSTOP for 20 s (longer
 * than the ack and read time limits), starved by busy loops on both cores, and users log
 * in on other peers. Then everyone is up and the test waits for every acknowledged
 * message. Every message whose sender was told `delivered` or `queued` is shown to its
 * recipient exactly once, nothing goes to the wrong user, and no friendship or conference
 * membership is missing after any login. The ledger is printed (and the storm must really
 * have happened). `npm run soak -- --minutes 30` is the long run.
 */
import { describe, it, expect, beforeAll, afterAll, inject } from 'vitest'
// @ts-expect-error plain ES modules of the scripts, without types
import { BenchRun } from '../../scripts/lib/bench.mjs'
// @ts-expect-error plain ES modules of the scripts, without types
import { Soak, ledgerLines } from '../../scripts/lib/soak.mjs'

const MINUTES = Number(process.env.SOAK_MINUTES ?? '3')
const SEED = Number(process.env.SOAK_SEED ?? String(Date.now() % 100000))

let run: any
let soak: any

beforeAll(() => {
  const buildError = inject('buildError')
  if (buildError !== '') throw new Error(buildError)
})

afterAll(async () => {
  soak?.release()
  await run?.stopAll()
})

describe('soak', () => {
  it(`loses and duplicates nothing under a storm of kills, pauses, starvation and moves (${MINUTES} min)`, async () => {
    const log: string[] = []
    run = new BenchRun('soak')
    soak = new Soak(run, {
      durationMs: MINUTES * 60_000,
      drainMs: 240_000,
      seed: SEED,
      log: (line: string) => { log.push(line); console.log(line) }
    })
    await soak.setUp()
    await soak.runStorm()
    const ledger = soak.ledger()
    const lines: string[] = ledgerLines(ledger)
    console.log([`soak: ${MINUTES} min, seed ${SEED}`, ...lines].join('\n'))
    const report = [...lines, '--- storm log:', ...log].join('\n')
    // the storm happened: every kind of trouble at least once, and real traffic
    expect(ledger.storm.kills + ledger.storm.pauses, report).toBeGreaterThan(1)
    expect(ledger.storm.kills, report).toBeGreaterThan(0)
    expect(ledger.storm.pauses, report).toBeGreaterThan(0)
    expect(ledger.storm.starvations, report).toBeGreaterThan(0)
    expect(ledger.storm.moves, report).toBeGreaterThan(0)
    expect(ledger.acknowledged, report).toBeGreaterThan(100)
    // what must hold
    expect(ledger.details.lost, report).toEqual([])
    expect(ledger.details.duplicated, report).toEqual([])
    expect(ledger.details.misdelivered, report).toEqual([])
    expect(ledger.violations, report).toEqual([])
  })
})
