/** The storage budget over stand-in sources: what it deletes, in which order, and when it stops. */
import { describe, it, expect } from 'vitest'
import { defaultLogger } from '@libp2p/logger'
import { StorageBudget, LOW_WATER, type HeldEntry } from '../../../src/network/storage-budget.js'

/** Entries of `bytes` each, written at the given times, in a shared byte count. */
class Held {
  bytes = 0
  readonly removed: string[] = []
  private readonly entries = new Map<string, { time: number, bytes: number }>()

  add (name: string, time: number, bytes: number): void {
    this.entries.set(name, { time, bytes })
    this.bytes += bytes
  }

  readonly source = async function * (this: Held): AsyncGenerator<HeldEntry> {
    for (const [name, { time, bytes }] of [...this.entries]) {
      yield { time, bytes, remove: async () => { this.entries.delete(name); this.bytes -= bytes; this.removed.push(name) } }
    }
  }
}

const budgetOver = (sources: Held[], budgetBytes: number): StorageBudget => new StorageBudget({
  heldBytes: () => sources.reduce((n, s) => n + s.bytes, 0),
  sources: sources.map(s => () => s.source.call(s)),
  logger: defaultLogger()
}, { budgetBytes })

describe('StorageBudget', () => {
  it('deletes the oldest entries of all sources, in time order, until the held bytes are under the low-water mark', async () => {
    const records = new Held()
    const items = new Held()
    records.add('r1', 10, 100)
    items.add('i1', 20, 100)
    records.add('r2', 30, 100)
    items.add('i2', 40, 100)
    items.add('i3', 50, 100)
    const budget = budgetOver([records, items], 400)
    const report = await budget.evict()
    // 500 held, low water 360: the two oldest go
    expect(LOW_WATER * 400).toBe(360)
    expect([...records.removed, ...items.removed].sort()).toEqual(['i1', 'r1'])
    expect(report).toEqual({ removed: 2, bytesBefore: 500, bytesAfter: 300 })
  })

  it('starts an eviction only past the budget, one at a time', async () => {
    const items = new Held()
    for (let i = 0; i < 10; i++) items.add(`i${i}`, i, 10)
    const budget = budgetOver([items], 100)
    budget.onHeldChange(100)
    await budget.settled()
    expect(items.removed).toEqual([])
    items.add('i10', 10, 10)
    budget.onHeldChange(110)
    budget.onHeldChange(110)
    await budget.settled()
    expect(items.removed).toEqual(['i0', 'i1'])
  })

  it('finds the oldest among more entries than it keeps in memory at once', async () => {
    const items = new Held()
    // 3,000 entries, newest first, so the oldest come last
    for (let i = 3000; i > 0; i--) items.add(`i${i}`, i, 1)
    const budget = budgetOver([items], 2500)
    await budget.evict()
    expect(items.bytes).toBe(2250)
    expect(items.removed).toEqual(Array.from({ length: 750 }, (_, i) => `i${i + 1}`))
  })
})
