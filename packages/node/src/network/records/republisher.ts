/**
 * Kademlia's republish: a holder puts every record it stores again once the record has
 * not been refreshed within the interval, so records outlive the TTL of the stores that
 * hold them as long as one holder stays.
 *
 * A holder keeps only what it is responsible for (see responsibility.ts): a record whose
 * key it is no longer close to (closer peers joined, or it was this peer's own write) is
 * put to the closest peers once more when due, and its copy here deleted once one of
 * them took it or refused it (it holds something newer). If none answered, it is kept
 * (it may be the last copy) and tried again an interval later.
 */
import { shutdownController, untilEither } from '../../utils/index.js'
import { isExpiredAt, storedRecords } from './stored-records.js'
import { toString as bytesToString } from 'uint8arrays'
import type { AbortOptions, ComponentLogger, Logger } from '@libp2p/interface'
import type { Datastore } from 'interface-datastore'

export interface RecordRepublisherComponents {
  datastore: Pick<Datastore, 'query' | 'delete'>
  /** Puts a record to the closest DHT servers (and our own store). */
  put: (key: string, value: Uint8Array, options?: AbortOptions) => Promise<{ replicas: number, refused: number }>
  /** Whether this peer is close enough to `key` to keep its record. */
  isResponsible: (key: string) => boolean
  logger: ComponentLogger
  /** The clock, ms since the epoch. */
  now: () => number
}

export interface RecordRepublisherInit {
  /** An expired record is not republished (ms). */
  recordTtlMs: number
  /** A record received less than this long ago is fresh and not republished (ms). */
  republishIntervalMs: number
}

export class RecordRepublisher {
  private readonly components: RecordRepublisherComponents
  private readonly log: Logger
  private readonly recordTtlMs: number
  private readonly republishIntervalMs: number
  private timer?: NodeJS.Timeout
  /** Aborted by stop(): ends a running republish and its puts. */
  private shutdown?: AbortController

  constructor (components: RecordRepublisherComponents, init: RecordRepublisherInit) {
    this.components = components
    this.log = components.logger.forComponent('conf-chat:network:records:republisher')
    this.recordTtlMs = init.recordTtlMs
    this.republishIntervalMs = init.republishIntervalMs
  }

  start (): void {
    if (this.shutdown != null) return
    this.shutdown = shutdownController()
    this.schedule(this.shutdown.signal)
  }

  stop (): void {
    clearTimeout(this.timer)
    this.timer = undefined
    this.shutdown?.abort()
    this.shutdown = undefined
  }

  /** Ticks at a quarter of the interval with jitter, so that of all holders of a record
   * the first to find it due republishes it and the others then see it fresh. */
  private schedule (signal: AbortSignal): void {
    const delay = (this.republishIntervalMs / 4) * (0.75 + Math.random() / 2)
    this.timer = setTimeout(() => {
      this.republish({ signal })
        .catch(err => { this.log.error('republish failed: %e', err) })
        .finally(() => { if (!signal.aborted) this.schedule(signal) })
    }, delay).unref()
  }

  /**
   * Re-put every stored record that is neither expired nor refreshed within the
   * interval; resolves to how many it put. Ends early when `options.signal` aborts or
   * the republisher stops.
   */
  async republish (options: AbortOptions = {}): Promise<number> {
    const signal = untilEither(options, this.shutdown?.signal)
    let count = 0
    let handedOn = 0
    // the local reads are not cancelled (they are quick): the loop checks the signal
    for await (const { key: dsKey, record } of storedRecords(this.components.datastore)) {
      if (signal?.aborted === true) break
      const now = this.components.now()
      // an expired record is gone, even if the sweep has not deleted it yet
      if (isExpiredAt(record, this.recordTtlMs, now)) continue
      const key = bytesToString(record.key)
      if (now - record.timeReceived.getTime() < this.republishIntervalMs) continue
      const responsible = this.components.isResponsible(key)
      try {
        const { replicas, refused } = await this.components.put(key, record.value, { signal })
        count++
        if (!responsible && replicas + refused > 0) {
          await this.components.datastore.delete(dsKey, options)
          handedOn++
        }
      } catch (err: any) {
        this.log('could not republish %s: %s', key, err.message)
      }
    }
    if (count > 0) this.log('republished %d records, %d of them handed on to closer peers and deleted here', count, handedOn)
    return count
  }
}
