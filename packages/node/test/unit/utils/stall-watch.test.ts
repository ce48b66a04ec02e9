import { describe, it, expect, vi, afterEach } from 'vitest'
import { watchStalls } from '../../../src/utils/index.js'

afterEach(() => { vi.useRealTimers() })

describe('watchStalls', () => {
  it('reports a stall when a tick comes later than the interval by more than stallMs, with how long', () => {
    vi.useFakeTimers()
    let clock = 0
    const stalls: number[] = []
    const stop = watchStalls({ stallMs: 3000, intervalMs: 1000, now: () => clock, onStall: ms => { stalls.push(ms) } })
    // on time, and a little late: no stall
    for (const at of [1000, 2000, 3500, 4500]) { clock = at; vi.advanceTimersByTime(1000) }
    expect(stalls).toEqual([])
    // the process stood still for 20 s: the next tick is 20 s late
    clock = 25_500
    vi.advanceTimersByTime(1000)
    expect(stalls).toEqual([20_000])
    // back on time: no more
    clock = 26_500
    vi.advanceTimersByTime(1000)
    expect(stalls).toEqual([20_000])
    stop()
    clock = 100_000
    vi.advanceTimersByTime(5000)
    expect(stalls).toEqual([20_000])
  })

  it('never keeps the process alive', () => {
    const spy = vi.spyOn(globalThis, 'setInterval')
    const stop = watchStalls({ stallMs: 3000, onStall: () => {} })
    const timer = spy.mock.results[0]?.value as NodeJS.Timeout
    expect(timer.hasRef()).toBe(false)
    stop()
    spy.mockRestore()
  })
})
