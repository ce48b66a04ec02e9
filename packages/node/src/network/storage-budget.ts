/**
 * The storage budget: how many bytes a peer holds for others (DHT records and set items,
 * counted by the datastore through every write), and, once that passes the budget, the
 * oldest of them deleted until it is back under LOW_WATER of it.
 *
 * Responsibility (responsibility.ts) and the limits per set and per writer bound what
 * one key or one writer can put on a peer; the budget bounds the sum, whatever the
 * number of keys and writers. Before it, a holder took 1,000 records of 120 KiB under
 * fresh keys (+118 MiB) and had no limit at all.
 *
 * Oldest first: a record by when this peer last received it (its owner or a holder
 * republishing it refreshes that), an item by when it was written. A flood is the
 * newest data, so what goes first is what has been read the longest, and what its
 * other holders (R per set, up to 20 per record) still hold.
 */
import type { AbortOptions, ComponentLogger, Logger } from '@libp2p/interface'

/** One thing a peer holds for others: when it came, about how many bytes, and how to delete it. */
export interface HeldEntry {
  time: number
  bytes: number
  remove: () => Promise<void>
}

/** Every entry of one kind (records, set items), in any order. */
export type HeldSource = (options: AbortOptions) => AsyncIterable<HeldEntry>

export interface StorageBudgetComponents {
  /** The bytes held now (undefined while not counted yet). */
  heldBytes: () => number | undefined
  sources: HeldSource[]
  logger: ComponentLogger
}

export interface StorageBudgetInit {
  budgetBytes: number
}

/** Eviction stops once the held bytes are at most this share of the budget. */
export const LOW_WATER = 0.9

/** Entries kept in memory during a scan before the newer ones are dropped (at least). */
const SCAN_KEEP = 1_000

export interface EvictionReport {
  removed: number
  bytesBefore: number
  bytesAfter: number
}

export class StorageBudget {
  private readonly components: StorageBudgetComponents
  private readonly log: Logger
  readonly budgetBytes: number
  private running?: Promise<EvictionReport>
  private stopped = false

  constructor (components: StorageBudgetComponents, init: StorageBudgetInit) {
    this.components = components
    this.log = components.logger.forComponent('conf-chat:network:storage-budget')
    this.budgetBytes = init.budgetBytes
  }

  /** For the datastore's `onHeldChange`: past the budget, start an eviction (one at a time). */
  readonly onHeldChange = (bytes: number): void => {
    if (bytes <= this.budgetBytes || this.running != null || this.stopped) return
    this.running = this.evict()
      .catch(err => { this.log.error('eviction failed: %e', err); return { removed: 0, bytesBefore: bytes, bytesAfter: bytes } })
      .finally(() => { this.running = undefined })
  }

  /** Resolves when the eviction under way (if any) has ended. */
  async settled (): Promise<void> {
    await this.running
  }

  stop (): void {
    this.stopped = true
  }

  /** Delete the oldest entries until the held bytes are at most LOW_WATER of the budget. */
  async evict (options: AbortOptions = {}): Promise<EvictionReport> {
    const held = (): number => this.components.heldBytes() ?? 0
    const target = Math.floor(this.budgetBytes * LOW_WATER)
    const bytesBefore = held()
    let removed = 0
    while (held() > target && !this.stopped) {
      // one scan finds the oldest entries that cover what is over; another only if those fell short
      const oldest = await this.oldest(held() - target, options)
      if (oldest.length === 0) break
      for (const entry of oldest) {
        if (held() <= target || this.stopped) break
        await entry.remove()
        removed++
      }
    }
    const bytesAfter = held()
    this.log('held %d bytes of a budget of %d: deleted the %d oldest entries, %d bytes left', bytesBefore, this.budgetBytes, removed, bytesAfter)
    return { removed, bytesBefore, bytesAfter }
  }

  /**
   * The oldest entries of every source whose bytes add up to `bytes`, oldest first, in one
   * scan (keeping in memory at most twice as many as those, or SCAN_KEEP).
   */
  private async oldest (bytes: number, options: AbortOptions): Promise<HeldEntry[]> {
    let kept: HeldEntry[] = []
    let limit = SCAN_KEEP
    const trim = (): void => {
      kept.sort((a, b) => a.time - b.time)
      let sum = 0
      let n = 0
      while (n < kept.length && sum < bytes) sum += kept[n++]!.bytes
      kept = kept.slice(0, n)
      limit = Math.max(SCAN_KEEP, 2 * n)
    }
    for (const source of this.components.sources) {
      for await (const entry of source(options)) {
        kept.push(entry)
        if (kept.length >= limit) trim()
      }
    }
    trim()
    return kept
  }
}
