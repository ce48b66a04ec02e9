/**
 * The signed record store on top of kad-dht: typed, namespaced, owner-signed records
 * with sequence numbers, validated by every storing peer, read up to a quorum per
 * namespace (stale holders corrected in the background), and republished by their
 * holders so they outlive kad-dht's 48 h expiry.
 */
import { Libp2pRecord } from '@libp2p/record'
import { defaultLogger, peerLogger } from '@libp2p/logger'
import { fromString as bytesFromString, toString as bytesToString } from 'uint8arrays'
import { verifyRecordValue, checkUpdate, selectRecord, bytesEqual, signedLifetimeEnd, InvalidRecordError, type VerifiedRecord } from '@conf-chat/protocol'
import { dsKeyFor, isExpiredAt, storedRecords } from './stored-records.js'
import { RecordSweeper } from './sweeper.js'
import { OwnWrites } from './own-writes.js'
import { RecordRepublisher } from './republisher.js'
import { RecordCorrections, kadCorrect, kadPutTo, type CorrectFn, type PutToFn, type StaleHolder } from './corrections.js'
import { RecordWriter, type PutResult } from './record-writer.js'
import { readQuorumOf, isKnownAbsent, kadId } from './quorums.js'
import { PUT_HOLDERS } from './put-targets.js'
import { Convergence } from '../dht/converged-lookup.js'
import { UnknownRecordError } from './errors.js'
import { timeLimit } from '../../utils/index.js'
import { NotResponsibleError, type Responsibility } from '../dht/responsibility.js'
import { DEFAULT_QUERY_TIMEOUT_MS, DEFAULT_RECORD_TTL_MS, DEFAULT_REPUBLISH_INTERVAL_MS, DEFAULT_RECORD_RESPONSIBLE_RANK } from '../../constants.js'
import type { HeldEntry } from '../storage-budget.js'
import type { KadDHT, QueryEvent } from '@libp2p/kad-dht'
import type { AbortOptions, ComponentLogger, Logger, PeerId } from '@libp2p/interface'
import type { Datastore, Key } from 'interface-datastore'

export interface RecordStoreInit {
  /** How long a store keeps a record after its last put (ms). @default 48 h (kad-dht's own) */
  recordTtlMs?: number
  /** How often holders republish what they store (ms); 0 turns republishing off. @default 1 h */
  republishIntervalMs?: number
  /** Limit for one put or get (ms). @default 15 s */
  queryTimeoutMs?: number
  /**
   * A record from the network is stored only if fewer than this many known peers are
   * closer to its key (see responsibility.ts). @default 20, the replicas of a kad-dht put
   */
  recordResponsibleRank?: number
  /**
   * How long a put of a key written lately waits for the holders that stored it last
   * before it looks the holders up as well (ms). @default 2 s (record-writer.ts)
   */
  holdersPatienceMs?: number
}

export interface RecordStoreComponents {
  /** The DHT records are put to and read from (only `put` and `get` are used). */
  dht: Pick<KadDHT, 'put' | 'get'>
  /** The datastore kad-dht stores records in: this peer's own copies are read from it (and a stale one corrected). */
  datastore: Pick<Datastore, 'get' | 'put' | 'delete' | 'query'>
  /**
   * Sends a newer record to a holder that answered a read with an older one. @default
   * kad-dht's own correction path (`kadCorrect(dht)`); none for a DHT without one
   */
  correct?: CorrectFn
  /**
   * Sends a record straight to a holder, for a key written again (RecordStore.put).
   * @default kad-dht's own RPC client (`kadPutTo(dht)`); none for a DHT without one
   */
  putTo?: PutToFn
  /**
   * The peers a put sends its record to, closest first, from a lookup that stops once it
   * converged (`findPutTargets` in put-targets.ts). @default none: every put is kad-dht's
   * put, its whole lookup included
   */
  findTargets?: (key: string, options: AbortOptions) => Promise<PeerId[]>
  /** @default a peerLogger of `peerId` if given, else defaultLogger() */
  logger?: ComponentLogger
  /**
   * This peer: names it in the log lines when no `logger` is given, and lets a read end
   * once the peers closest to the key have answered (a read's query names this peer in
   * the closer-peer lists of others, and kad-dht never asks itself). None: a read runs to
   * its quorum or to the query's end.
   */
  peerId?: PeerId
  /** The clock for TTL and republish decisions, ms since the epoch. @default Date.now */
  now?: () => number
  /** Whether this peer is close enough to a key to store its record. @default every key is taken */
  responsibility?: Pick<Responsibility, 'isResponsible'>
}

export interface GetOptions extends AbortOptions {
  /**
   * Stop the query once this many valid records (our own copy included) are in. @default
   * the namespace's quorum for `read` and `get` (see quorums.ts), Infinity for `getAll`
   * (every replica that answers: a name race must count them all)
   */
  quorum?: number
}

/**
 * What a read found out:
 * - `found`: at least one valid record (`best` is the chosen one);
 * - `absent`: the query ran to its end and enough peers answered, none with a valid record;
 * - `unknown`: the time limit passed or too few peers answered, and none gave a valid
 *   record. Never to be taken for "absent".
 */
export type ReadStatus = 'found' | 'absent' | 'unknown'

export interface GetResult<P = unknown> {
  status: ReadStatus
  /** The chosen record when found. */
  best?: VerifiedRecord<P>
  /** Every valid record read: our own copy first, then one per replica that answered. */
  all: Array<VerifiedRecord<P>>
  /** Remote peers that answered without a record, and that did not answer (or sent an invalid one). */
  answers: { none: number, failed: number }
}

/** A read's outcome (the same shape as `getAll`'s). */
export type ReadResult<P = unknown> = GetResult<P>

export class RecordStore {
  private readonly components: Pick<RecordStoreComponents, 'dht' | 'datastore'>
  private readonly corrections?: RecordCorrections
  private readonly log: Logger
  /** This peer (`RecordStoreComponents.peerId`). */
  private readonly self?: PeerId
  private readonly now: () => number
  private readonly sweeper: RecordSweeper
  private readonly republisher: RecordRepublisher
  readonly recordTtlMs: number
  readonly republishIntervalMs: number
  readonly queryTimeoutMs: number
  readonly responsibleRank: number
  private readonly responsibility?: Pick<Responsibility, 'isResponsible'>
  /** This peer's own writes, which the guard's responsibility check lets through (see own-writes.ts). */
  private readonly own = new OwnWrites()
  /** Puts (record-writer.ts). */
  private readonly writer: RecordWriter
  private running = false

  constructor (components: RecordStoreComponents, init: RecordStoreInit = {}) {
    this.components = { dht: components.dht, datastore: components.datastore }
    const logger = components.logger ?? (components.peerId != null ? peerLogger(components.peerId) : defaultLogger())
    this.log = logger.forComponent('conf-chat:network:records')
    this.self = components.peerId
    this.now = components.now ?? Date.now
    this.recordTtlMs = init.recordTtlMs ?? DEFAULT_RECORD_TTL_MS
    this.republishIntervalMs = init.republishIntervalMs ?? DEFAULT_REPUBLISH_INTERVAL_MS
    this.queryTimeoutMs = init.queryTimeoutMs ?? DEFAULT_QUERY_TIMEOUT_MS
    this.responsibleRank = init.recordResponsibleRank ?? DEFAULT_RECORD_RESPONSIBLE_RANK
    this.responsibility = components.responsibility
    this.sweeper = new RecordSweeper({ datastore: components.datastore, logger, now: this.now }, { recordTtlMs: this.recordTtlMs })
    this.republisher = new RecordRepublisher({
      datastore: components.datastore,
      put: async (key, value, options) => await this.put(key, value, options),
      isResponsible: key => this.isResponsible(key),
      logger,
      now: this.now
    }, { recordTtlMs: this.recordTtlMs, republishIntervalMs: this.republishIntervalMs })
    this.writer = new RecordWriter({
      dht: components.dht,
      own: this.own,
      storeLocal: async (key, value) => { await this.storeLocal(key, value) },
      putTo: components.putTo ?? kadPutTo(components.dht),
      findTargets: components.findTargets,
      log: this.log,
      now: this.now,
      queryTimeoutMs: this.queryTimeoutMs,
      holdersPatienceMs: init.holdersPatienceMs
    })
    const correct = components.correct ?? kadCorrect(components.dht)
    if (correct != null) {
      this.corrections = new RecordCorrections({
        correct,
        correctLocal: async (key, value) => { await this.storeLocal(key, value) },
        log: logger.forComponent('conf-chat:network:records:corrections'),
        now: this.now
      })
    }
  }

  /** Corrections of stale replicas sent after reads (see corrections.ts), for the figures. */
  get correctionCounts (): RecordCorrections['counts'] {
    return this.corrections?.counts ?? { sent: 0, stored: 0, failed: 0, skipped: 0 }
  }

  /**
   * The guard for the datastore: refuse a record from the network for a key this peer is
   * not responsible for, and any record that would replace a stored one while breaking
   * first-come-first-served or not raising the owner's sequence number.
   */
  readonly guard = async (dsKey: Key, raw: Uint8Array): Promise<void> => {
    const incoming = Libp2pRecord.deserialize(raw)
    const key = bytesToString(incoming.key)
    try {
      const stored = await this.readStored(dsKey, key)
      const own = this.own.isOwn(key, incoming.value, stored)
      if (!own && !this.isResponsible(key)) throw new NotResponsibleError(key, this.responsibleRank)
      const verified = verifyRecordValue(key, incoming.value)
      if ((signedLifetimeEnd(key, incoming.value) ?? Infinity) <= this.now()) throw new InvalidRecordError('the lifetime its owner signed has ended')
      checkUpdate(stored, verified)
    } catch (err: any) {
      this.log('refused to store %s: %s', key.slice(0, 80), err.message)
      throw err
    }
  }

  /** For the datastore: a stored record (kad-dht's serialized form) past the record TTL,
   * or unreadable, is expired and no longer served. */
  readonly isExpired = (stored: Uint8Array): boolean => {
    try {
      return this.expired(Libp2pRecord.deserialize(stored))
    } catch {
      return true
    }
  }

  /** Whether this peer is among the closest to `key` it knows (see responsibility.ts). */
  isResponsible (key: string): boolean {
    return this.responsibility?.isResponsible(bytesFromString(key), this.responsibleRank) ?? true
  }

  private expired (record: Libp2pRecord): boolean {
    return isExpiredAt(record, this.recordTtlMs, this.now())
  }

  /** Starts the sweeper and (unless `republishIntervalMs` is 0) the republisher. */
  start (): void {
    if (this.running) return
    this.running = true
    this.sweeper.start()
    if (this.republishIntervalMs > 0) this.republisher.start()
  }

  /** Stops both; a republish under way ends after the record it is putting. */
  stop (): void {
    this.running = false
    this.sweeper.stop()
    this.republisher.stop()
    this.corrections?.stop()
  }

  /**
   * Store a record locally and on the closest DHT servers (record-writer.ts). Returns once
   * the namespace's write quorum of holders stored it, or once the put ends if fewer did;
   * in the first case the put goes on to the other holders in the background (`settled`
   * waits for it). Throws InvalidRecordError before anything is sent, and
   * RecordConflictError if our own store already holds a record this one may not replace.
   */
  async put (key: string, value: Uint8Array, options: AbortOptions = {}): Promise<PutResult> {
    options.signal?.throwIfAborted()
    verifyRecordValue(key, value)
    return await this.writer.put(key, value, options)
  }

  /** Resolves once the puts that returned at their write quorum have ended (each within its time limit). */
  async settled (): Promise<void> {
    await this.writer.settled()
  }

  /** The raw value this peer stores for `key`, unverified (to inspect a store). */
  async storedValue (key: string, options: AbortOptions = {}): Promise<Uint8Array | undefined> {
    try {
      return Libp2pRecord.deserialize(await this.components.datastore.get(dsKeyFor(key), options)).value
    } catch {
      return undefined
    }
  }

  /** Our own stored copy, if valid and not expired. */
  async getLocal<P = unknown> (key: string, options: AbortOptions = {}): Promise<VerifiedRecord<P> | undefined> {
    return await this.readStored<P>(dsKeyFor(key), key, options)
  }

  /**
   * Read a record: stop once the namespace's quorum of valid records is in (see
   * quorums.ts), never waiting for every holder, and choose with the namespace's selector
   * (for single-writer records the highest sequence number). Holders that answered with
   * an older record of the same owner are corrected in the background. Stale, forged or
   * refused replicas never win. The outcome says found, absent or unknown; a caller's
   * abort ends the read with the abort.
   */
  async read<P = unknown> (key: string, options: GetOptions = {}): Promise<ReadResult<P>> {
    return await this.query<P>(key, options.quorum ?? readQuorumOf(key), options)
  }

  /** `read` of every replica that answers (no quorum unless `options.quorum`): for a name race. */
  async getAll<P = unknown> (key: string, options: GetOptions = {}): Promise<GetResult<P>> {
    return await this.query<P>(key, options.quorum ?? Infinity, options)
  }

  /**
   * The chosen record of `read`, or undefined if the record is absent. Throws
   * UnknownRecordError when the read could not tell (time limit, too few answers).
   */
  async get<P = unknown> (key: string, options: GetOptions = {}): Promise<VerifiedRecord<P> | undefined> {
    const result = await this.read<P>(key, options)
    if (result.status === 'unknown') throw new UnknownRecordError(key, `${result.answers.none} answered, ${result.answers.failed} did not`)
    return result.best
  }

  private async query<P> (key: string, quorum: number, options: AbortOptions): Promise<ReadResult<P>> {
    options.signal?.throwIfAborted()
    const all: Array<VerifiedRecord<P>> = []
    /** Where each of `all` came from (same order). */
    const holders: StaleHolder[] = []
    /** Peers that answered or failed, once each: whether they answered "none", by kad id. */
    const tried = new Map<string, { id: Uint8Array, none: boolean }>()
    const answers = { none: 0, failed: 0 }
    /** Why peers failed, by error name (for the log). */
    const failures = new Map<string, number>()
    const local = await this.getLocal<P>(key, options)
    if (local != null) { all.push(local); holders.push('self') }
    const signal = timeLimit(this.queryTimeoutMs, options)
    // ended: at the quorum; converged (every peer a put writes to has answered: no holder is
    // left to ask); the query ended on its own; or its time limit
    let ended = 'query' as 'quorum' | 'converged' | 'query' | 'limit'
    const keyBytes = bytesFromString(key)
    // a read of every replica (a name, at registration and login) runs to kad-dht's end:
    // to hide a contest, Sybils must then hold the closest peers of every one of its paths,
    // not only the 20 closest to the key
    const convergence = this.self == null || quorum === Infinity ? undefined : new Convergence(this.self, keyBytes, PUT_HOLDERS)
    try {
      if (all.length >= quorum) {
        ended = 'quorum'
      } else {
        // kad-dht corrects our own stale copy at the end of a read, through the write guard
        await this.own.read(key, async () => {
          /** One event of the query: true once the quorum is reached. */
          const take = (ev: QueryEvent): boolean => {
            if (ev.name === 'QUERY_ERROR' && ev.from != null) {
              // a peer that failed, or sent a record kad-dht's validators refused
              const from = ev.from.toString()
              if (tried.has(from)) return false
              tried.set(from, { id: kadId(ev.from.toMultihash().bytes), none: false })
              answers.failed++
              failures.set(ev.error.name, (failures.get(ev.error.name) ?? 0) + 1)
            } else if (ev.name === 'PEER_RESPONSE' && ev.messageName === 'GET_VALUE') {
              const from = ev.from.toString()
              if (tried.has(from)) return false
              tried.set(from, { id: kadId(ev.from.toMultihash().bytes), none: ev.record == null })
              if (ev.record == null) { answers.none++; return false }
              try {
                all.push(verifyRecordValue<P>(key, ev.record.value))
                holders.push(ev.from)
              } catch (err: any) {
                answers.failed++
                this.log('ignored a record for %s: %s', key, err.message)
              }
              return all.length >= quorum
            }
            return false
          }
          // leaving the loop ends the query
          for await (const ev of this.components.dht.get(keyBytes, { signal }) as AsyncIterable<QueryEvent>) {
            if (take(ev)) { ended = 'quorum'; break }
            if (convergence?.observe(ev) === true) { ended = 'converged'; break }
          }
        })
      }
    } catch (err: any) {
      // a replica refusing kad-dht's correction (the query had ended), or the time limit
      this.log('get %s: %s', key, err.message)
    }
    // the caller gave up: what was collected is no answer (kad-dht ends an aborted query quietly)
    options.signal?.throwIfAborted()
    if (ended === 'query' && signal.aborted) ended = 'limit'
    const i = selectRecord(key, all.map(r => r.value))
    const best = i >= 0 ? all[i] : undefined
    let status: ReadStatus
    if (best != null) status = 'found'
    else if ((ended === 'query' || ended === 'converged') && isKnownAbsent(keyBytes, [...tried.values()])) status = 'absent'
    else status = 'unknown'
    // kad-dht corrected the stale holders itself if its query ran to the end
    if (best != null && ended !== 'query') this.correctStale(key, best, all, holders)
    this.log('read %s: %s after %d records, %d without, %d failed %o (%s)', key.slice(0, 80), status, all.length, answers.none, answers.failed, Object.fromEntries(failures), ended)
    return { status, best, all, answers }
  }

  /** Send `best` to the holders that gave an older record of the same owner (in the background, rate-limited). */
  private correctStale<P> (key: string, best: VerifiedRecord<P>, all: Array<VerifiedRecord<P>>, holders: StaleHolder[]): void {
    if (this.corrections == null) return
    const stale: StaleHolder[] = []
    all.forEach((r, i) => {
      if (bytesEqual(r.value, best.value)) return
      try { checkUpdate(r, best) } catch { return } // another owner's claim, or not older
      stale.push(holders[i]!)
    })
    void this.corrections.schedule(key, best.value, stale)
  }

  /** Replace our own copy of `key` with `value`, as kad-dht does when it corrects itself (through the write guard). */
  private async storeLocal (key: string, value: Uint8Array): Promise<void> {
    const raw = new Libp2pRecord(bytesFromString(key), value, new Date(this.now())).serialize()
    const dsKey = dsKeyFor(key)
    await this.own.put(key, value, async () => {
      await this.guard(dsKey, raw)
      await this.components.datastore.put(dsKey, raw)
    })
  }

  /** Every record this peer stores, for the storage budget: when it last came, and how to delete it. */
  async * heldRecords (options: AbortOptions = {}): AsyncGenerator<HeldEntry> {
    const { datastore } = this.components
    for await (const { key, record } of storedRecords(datastore, options)) {
      yield { time: record.timeReceived.getTime(), bytes: record.value.length + record.key.length, remove: async () => { await datastore.delete(key) } }
    }
  }

  /** Delete stored records older than the record TTL, as kad-dht would (after 48 h). */
  async sweep (options: AbortOptions = {}): Promise<number> {
    return await this.sweeper.sweep(options)
  }

  /** Re-put every stored record not refreshed within the interval (Kademlia's republish). */
  async republish (options: AbortOptions = {}): Promise<number> {
    return await this.republisher.republish(options)
  }

  private async readStored<P> (dsKey: Key, key: string, options: AbortOptions = {}): Promise<VerifiedRecord<P> | undefined> {
    let raw: Uint8Array
    try {
      raw = await this.components.datastore.get(dsKey, options)
    } catch {
      return undefined
    }
    try {
      const rec = Libp2pRecord.deserialize(raw)
      if (this.expired(rec)) return undefined
      return verifyRecordValue<P>(key, rec.value)
    } catch {
      return undefined
    }
  }
}
