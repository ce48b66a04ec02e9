/**
 * The signed record store on top of kad-dht: typed, namespaced, owner-signed records
 * with sequence numbers, validated by every storing peer, read from every replica, and
 * republished by their holders so they outlive kad-dht's 48 h expiry.
 */
import { Libp2pRecord } from '@libp2p/record'
import { logger } from '@libp2p/logger'
import { Key } from 'interface-datastore'
import { fromString as bytesFromString, toString as bytesToString } from 'uint8arrays'
import {
  NAMESPACES, verifyRecordValue, checkUpdate, selectRecord, bytesEqual,
  type VerifiedRecord, type Namespace
} from '@conf-chat/protocol'
import type { KadDHT, QueryEvent, ValidateFn, SelectFn } from '@libp2p/kad-dht'
import type { AbortOptions, PeerId } from '@libp2p/interface'
import type { Datastore } from 'interface-datastore'
import { DHT_RECORD_PREFIX } from '../../storage/datastore.js'
import { DEFAULT_QUERY_TIMEOUT_MS, DEFAULT_RECORD_TTL_MS, DEFAULT_REPUBLISH_INTERVAL_MS } from '../../constants.js'

const log = logger('conf-chat:records')

export interface RecordStoreInit {
  /** How long a store keeps a record after its last put. @default 48 h (kad-dht's own) */
  recordTtlMs?: number
  /** How often holders republish what they store; 0 turns republishing off. @default 1 h */
  republishIntervalMs?: number
  /** Limit for one put or get. @default 15 s */
  queryTimeoutMs?: number
}

export interface RecordStoreComponents {
  dht: KadDHT
  datastore: Datastore
  peerId: PeerId
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

/** kad-dht validators: the stateless checks, the same on every path (put, get, correction). */
export function recordValidators (): Record<string, ValidateFn> {
  const validators: Record<string, ValidateFn> = {}
  for (const ns of Object.keys(NAMESPACES)) {
    validators[ns] = (key, value) => {
      try {
        verifyRecordValue(bytesToString(key), value)
      } catch (err: any) {
        log('refused record for %s: %s', bytesToString(key).slice(0, 80), err.message)
        throw err
      }
    }
  }
  return validators
}

/** kad-dht selectors: the same rule as the validators (see `selectRecord`). */
export function recordSelectors (): Record<string, SelectFn> {
  const selectors: Record<string, SelectFn> = {}
  for (const ns of Object.keys(NAMESPACES)) {
    selectors[ns] = (key, values) => {
      const i = selectRecord(bytesToString(key), values)
      if (i < 0) throw new Error('no valid record')
      return i
    }
  }
  return selectors
}

function dsKeyFor (key: string): Key {
  return new Key(`${DHT_RECORD_PREFIX}/${bytesToString(bytesFromString(key), 'base32')}`, false)
}

export class RecordStore {
  private readonly components: RecordStoreComponents
  readonly recordTtlMs: number
  readonly republishIntervalMs: number
  readonly queryTimeoutMs: number
  private sweepTimer?: NodeJS.Timeout
  private republishTimer?: NodeJS.Timeout
  private running = false

  constructor (components: RecordStoreComponents, init: RecordStoreInit = {}) {
    this.components = components
    this.recordTtlMs = init.recordTtlMs ?? DEFAULT_RECORD_TTL_MS
    this.republishIntervalMs = init.republishIntervalMs ?? DEFAULT_REPUBLISH_INTERVAL_MS
    this.queryTimeoutMs = init.queryTimeoutMs ?? DEFAULT_QUERY_TIMEOUT_MS
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
      log('refused to store %s: %s', key.slice(0, 80), err.message)
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
    return Date.now() - record.timeReceived.getTime() > this.recordTtlMs
  }

  start (): void {
    if (this.running) return
    this.running = true
    const sweepEvery = Math.max(250, Math.min(this.recordTtlMs / 4, 10 * 60_000))
    this.sweepTimer = setInterval(() => { this.sweep().catch(err => log.error('sweep failed: %e', err)) }, sweepEvery).unref()
    if (this.republishIntervalMs > 0) {
      this.scheduleRepublish()
    }
  }

  stop (): void {
    this.running = false
    clearInterval(this.sweepTimer)
    clearTimeout(this.republishTimer)
  }

  /** Ticks at a quarter of the interval with jitter, so that of all holders of a record
   * the first to find it due republishes it and the others then see it fresh. */
  private scheduleRepublish (): void {
    const delay = (this.republishIntervalMs / 4) * (0.75 + Math.random() / 2)
    this.republishTimer = setTimeout(() => {
      this.republish()
        .catch(err => log.error('republish failed: %e', err))
        .finally(() => { if (this.running) this.scheduleRepublish() })
    }, delay).unref()
  }

  /** Store a record locally and on the closest DHT servers. Throws RecordConflictError
   * if our own store already holds a record this one may not replace. */
  async put (key: string, value: Uint8Array, options: AbortOptions = {}): Promise<PutResult> {
    verifyRecordValue(key, value)
    // kad-dht's put() never yields its FINAL_PEER events: a peer is a put target once we
    // sent it PUT_VALUE, and it stored the record only if it echoed our value back
    const sentTo = new Set<string>()
    const result: PutResult = { replicas: 0, refused: 0 }
    const signal = this.signal(options)
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
      log('put %s ended by its time limit', key)
    }
    log('put %s: %d replicas, %d refused', key, result.replicas, result.refused)
    return result
  }

  /** The raw value this peer stores for `key`, unverified (to inspect a store). */
  async storedValue (key: string): Promise<Uint8Array | undefined> {
    try {
      return Libp2pRecord.deserialize(await this.components.datastore.get(dsKeyFor(key))).value
    } catch {
      return undefined
    }
  }

  /** Our own stored copy, if valid and not expired. */
  async getLocal<P = unknown> (key: string): Promise<VerifiedRecord<P> | undefined> {
    return await this.readStored<P>(dsKeyFor(key), key)
  }

  /**
   * Read a record from every replica that answers, verify each, and choose with the
   * namespace's selector. Stale, forged or refused replicas never win, and a replica
   * that refuses a correction does not turn a found record into an error.
   */
  async getAll<P = unknown> (key: string, options: GetOptions = {}): Promise<GetResult<P>> {
    const quorum = options.quorum ?? Infinity
    const all: Array<VerifiedRecord<P>> = []
    const local = await this.getLocal<P>(key)
    if (local != null) all.push(local)
    const signal = this.signal(options)
    try {
      if (all.length < quorum) {
        for await (const ev of this.components.dht.get(bytesFromString(key), { signal }) as AsyncIterable<QueryEvent>) {
          if (ev.name === 'PEER_RESPONSE' && ev.messageName === 'GET_VALUE' && ev.record != null) {
            try { all.push(verifyRecordValue<P>(key, ev.record.value)) } catch (err: any) { log('ignored a record for %s: %s', key, err.message) }
            if (all.length >= quorum) break // leaving the loop ends the query
          }
        }
      }
    } catch (err: any) {
      // a replica refusing our correction, or the time limit: we still have what we collected
      log('get %s: %s', key, err.message)
    }
    const i = selectRecord(key, all.map(r => r.value))
    return { best: i >= 0 ? all[i] : undefined, all }
  }

  async get<P = unknown> (key: string, options: GetOptions = {}): Promise<VerifiedRecord<P> | undefined> {
    return (await this.getAll<P>(key, options)).best
  }

  /** Delete stored records older than the record TTL, as kad-dht would (after 48 h). */
  async sweep (): Promise<number> {
    let removed = 0
    for await (const { key, record } of this.storedRecords()) {
      if (this.expired(record)) {
        await this.components.datastore.delete(key)
        removed++
      }
    }
    if (removed > 0) log('swept %d expired records', removed)
    return removed
  }

  /** Re-put every stored record not refreshed within the interval (Kademlia's republish). */
  async republish (): Promise<number> {
    let count = 0
    for await (const { record } of this.storedRecords()) {
      if (!this.running) break
      // an expired record is gone, even if the sweep has not deleted it yet
      if (this.expired(record) || Date.now() - record.timeReceived.getTime() < this.republishIntervalMs) continue
      const key = bytesToString(record.key)
      try {
        await this.put(key, record.value)
        count++
      } catch (err: any) {
        log('could not republish %s: %s', key, err.message)
      }
    }
    if (count > 0) log('republished %d records', count)
    return count
  }

  private async * storedRecords (): AsyncGenerator<{ key: Key, record: Libp2pRecord }> {
    for await (const { key, value } of this.components.datastore.query({ prefix: DHT_RECORD_PREFIX })) {
      try {
        yield { key, record: Libp2pRecord.deserialize(value) }
      } catch {
        await this.components.datastore.delete(key)
      }
    }
  }

  private async readStored<P> (dsKey: Key, key: string): Promise<VerifiedRecord<P> | undefined> {
    let raw: Uint8Array
    try {
      raw = await this.components.datastore.get(dsKey)
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

  private signal (options: AbortOptions): AbortSignal {
    const timeout = AbortSignal.timeout(this.queryTimeoutMs)
    return options.signal != null ? AbortSignal.any([options.signal, timeout]) : timeout
  }
}

export type { Namespace }
