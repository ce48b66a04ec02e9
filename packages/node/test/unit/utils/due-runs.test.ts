/**
 * DueRuns on vitest's fake clock: a run asked for later is never dropped for one due
 * sooner (a mailbox read right after a rejoin must not cancel the read that waits for
 * senders' puts after a stall), and requests close together share one run.
 */
import { describe, it, expect, beforeEach, afterEach, vi } from 'vitest'
import { DueRuns } from '../../../src/utils/index.js'

beforeEach(() => { vi.useFakeTimers() })
afterEach(() => { vi.useRealTimers() })

describe('DueRuns', () => {
  it('a run due sooner does not stand in for one asked for later, nor the other way round', async () => {
    const runs: number[] = []
    const start = Date.now()
    const due = new DueRuns(() => { runs.push(Date.now() - start) })
    due.request(10_000)
    due.request(0)
    await vi.advanceTimersByTimeAsync(0)
    expect(runs).toEqual([0])
    await vi.advanceTimersByTimeAsync(10_000)
    expect(runs).toEqual([0, 10_000])
    expect(due.pending).toBe(0)
  })

  it('requests for about the same time share one run', async () => {
    let runs = 0
    const due = new DueRuns(() => { runs++ }, { mergeMs: 1000 })
    for (let i = 0; i < 100; i++) {
      due.request(10_000)
      await vi.advanceTimersByTimeAsync(5)
    }
    expect(due.pending).toBe(1)
    await vi.advanceTimersByTimeAsync(10_000)
    expect(runs).toBe(1)
  })

  it('clear cancels every run that is due', async () => {
    let runs = 0
    const due = new DueRuns(() => { runs++ })
    due.request(0)
    due.request(5_000)
    due.clear()
    await vi.advanceTimersByTimeAsync(10_000)
    expect(runs).toBe(0)
    expect(due.pending).toBe(0)
  })
})
