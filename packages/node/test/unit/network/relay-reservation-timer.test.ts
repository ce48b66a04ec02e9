/**
 * The timer behind each reservation on libp2p's relay server (retimeable-signal): a
 * renewed reservation must last its full lifetime from the last renewal. Version 1.0.1
 * left the timer of the first renewal running after the second (its listener was not
 * the one the next renewal removed), so a relay deleted a reservation renewed twice one
 * lifetime after the first renewal: a peer behind NAT, which renews every lifetime less
 * 5 minutes, was unreachable through that relay for most of every other lifetime.
 * patches/retimeable-signal+1.0.1.patch fixes it (applied by `npm ci`'s postinstall).
 */
import { describe, it, expect } from 'vitest'
import { retimeableSignal } from 'retimeable-signal'

const TTL_MS = 300

/** Resolves when `signal` aborts, with the time since `t0`. */
async function abortedAfter (signal: AbortSignal, t0: number): Promise<number> {
  return await new Promise(resolve => { signal.addEventListener('abort', () => { resolve(Date.now() - t0) }, { once: true }) })
}

async function wait (ms: number): Promise<void> {
  await new Promise(resolve => setTimeout(resolve, ms))
}

describe('relay reservation timer', () => {
  it('renewed twice, lasts its lifetime from the second renewal', async () => {
    const t0 = Date.now()
    const signal = retimeableSignal(TTL_MS)
    const aborted = abortedAfter(signal, t0)
    await wait(TTL_MS / 2)
    signal.reset(TTL_MS) // first renewal: ends at 1.5 x TTL
    await wait(TTL_MS / 2)
    signal.reset(TTL_MS) // second renewal: ends at 2 x TTL
    const at = await aborted
    // the first renewal's end (1.5 x TTL) must not end it
    expect(at).toBeGreaterThanOrEqual(2 * TTL_MS - 20)
  })

  it('cleared after a renewal, never ends', async () => {
    const signal = retimeableSignal(TTL_MS / 2)
    signal.reset(TTL_MS / 2)
    signal.clear()
    const ended = await Promise.race([abortedAfter(signal, Date.now()).then(() => true), wait(TTL_MS).then(() => false)])
    expect(ended).toBe(false)
  })
})
