/**
 * The writing side of the record store. A put stores our own copy (through the write
 * guard) and the record on the closest DHT servers, and returns at its namespace's write
 * quorum (quorums.ts) while kad-dht's put goes on to the other holders in the background.
 * A key put again within HOLDERS_REUSE_MS goes straight to the holders that stored it at
 * its last put with a lookup.
 *
 * The lookup of a put: kad-dht's put runs its closest-peers lookup to the end (every
 * disjoint path until it heard from k peers). A put of a single-writer record instead
 * reads the same query as it goes and stops it once it converged (put-targets.ts), then
 * sends the record to the closest peers found, in order. A name's put keeps kad-dht's
 * whole lookup: registration reads every replica right after it, to see a contest, and
 * a name is written once.
 */
import { fromString as bytesFromString } from 'uint8arrays'
import { bytesEqual } from '@conf-chat/protocol'
import { writeQuorumOf } from './quorums.js'
import { MAX_PUT_ATTEMPTS, PUT_HOLDERS, PUTS_IN_FLIGHT } from './put-targets.js'
import { timeLimit } from '../../utils/index.js'
import type { OwnWrites } from './own-writes.js'
import type { PutToFn } from './corrections.js'
import type { KadDHT } from '@libp2p/kad-dht'
import type { AbortOptions, Logger, PeerId } from '@libp2p/interface'

export interface PutResult {
  /** Remote replicas that acknowledged the record. */
  replicas: number
  /** Remote replicas that refused it (invalid, stale, or the name is taken there). */
  refused: number
}

/**
 * A key written again within this long goes straight to the holders that stored it when
 * it was last put with a closest-peers lookup (each PUT_VALUE on a connection the writer
 * most likely still has), with no lookup: a member's history page is written every few
 * seconds while a conversation goes on, and at 200 peers a lookup is 50-60 RPCs, most of
 * them dialing first, so 20 members chatting made ~20 lookups every 5 s (README's
 * bench:scale notes). After this long the next put looks the closest peers up again, so
 * peers that joined closer to the key get the record within a minute; a put to the
 * remembered holders that does not reach the write quorum (they left, or refuse) is
 * followed at once by a put with a lookup.
 */
export const HOLDERS_REUSE_MS = 60_000
/**
 * How long a put to the remembered holders may take to reach its write quorum before the
 * holders are looked up as well (ms). A remembered holder that has left answers nothing
 * until its dial times out (seconds); the quorum of those still there comes within a few
 * hundred ms even at 200 peers on two cores. The put to them goes on in the background.
 */
export const REMEMBERED_HOLDERS_PATIENCE_MS = 2_000
/** Keys whose holders are remembered (bounded memory); the oldest go first. */
export const MAX_REMEMBERED_HOLDERS = 1_024

export interface RecordWriterComponents {
  dht: Pick<KadDHT, 'put'>
  /** This peer's own writes, which the write guard lets through (own-writes.ts). */
  own: Pick<OwnWrites, 'put'>
  /** Writes our own copy through the write guard, as kad-dht's put does. */
  storeLocal: (key: string, value: Uint8Array) => Promise<void>
  /** Sends the record straight to one holder; none: every put is kad-dht's put. */
  putTo?: PutToFn
  /**
   * The peers to put a key's record on, closest first (put-targets.ts); none: every put
   * is kad-dht's put, lookup and all.
   */
  findTargets?: (key: string, options: AbortOptions) => Promise<PeerId[]>
  log: Logger
  now: () => number
  /** Limit for one put (ms). */
  queryTimeoutMs: number
  /** @default REMEMBERED_HOLDERS_PATIENCE_MS */
  holdersPatienceMs?: number
}

export class RecordWriter {
  private readonly c: RecordWriterComponents
  /** Puts that returned at their write quorum and still run on to the other holders. */
  private readonly tails = new Set<Promise<void>>()
  /** For each key put lately with a lookup: the holders that stored it, and when (see HOLDERS_REUSE_MS). */
  private readonly holders = new Map<string, { peers: PeerId[], at: number }>()

  constructor (components: RecordWriterComponents) {
    this.c = components
  }

  /**
   * Store a record (checked by the caller) locally and on the closest DHT servers. Returns once the namespace's
   * write quorum of holders stored it (see quorums.ts), or once the put ends if fewer did;
   * in the first case the put goes on to the other holders in the background (`settled`
   * waits for it). Throws RecordConflictError if our own store already holds a record this
   * one may not replace.
   */
  async put (key: string, value: Uint8Array, options: AbortOptions = {}): Promise<PutResult> {
    const quorum = writeQuorumOf(key)
    // kad-dht's put() never yields its FINAL_PEER events: a peer is a put target once we
    // sent it PUT_VALUE, and it stored the record only if it echoed our value back
    const sentTo = new Set<string>()
    const result: PutResult = { replicas: 0, refused: 0 }
    let signal = timeLimit(this.c.queryTimeoutMs, options)
    const known = this.holders.get(key)
    if (known != null && this.c.putTo != null && this.c.now() - known.at < HOLDERS_REUSE_MS && known.peers.length >= quorum) {
      const direct = this.putToHolders(key, value, known.peers, quorum, signal)
      let timer: NodeJS.Timeout | undefined
      const patience = new Promise<'slow'>(resolve => { timer = setTimeout(() => { resolve('slow') }, this.c.holdersPatienceMs ?? REMEMBERED_HOLDERS_PATIENCE_MS) })
      const first = await Promise.race([direct, patience]).finally(() => { clearTimeout(timer) })
      if (first !== 'slow' && first != null) return first
      this.holders.delete(key)
      if (first === 'slow') {
        // (whatever they still do goes on in the background, as a put's tail does)
        this.track(direct.then(() => {}, (err: Error) => { this.c.log('put %s to its remembered holders: %s', key, err.message) }))
        this.c.log('put %s: the remembered holders are slow, looking them up', key)
        // the put with a lookup gets its own time limit
        signal = timeLimit(this.c.queryTimeoutMs, options)
      } else {
        this.c.log('put %s: the remembered holders did not take it, looking them up', key)
      }
    }
    if (Number.isFinite(quorum) && this.c.putTo != null && this.c.findTargets != null) {
      return await this.putToClosest(key, value, quorum, signal, options)
    }
    let reachedQuorum = (): void => {}
    const atQuorum = new Promise<'quorum'>(resolve => { reachedQuorum = () => { resolve('quorum') } })
    const storedOn: PeerId[] = []
    // kad-dht stores our own copy first, through the write guard
    const putting = this.c.own.put(key, value, async () => {
      for await (const ev of this.c.dht.put(bytesFromString(key), value, { signal })) {
        if (ev.name === 'SEND_QUERY' && ev.messageName === 'PUT_VALUE') {
          sentTo.add(ev.to.toString())
        } else if (ev.name === 'PEER_RESPONSE' && ev.messageName === 'PUT_VALUE' && sentTo.delete(ev.from.toString())) {
          if (ev.record != null && bytesEqual(ev.record.value, value)) {
            storedOn.push(ev.from)
            if (++result.replicas >= quorum) reachedQuorum()
          } else {
            result.refused++
          }
        } else if (ev.name === 'QUERY_ERROR' && sentTo.delete(ev.from.toString())) {
          // a validator or the write guard refusing resets the stream; a time limit is no refusal
          if (!signal.aborted && ev.error.name !== 'AbortError' && ev.error.name !== 'TimeoutError') result.refused++
        }
      }
      // every holder answered: the next put of this key within HOLDERS_REUSE_MS goes to those that stored it
      if (storedOn.length >= quorum) this.rememberHolders(key, storedOn)
    }).then(() => undefined, (err: Error) => err)
    const first = await Promise.race([putting, atQuorum])
    if (first === 'quorum') {
      const atReturn = { ...result }
      this.track(putting.then(err => {
        if (err != null && !signal.aborted) this.c.log('put %s after its quorum: %s', key, err.message)
        this.c.log('put %s: %d replicas, %d refused (returned at %d)', key, result.replicas, result.refused, atReturn.replicas)
      }))
      return atReturn
    }
    if (first != null) {
      const err: any = first
      if (err.name === 'RecordConflictError' || err.name === 'InvalidRecordError') throw err
      if (!signal.aborted) throw err
      this.c.log('put %s ended by its time limit', key)
    }
    // the caller gave up: that is no result (kad-dht ends an aborted query quietly)
    options.signal?.throwIfAborted()
    this.c.log('put %s: %d replicas, %d refused', key, result.replicas, result.refused)
    return result
  }

  /**
   * A put of a key put lately with a lookup: our own copy (through the write guard), then
   * the record to each holder that stored it then, returning at the write quorum while the
   * rest go on in the background, as a put's do. Undefined when fewer than the quorum
   * stored it.
   */
  private async putToHolders (key: string, value: Uint8Array, holders: PeerId[], quorum: number, signal: AbortSignal): Promise<PutResult | undefined> {
    await this.c.storeLocal(key, value)
    const sending = this.sendInOrder(key, value, holders, { quorum, want: holders.length, inFlight: holders.length, signal })
    await Promise.race([sending.done, sending.atQuorum])
    if (sending.result.replicas < quorum) return undefined
    const atReturn = { ...sending.result }
    this.track(sending.done.then(() => {
      this.c.log('put %s to its %d remembered holders: %d replicas, %d refused (returned at %d)', key, holders.length, sending.result.replicas, sending.result.refused, atReturn.replicas)
    }))
    return atReturn
  }

  /**
   * A put with a lookup that stops once it converged: our own copy (through the write
   * guard), the targets (put-targets.ts), then the record to them in the order of their
   * distance until PUT_HOLDERS stored it, returning at the write quorum while the rest
   * goes on in the background. A holder that does not store it makes room for the next.
   */
  private async putToClosest (key: string, value: Uint8Array, quorum: number, signal: AbortSignal, options: AbortOptions): Promise<PutResult> {
    const findTargets = this.c.findTargets
    if (findTargets == null) throw new Error('no lookup of put targets')
    await this.c.storeLocal(key, value)
    let targets: PeerId[]
    try {
      targets = await findTargets(key, { signal })
    } catch (err: any) {
      options.signal?.throwIfAborted()
      if (!signal.aborted) throw err
      this.c.log('put %s ended by its time limit in its lookup', key)
      return { replicas: 0, refused: 0 }
    }
    const sending = this.sendInOrder(key, value, targets, { quorum, want: PUT_HOLDERS, inFlight: PUTS_IN_FLIGHT, signal })
    const finish = (): void => {
      this.c.log('put %s: %d replicas, %d refused, of %d targets', key, sending.result.replicas, sending.result.refused, targets.length)
      if (sending.storedOn.length >= quorum) this.rememberHolders(key, sending.storedOn)
    }
    await Promise.race([sending.done, sending.atQuorum])
    if (sending.result.replicas >= quorum) {
      const atReturn = { ...sending.result }
      this.track(sending.done.then(finish))
      return atReturn
    }
    // the caller gave up: that is no result
    options.signal?.throwIfAborted()
    finish()
    return { ...sending.result }
  }

  /**
   * Sends the record to `peers` in their order, `inFlight` at a time, until `want` of them
   * stored it, the list ends or MAX_PUT_ATTEMPTS were sent; a peer that did not store it
   * makes room for the next. `atQuorum` resolves once `quorum` stored it (never, if fewer
   * do), `done` when nothing is in flight any more.
   */
  private sendInOrder (key: string, value: Uint8Array, peers: PeerId[], o: { quorum: number, want: number, inFlight: number, signal: AbortSignal }): {
    result: PutResult, storedOn: PeerId[], atQuorum: Promise<void>, done: Promise<void>
  } {
    const putTo = this.c.putTo
    if (putTo == null) throw new Error('no direct put')
    const result: PutResult = { replicas: 0, refused: 0 }
    const storedOn: PeerId[] = []
    let reachedQuorum = (): void => {}
    const atQuorum = new Promise<void>(resolve => { reachedQuorum = resolve })
    const limit = Math.min(peers.length, MAX_PUT_ATTEMPTS)
    let next = 0
    let running = 0
    const done = new Promise<void>(resolve => {
      const pump = (): void => {
        while (running < o.inFlight && next < limit && result.replicas + running < o.want && !o.signal.aborted) {
          const peer = peers[next++]!
          running++
          void putTo(peer, key, value, { signal: o.signal }).catch(() => 'failed' as const).then(outcome => {
            running--
            if (outcome === 'stored') {
              storedOn.push(peer)
              if (++result.replicas >= o.quorum) reachedQuorum()
            } else if (outcome === 'refused') {
              result.refused++
            }
            pump()
          })
        }
        if (running === 0) resolve()
      }
      pump()
    })
    return { result, storedOn, atQuorum, done }
  }

  private rememberHolders (key: string, peers: PeerId[]): void {
    this.holders.delete(key)
    this.holders.set(key, { peers, at: this.c.now() })
    for (const oldest of this.holders.keys()) {
      if (this.holders.size <= MAX_REMEMBERED_HOLDERS) break
      this.holders.delete(oldest)
    }
  }

  /** A put's part that goes on after the put returned (`settled` waits for it); it must not reject. */
  private track (tail: Promise<void>): void {
    const tracked: Promise<void> = tail.finally(() => { this.tails.delete(tracked) })
    this.tails.add(tracked)
  }

  /** Resolves once the puts that returned at their write quorum have ended (each within its time limit). */
  async settled (): Promise<void> {
    while (this.tails.size > 0) await Promise.all(this.tails)
  }
}
