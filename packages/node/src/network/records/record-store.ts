/**
 * The signed record store on top of kad-dht: typed, namespaced, owner-signed records
 * with sequence numbers, validated by every storing peer, read from every replica, and
 * republished by their holders so they outlive kad-dht's 48 h expiry.
 */
import { Libp2pRecord } from '@libp2p/record'
import { defaultLogger, peerLogger } from '@libp2p/logger'
import { fromString as bytesFromString, toString as bytesToString } from 'uint8arrays'
import { verifyRecordValue, checkUpdate, selectRecord, bytesEqual, type VerifiedRecord } from '@conf-chat/protocol'
import { dsKeyFor, isExpiredAt } from './stored-records.js'
import { RecordSweeper } from './sweeper.js'
import { RecordRepublisher } from './republisher.js'
import { timeLimit } from '../../utils/index.js'
import { DEFAULT_QUERY_TIMEOUT_MS, DEFAULT_RECORD_TTL_MS, DEFAULT_REPUBLISH_INTERVAL_MS } from '../../constants.js'
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
}

export interface RecordStoreComponents {
  /** The DHT records are put to and read from (only `put` and `get` are used). */
  dht: Pick<KadDHT, 'put' | 'get'>
  /** The datastore kad-dht stores records in: this peer's own copies are read from it. */
  datastore: Pick<Datastore, 'get' | 'delete' | 'query'>
  /** @default a peerLogger of `peerId` if given, else defaultLogger() */
  logger?: ComponentLogger
  /** Only names this peer in the log lines when no `logger` is given. */
  peerId?: PeerId
  /** The clock for TTL and republish decisions, ms since the epoch. @default Date.now */
  now?: () => number
}

export interface PutResult {
  /** Remote replicas that acknowledged the record. */
  replicas: number
  /** Remote replicas that refused it (invalid, stale, or the name is taken there). */
  refused: number
}

export interface GetOptions extends AbortOptions {
  /**
   * Stop the query once this many replicas (our own copy included) gave a valid record.
   * Most reads need only a few: the writer put to the closest servers. A name race must
   * count every replica. @default Infinity (read every replica that answers)
   */
  quorum?: number
}

export interface GetResult<P = unknown> {
  /** The chosen record, or undefined if no valid record was found. */
  best?: VerifiedRecord<P>
  /** Every valid record found: our own copy first, then one per replica that answered. */
  all: Array<VerifiedRecord<P>>
}

export class RecordStore {
  private readonly components: Pick<RecordStoreComponents, 'dht' | 'datastore'>
  private readonly log: Logger
  private readonly now: () => number
  private readonly sweeper: RecordSweeper
  private readonly republisher: RecordRepublisher
  readonly recordTtlMs: number
  readonly republishIntervalMs: number
  readonly queryTimeoutMs: number
  private running = false

  constructor (components: RecordStoreComponents, init: RecordStoreInit = {}) {
    this.components = { dht: components.dht, datastore: components.datastore }
    const logger = components.logger ?? (components.peerId != null ? peerLogger(components.peerId) : defaultLogger())
    this.log = logger.forComponent('conf-chat:network:records')
    this.now = components.now ?? Date.now
    this.recordTtlMs = init.recordTtlMs ?? DEFAULT_RECORD_TTL_MS
    this.republishIntervalMs = init.republishIntervalMs ?? DEFAULT_REPUBLISH_INTERVAL_MS
    this.queryTimeoutMs = init.queryTimeoutMs ?? DEFAULT_QUERY_TIMEOUT_MS
    this.sweeper = new RecordSweeper({ datastore: components.datastore, logger, now: this.now }, { recordTtlMs: this.recordTtlMs })
    this.republisher = new RecordRepublisher({
      datastore: components.datastore,
      put: async (key, value, options) => await this.put(key, value, options),
      logger,
      now: this.now
    }, { recordTtlMs: this.recordTtlMs, republishIntervalMs: this.republishIntervalMs })
  }

  /**
   * The guard for the datastore: refuse to replace a stored record with one that breaks
   * first-come-first-served or does not raise the owner's sequence number.
   */
  readonly guard = async (dsKey: Key, raw: Uint8Array): Promise<void> => {
    const incoming = Libp2pRecord.deserialize(raw)
    const key = bytesToString(incoming.key)
    try {
      const verified = verifyRecordValue(key, incoming.value)
      checkUpdate(await this.readStored(dsKey, key), verified)
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
  }

  /** Store a record locally and on the closest DHT servers. Throws RecordConflictError
   * if our own store already holds a record this one may not replace. */
  async put (key: string, value: Uint8Array, options: AbortOptions = {}): Promise<PutResult> {
    options.signal?.throwIfAborted()
    verifyRecordValue(key, value)
    // kad-dht's put() never yields its FINAL_PEER events: a peer is a put target once we
    // sent it PUT_VALUE, and it stored the record only if it echoed our value back
    const sentTo = new Set<string>()
    const result: PutResult = { replicas: 0, refused: 0 }
    const signal = timeLimit(this.queryTimeoutMs, options)
    try {
      for await (const ev of this.components.dht.put(bytesFromString(key), value, { signal })) {
        if (ev.name === 'SEND_QUERY' && ev.messageName === 'PUT_VALUE') {
          sentTo.add(ev.to.toString())
        } else if (ev.name === 'PEER_RESPONSE' && ev.messageName === 'PUT_VALUE' && sentTo.delete(ev.from.toString())) {
          if (ev.record != null && bytesEqual(ev.record.value, value)) result.replicas++
          else result.refused++
        } else if (ev.name === 'QUERY_ERROR' && sentTo.delete(ev.from.toString())) {
          // a validator or the write guard refusing resets the stream; a time limit is no refusal
          if (!signal.aborted && ev.error.name !== 'AbortError' && ev.error.name !== 'TimeoutError') result.refused++
        }
      }
    } catch (err: any) {
      if (err.name === 'RecordConflictError' || err.name === 'InvalidRecordError') throw err
      if (!signal.aborted) throw err
      this.log('put %s ended by its time limit', key)
    }
    // the caller gave up: that is no result (kad-dht ends an aborted query quietly)
    options.signal?.throwIfAborted()
    this.log('put %s: %d replicas, %d refused', key, result.replicas, result.refused)
    return result
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
   * Read a record from every replica that answers, verify each, and choose with the
   * namespace's selector. Stale, forged or refused replicas never win, and a replica
   * that refuses a correction does not turn a found record into an error.
   */
  async getAll<P = unknown> (key: string, options: GetOptions = {}): Promise<GetResult<P>> {
    options.signal?.throwIfAborted()
    const quorum = options.quorum ?? Infinity
    const all: Array<VerifiedRecord<P>> = []
    const local = await this.getLocal<P>(key, options)
    if (local != null) all.push(local)
    const signal = timeLimit(this.queryTimeoutMs, options)
    try {
      if (all.length < quorum) {
        for await (const ev of this.components.dht.get(bytesFromString(key), { signal }) as AsyncIterable<QueryEvent>) {
          if (ev.name === 'PEER_RESPONSE' && ev.messageName === 'GET_VALUE' && ev.record != null) {
            try { all.push(verifyRecordValue<P>(key, ev.record.value)) } catch (err: any) { this.log('ignored a record for %s: %s', key, err.message) }
            if (all.length >= quorum) break // leaving the loop ends the query
          }
        }
      }
    } catch (err: any) {
      // a replica refusing our correction, or the time limit: we still have what we collected
      this.log('get %s: %s', key, err.message)
    }
    // the caller gave up: what was collected is no answer (kad-dht ends an aborted query quietly)
    options.signal?.throwIfAborted()
    const i = selectRecord(key, all.map(r => r.value))
    return { best: i >= 0 ? all[i] : undefined, all }
  }

  /** The chosen record of `getAll`, or undefined if no replica gave a valid one. */
  async get<P = unknown> (key: string, options: GetOptions = {}): Promise<VerifiedRecord<P> | undefined> {
    return (await this.getAll<P>(key, options)).best
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
