/**
 * Deletes stored records past the record TTL, as kad-dht would (after its hard-coded
 * 48 h), so that a record nobody republishes is gone from this store too.
 */
import { isExpiredAt, storedRecords } from './stored-records.js'
import type { AbortOptions, ComponentLogger, Logger } from '@libp2p/interface'
import type { Datastore } from 'interface-datastore'

/** The sweep runs at least this often... */
const MIN_SWEEP_INTERVAL_MS = 250
/** ...and at most this rarely, whatever the TTL. */
const MAX_SWEEP_INTERVAL_MS = 10 * 60_000

export interface RecordSweeperComponents {
  datastore: Pick<Datastore, 'query' | 'delete'>
  logger: ComponentLogger
  /** The clock, ms since the epoch. */
  now: () => number
}

export interface RecordSweeperInit {
  /** How long a record stays after it was received (ms). */
  recordTtlMs: number
}

export class RecordSweeper {
  private readonly components: RecordSweeperComponents
  private readonly log: Logger
  private readonly recordTtlMs: number
  /** A quarter of the TTL, within [250 ms, 10 min]. */
  readonly intervalMs: number
  private timer?: NodeJS.Timeout

  constructor (components: RecordSweeperComponents, init: RecordSweeperInit) {
    this.components = components
    this.log = components.logger.forComponent('conf-chat:network:records:sweeper')
    this.recordTtlMs = init.recordTtlMs
    this.intervalMs = Math.max(MIN_SWEEP_INTERVAL_MS, Math.min(this.recordTtlMs / 4, MAX_SWEEP_INTERVAL_MS))
  }

  start (): void {
    if (this.timer != null) return
    this.timer = setInterval(() => {
      this.sweep().catch(err => { this.log.error('sweep failed: %e', err) })
    }, this.intervalMs).unref()
  }

  stop (): void {
    clearInterval(this.timer)
    this.timer = undefined
  }

  /** Delete the stored records older than the TTL; resolves to how many it deleted. */
  async sweep (options: AbortOptions = {}): Promise<number> {
    let removed = 0
    for await (const { key, record } of storedRecords(this.components.datastore, options)) {
      if (isExpiredAt(record, this.recordTtlMs, this.components.now())) {
        await this.components.datastore.delete(key, options)
        removed++
      }
    }
    if (removed > 0) this.log('swept %d expired records', removed)
    return removed
  }
}
