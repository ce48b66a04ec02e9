/**
 * Correcting stale replicas after a read. kad-dht corrects the holders of an older record
 * only when its get() runs to the end; a read that stops at its quorum never gets there,
 * so the store does it: the chosen record (already signed by its owner) is sent again to
 * each holder that answered with an older version of the same owner's record, in the
 * background, at most once per key within an interval and a few keys at a time, so that
 * a popular key read by many peers does not turn every read into writes.
 */
import { Libp2pRecord } from '@libp2p/record'
import { MessageType, type QueryEvent } from '@libp2p/kad-dht'
import { fromString as bytesFromString } from 'uint8arrays'
import { bytesEqual } from '@conf-chat/protocol'
import { shutdownController, timeLimit } from '../../utils/index.js'
import type { AbortOptions, Logger, PeerId } from '@libp2p/interface'

/**
 * Sends `value` (a signed record) for `key` to one holder with a PUT_VALUE; resolves true
 * if the holder stored it (echoed it back). The holder's validator and write guard decide.
 */
export type CorrectFn = (to: PeerId, key: string, value: Uint8Array, options: AbortOptions) => Promise<boolean>

/** A key is corrected at most once in this interval, however often it is read. */
export const CORRECTION_INTERVAL_MS = 60_000

/** Keys corrected at once; a read that finds this many under way skips its correction. */
export const CORRECTIONS_IN_FLIGHT = 2

/** Limit for one holder's correction. */
export const CORRECTION_TIMEOUT_MS = 5_000

/** Keys whose last correction time is kept (bounded memory); older entries go first. */
export const MAX_CORRECTED_KEYS = 1_024

/** The part of kad-dht's KadDHT class used for a correction: its own RPC client. */
interface KadNetwork {
  sendRequest: (to: PeerId, msg: { type: MessageType, key: Uint8Array, record: Uint8Array }, options: AbortOptions & { path: { index: number, queued: number, running: number, total: number } }) => AsyncIterable<QueryEvent>
}

/** What a holder made of a PUT_VALUE: stored it (echoed it back), refused it, or gave no answer in time. */
export type PutOutcome = 'stored' | 'refused' | 'failed'

/** Sends `value` (a signed record) for `key` to one holder with a PUT_VALUE; resolves with what the holder made of it. */
export type PutToFn = (to: PeerId, key: string, value: Uint8Array, options: AbortOptions) => Promise<PutOutcome>

/**
 * A PutToFn over kad-dht's own RPC client, the one its get() corrects with
 * (`sendCorrectionRecord`): the KadDHT class exposes it as `network`, although the
 * KadDHT interface does not name it. Undefined for a DHT without one (a test stub). An
 * error other than a time limit, once the request was sent, counts as a refusal (a
 * holder's validator or write guard refusing resets the stream), as in a put; a peer that
 * could not be reached failed.
 */
export function kadPutTo (dht: object): PutToFn | undefined {
  const network = (dht as { network?: Partial<KadNetwork> } | undefined)?.network
  if (network?.sendRequest == null) return undefined
  // read at each call, not bound once: the same method kad-dht's own RPCs go through now
  const sendRequest: KadNetwork['sendRequest'] = (...args) => network.sendRequest!(...args)
  return async (to, key, value, options) => {
    const keyBytes = bytesFromString(key)
    const record = new Libp2pRecord(keyBytes, value, new Date()).serialize()
    const path = { index: -1, queued: 0, running: 0, total: 0 }
    // kad-dht says SEND_QUERY once it has a stream to the peer: an error before it is a
    // peer that could not be reached (a dial that failed, an id with no address), no refusal
    let sent = false
    for await (const ev of sendRequest(to, { type: MessageType.PUT_VALUE, key: keyBytes, record }, { ...options, path })) {
      if (ev.name === 'SEND_QUERY') sent = true
      if (ev.name === 'PEER_RESPONSE') return ev.record != null && bytesEqual(ev.record.value, value) ? 'stored' : 'refused'
      if (ev.name === 'QUERY_ERROR') {
        return !sent || options.signal?.aborted === true || ev.error.name === 'AbortError' || ev.error.name === 'TimeoutError' ? 'failed' : 'refused'
      }
    }
    return 'failed'
  }
}

/** A CorrectFn over kadPutTo. */
export function kadCorrect (dht: object): CorrectFn | undefined {
  const putTo = kadPutTo(dht)
  if (putTo == null) return undefined
  return async (to, key, value, options) => await putTo(to, key, value, options) === 'stored'
}

export interface RecordCorrectionsComponents {
  /** Sends the correction to a remote holder. */
  correct: CorrectFn
  /** Replaces our own stale copy (through the datastore's write guard). */
  correctLocal: (key: string, value: Uint8Array) => Promise<void>
  log: Logger
  now: () => number
}

/** One stale holder: a remote peer, or `self` for our own copy. */
export type StaleHolder = PeerId | 'self'

export class RecordCorrections {
  private readonly components: RecordCorrectionsComponents
  /** When each key was last corrected (insertion order: oldest first). */
  private readonly last = new Map<string, number>()
  private readonly running = new Set<Promise<void>>()
  private shutdown = shutdownController()
  /** Corrections sent (for tests and logs): holders that stored the record, and that did not. */
  readonly counts = { sent: 0, stored: 0, failed: 0, skipped: 0 }

  constructor (components: RecordCorrectionsComponents) {
    this.components = components
  }

  /**
   * Send `value` to `stale` holders of `key` in the background, unless the key was
   * corrected within the interval or too many corrections are under way. Returns the
   * correction's promise (never rejects), or undefined if it was skipped.
   */
  schedule (key: string, value: Uint8Array, stale: StaleHolder[]): Promise<void> | undefined {
    if (stale.length === 0) return undefined
    const now = this.components.now()
    const last = this.last.get(key)
    if ((last != null && now - last < CORRECTION_INTERVAL_MS) || this.running.size >= CORRECTIONS_IN_FLIGHT) {
      this.counts.skipped++
      return undefined
    }
    this.last.delete(key)
    this.last.set(key, now)
    this.forgetOld()
    const work = this.run(key, value, stale).finally(() => { this.running.delete(work) })
    this.running.add(work)
    return work
  }

  /** Ends corrections under way (a stopping store). */
  stop (): void {
    this.shutdown.abort()
    this.shutdown = shutdownController()
  }

  private async run (key: string, value: Uint8Array, stale: StaleHolder[]): Promise<void> {
    const signal = this.shutdown.signal
    await Promise.all(stale.map(async holder => {
      this.counts.sent++
      try {
        if (holder === 'self') {
          await this.components.correctLocal(key, value)
        } else {
          const ok = await this.components.correct(holder, key, value, { signal: timeLimit(CORRECTION_TIMEOUT_MS, { signal }) })
          if (!ok) throw new Error('the holder did not store it')
        }
        this.counts.stored++
      } catch (err: any) {
        this.counts.failed++
        this.components.log('could not correct %s at %s: %s', key.slice(0, 80), holder.toString(), err.message)
      }
    }))
    this.components.log('corrected %s at %d holders', key.slice(0, 80), stale.length)
  }

  /** Keeps the map bounded: the oldest entries go first (the map is in time order). */
  private forgetOld (): void {
    for (const key of this.last.keys()) {
      if (this.last.size <= MAX_CORRECTED_KEYS) return
      this.last.delete(key)
    }
  }
}
