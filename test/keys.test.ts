/**
 * Making keys never stands a process still. In Node 20 the garbage collector could
 * finalize a key-generation job (generateKeyPairSync) while one of its keys was being
 * exported, and the job's destructor waited for the lock the export held: the process
 * stood still for good. Every envelope makes a key (its sealed box's ephemeral one), so
 * a peer sending long enough would have. A child process with a 1 MiB young generation
 * (a collection every few hundred keys) seals 20,000 boxes and makes 2,000 accounts from
 * the built package: it stood still in 6 of 6 runs before the fix, and finishes in about
 * 2.5 s after it. The limit below only bounds a hang; it is no speed test.
 */
import { describe, it, expect } from 'vitest'
import { spawn } from 'node:child_process'

const SCRIPT = `
const { sealTo, generateAccountKeys } = await import('@conf-chat/protocol')
const box = generateAccountKeys().boxPublic
for (let i = 0; i < 20000; i++) {
  sealTo(new Uint8Array(100), box)
  if (i % 10 === 0) generateAccountKeys()
}
process.stdout.write('done')
`

/** Run SCRIPT in a child; undefined if it has not ended after `limitMs` (then it is killed, by its pid). */
async function runChild (limitMs: number): Promise<{ code: number | null, out: string } | undefined> {
  const child = spawn(process.execPath, ['--max-semi-space-size=1', '--input-type=module', '-e', SCRIPT], { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  child.stdout.on('data', (d: Buffer) => { out += d.toString() })
  return await new Promise(resolve => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      resolve(undefined)
    }, limitMs)
    child.on('exit', code => {
      clearTimeout(timer)
      resolve({ code, out })
    })
  })
}

describe('making keys', () => {
  it('never stands still while the collector runs: 20,000 sealed boxes and 2,000 accounts end', { timeout: 90_000 }, async () => {
    const result = await runChild(60_000)
    expect(result, 'the child stood still (a deadlock in key making)').toEqual({ code: 0, out: 'done' })
  })
})
