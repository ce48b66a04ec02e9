/**
 * Expiry: deletes items past their namespace's TTL, and tombstones and removals past
 * their own expiry; a set with nothing left is no longer held. Runs every quarter of
 * the shortest TTL served (within [250 ms, 10 min]) and before each maintenance round.
 */
import { MIN_SWEEP_INTERVAL_MS, MAX_SWEEP_INTERVAL_MS } from './constants.js'
import type { SetLayout } from './set-layout.js'
import type { SetNamespaces } from './set-namespaces.js'
import type { AbortOptions, ComponentLogger, Logger } from '@libp2p/interface'

export interface SetSweeperComponents {
  layout: Pick<SetLayout, 'heldSets' | 'withSetLock' | 'items' | 'tombstones' | 'removals' | 'deleteEntry' | 'forgetSet'>
  namespaces: Pick<SetNamespaces, 'ttlFor' | 'shortestTtl'>
  logger: ComponentLogger
  /** The clock, ms since the epoch. */
  now: () => number
}

export class SetSweeper {
  private readonly components: SetSweeperComponents
  private readonly log: Logger
  private timer?: NodeJS.Timeout

  constructor (components: SetSweeperComponents) {
    this.components = components
    this.log = components.logger.forComponent('conf-chat:network:sets:sweeper')
  }

  /** How often the timer sweeps (ms), for the namespaces served now. */
  intervalMs (): number {
    return Math.max(MIN_SWEEP_INTERVAL_MS, Math.min(this.components.namespaces.shortestTtl() / 4, MAX_SWEEP_INTERVAL_MS))
  }

  start (): void {
    if (this.timer != null) return
    this.timer = setInterval(() => {
      this.sweep().catch(err => { this.log.error('sweep failed: %e', err) })
    }, this.intervalMs()).unref()
  }

  stop (): void {
    clearInterval(this.timer)
    this.timer = undefined
  }

  /** Delete expired items, tombstones and removals; forget sets with nothing left. Resolves to how many items it deleted. */
  async sweep (options: AbortOptions = {}): Promise<number> {
    const { layout, namespaces } = this.components
    let swept = 0
    for (const setKey of await layout.heldSets(options)) {
      const ttl = namespaces.ttlFor(setKey)
      swept += await layout.withSetLock(setKey, async () => {
        const now = this.components.now()
        let deleted = 0
        let left = 0
        for await (const { key, item } of layout.items(setKey, options)) {
          if (item == null || item.addedAt + ttl <= now) { await layout.deleteEntry(setKey, key, { ...options, item }); deleted++ } else left++
        }
        for await (const { key, expiresAt } of layout.tombstones(setKey, options)) {
          if (expiresAt == null || expiresAt <= now) await layout.deleteEntry(setKey, key, options); else left++
        }
        for await (const { key, removal } of layout.removals(setKey, options)) {
          if (removal == null || removal.expiresAt <= now) await layout.deleteEntry(setKey, key, options); else left++
        }
        if (left === 0) await layout.forgetSet(setKey, options)
        return deleted
      })
    }
    if (swept > 0) this.log('swept %d expired items', swept)
    return swept
  }
}
