import { LevelDatastore } from 'datastore-level'
import { NotFoundError, type AbortOptions, type ComponentLogger, type Logger } from '@libp2p/interface'
import { defaultLogger } from '@libp2p/logger'
import { Key, type Batch, type Pair, type Query, type KeyQuery } from 'interface-datastore'

/** Where kad-dht keeps the records it stores (its default `datastorePrefix` + `/record`). */
export const DHT_RECORD_PREFIX = '/dht/record'

export type RecordWriteGuard = (key: Key, value: Uint8Array) => Promise<void>

/** Tells whether a stored DHT record (kad-dht's serialized form) has expired. */
export type RecordExpiry = (stored: Uint8Array) => boolean

/** Where libp2p's peer store keeps one entry per known peer. */
export const PEER_STORE_PREFIX = '/peers/'

/** How long peer store changes may wait in memory before they are written. */
export const PEER_STORE_FLUSH_MS = 5_000

/** Peer store entries kept in memory once written (changed ones are always kept). */
export const PEER_STORE_MEMORY_ENTRIES = 10_000

export interface ChatDatastoreComponents {
  /** @default defaultLogger() */
  logger?: ComponentLogger
}

/** LevelDB's options (see datastore-level). */
export type ChatDatastoreInit = NonNullable<ConstructorParameters<typeof LevelDatastore>[1]>

const isPeerKey = (id: string): boolean => id.startsWith(PEER_STORE_PREFIX)
const coversPeers = (prefix = ''): boolean => prefix.startsWith(PEER_STORE_PREFIX) || PEER_STORE_PREFIX.startsWith(prefix)

/**
 * The peer's on-disk datastore (LevelDB).
 *
 * kad-dht's validators see only the incoming value, so the stateful half of validation
 * (first come first served, sequence numbers) runs here, where every stored DHT record
 * is written: an inbound PUT_VALUE, a correction, or our own put. A refused write
 * throws, which kad-dht turns into an error for the sender. Reads hide expired records,
 * so that kad-dht never serves a record past our TTL (its own check is a hard-coded 48 h).
 *
 * libp2p's peer store reads and rewrites a peer's entry for every peer named in every
 * DHT response: on LevelDB that was most of the CPU of a put or get. Its entries live in
 * memory and reach the disk in batches (write-behind) every PEER_STORE_FLUSH_MS and on
 * close; a crash forgets at most that much of whom we met, never a record.
 *
 * It also counts the bytes held under chosen prefixes (`countHeld`: DHT records and set
 * items, what the peer holds for others) through every write, for the storage budget.
 */
export class ChatDatastore extends LevelDatastore {
  /** Checks every write of a DHT record (set by the record store). */
  recordGuard?: RecordWriteGuard
  /** Hides expired DHT records from reads (set by the record store). */
  recordExpired?: RecordExpiry
  /** The last guarded write per key: writes of one key run one at a time. */
  private readonly pendingWrites = new Map<string, Promise<unknown>>()
  /** Peer store entries by key, null = deleted; authoritative for the keys it holds. */
  private readonly peerRecords = new Map<string, Uint8Array | null>()
  /** Peer store keys changed in memory and not yet written. */
  private readonly dirtyPeers = new Set<string>()
  private peerFlushTimer?: NodeJS.Timeout
  /** The last flush: flushes run one after the other, so the disk sees changes in order. */
  private peerFlush: Promise<void> = Promise.resolve()
  private readonly log: Logger
  /** The prefixes counted by `countHeld` and the bytes of their values now. */
  private held?: { prefixes: string[], bytes: number }
  /** Told the held bytes after every write that changed them. */
  onHeldChange?: (bytes: number) => void

  /** `path`: the LevelDB directory. */
  constructor (path: string, components: ChatDatastoreComponents = {}, init: ChatDatastoreInit = {}) {
    super(path, init)
    this.log = (components.logger ?? defaultLogger()).forComponent('conf-chat:storage:datastore')
  }

  override async put (key: Key, value: Uint8Array, options?: AbortOptions): Promise<Key> {
    const guard = this.recordGuard
    const id = key.toString()
    if (isPeerKey(id)) {
      this.setPeerRecord(id, value)
      return key
    }
    if (guard == null || !id.startsWith(DHT_RECORD_PREFIX + '/')) return await this.putCounted(id, key, value, options)
    // check-then-write must not interleave: two claims of one free name arriving at once
    // would both pass the guard and the later write would silently replace the first
    return await this.inTurn(id, async () => {
      await guard(key, value)
      return await this.putCounted(id, key, value, options)
    })
  }

  /** Run `fn` after every earlier write or delete of the DHT record `id` (one at a time, in order). */
  private async inTurn<T> (id: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.pendingWrites.get(id) ?? Promise.resolve()
    const write = previous.catch(() => {}).then(fn)
    this.pendingWrites.set(id, write)
    try {
      return await write
    } finally {
      if (this.pendingWrites.get(id) === write) this.pendingWrites.delete(id)
    }
  }

  override async get (key: Key, options?: AbortOptions): Promise<Uint8Array> {
    const id = key.toString()
    if (isPeerKey(id)) {
      const value = await this.getPeerRecord(id, key, options)
      if (value == null) throw new NotFoundError('Not Found')
      return value
    }
    const value = await super.get(key, options)
    if (this.recordExpired != null && id.startsWith(DHT_RECORD_PREFIX + '/') && this.recordExpired(value)) {
      throw new NotFoundError('record expired')
    }
    return value
  }

  override async has (key: Key, options?: AbortOptions): Promise<boolean> {
    const id = key.toString()
    if (isPeerKey(id)) return (await this.getPeerRecord(id, key, options)) != null
    return await super.has(key, options)
  }

  override async delete (key: Key, options?: AbortOptions): Promise<void> {
    const id = key.toString()
    if (isPeerKey(id)) {
      this.setPeerRecord(id, null)
      return
    }
    if (!this.isHeld(id)) return await super.delete(key, options)
    // in turn with the record's writes: two deletes (the sweeper, an eviction) or a delete
    // and a put reading the old size at once would count it twice
    const remove = async (): Promise<void> => {
      const before = await this.sizeOf(key, options)
      await super.delete(key, options)
      this.addHeld(-before)
    }
    if (id.startsWith(DHT_RECORD_PREFIX + '/')) await this.inTurn(id, remove)
    else await remove()
  }

  override batch (): Batch {
    const inner = super.batch()
    const peerOps: Array<[string, Uint8Array | null]> = []
    /** The size each counted key will have after the batch (0: deleted). */
    const heldOps = new Map<string, { key: Key, size: number }>()
    const track = (key: Key, size: number): void => { if (this.isHeld(key.toString())) heldOps.set(key.toString(), { key, size }) }
    return {
      put: (key, value) => { if (isPeerKey(key.toString())) peerOps.push([key.toString(), value]); else { inner.put(key, value); track(key, value.length) } },
      delete: (key) => { if (isPeerKey(key.toString())) peerOps.push([key.toString(), null]); else { inner.delete(key); track(key, 0) } },
      commit: async (options) => {
        for (const [id, value] of peerOps) this.setPeerRecord(id, value)
        let delta = 0
        for (const { key, size } of heldOps.values()) delta += size - await this.sizeOf(key, options)
        await inner.commit(options)
        if (delta !== 0) this.addHeld(delta)
      }
    }
  }

  override async * query (q: Query, options?: AbortOptions): AsyncGenerator<Pair> {
    if (coversPeers(q.prefix)) await this.flushPeers()
    yield * super.query(q, options)
  }

  override async * queryKeys (q: KeyQuery, options?: AbortOptions): AsyncGenerator<Key> {
    if (coversPeers(q.prefix)) await this.flushPeers()
    yield * super.queryKeys(q, options)
  }

  /**
   * Count the bytes of every value under `prefixes` (call before anything else writes),
   * and from now on keep the count through every write. Resolves to the count.
   */
  async countHeld (prefixes: string[], options?: AbortOptions): Promise<number> {
    let bytes = 0
    for (const prefix of prefixes) {
      for await (const { value } of super.query({ prefix }, options)) bytes += value.length
    }
    this.held = { prefixes, bytes }
    return bytes
  }

  /** Bytes held under the prefixes given to `countHeld` (undefined before it ran). */
  get heldBytes (): number | undefined {
    return this.held?.bytes
  }

  private isHeld (id: string): boolean {
    return this.held?.prefixes.some(p => id.startsWith(p)) === true
  }

  /** The stored value's length, 0 if there is none. */
  private async sizeOf (key: Key, options?: AbortOptions): Promise<number> {
    try {
      return (await super.get(key, options)).length
    } catch (err: any) {
      if (err?.name === 'NotFoundError') return 0
      throw err
    }
  }

  private addHeld (delta: number): void {
    if (this.held == null) return
    this.held.bytes += delta
    this.onHeldChange?.(this.held.bytes)
  }

  private async putCounted (id: string, key: Key, value: Uint8Array, options?: AbortOptions): Promise<Key> {
    if (!this.isHeld(id)) return await super.put(key, value, options)
    const before = await this.sizeOf(key, options)
    const stored = await super.put(key, value, options)
    this.addHeld(value.length - before)
    return stored
  }

  override async close (): Promise<void> {
    await this.flushPeers()
    this.peerRecords.clear()
    await super.close()
  }

  /** Write the peer store changes held in memory to disk, in one batch. */
  async flushPeers (): Promise<void> {
    clearTimeout(this.peerFlushTimer)
    this.peerFlushTimer = undefined
    this.peerFlush = this.peerFlush.catch(() => {}).then(async () => {
      if (this.dirtyPeers.size === 0) return
      const batch = super.batch()
      for (const id of this.dirtyPeers) {
        const value = this.peerRecords.get(id)
        if (value == null) batch.delete(new Key(id, false))
        else batch.put(new Key(id, false), value)
      }
      this.dirtyPeers.clear()
      await batch.commit()
    })
    await this.peerFlush
  }

  private async getPeerRecord (id: string, key: Key, options?: AbortOptions): Promise<Uint8Array | null> {
    const known = this.peerRecords.get(id)
    if (known !== undefined) return known
    let stored: Uint8Array | null = null
    try {
      stored = await super.get(key, options)
    } catch (err: any) {
      if (err.name !== 'NotFoundError') throw err
    }
    // a write while we read is newer than what the disk had: it wins
    if (!this.peerRecords.has(id)) this.peerRecords.set(id, stored)
    return this.peerRecords.get(id) ?? null
  }

  private setPeerRecord (id: string, value: Uint8Array | null): void {
    this.peerRecords.set(id, value)
    this.dirtyPeers.add(id)
    this.peerFlushTimer ??= setTimeout(() => {
      this.flushPeers().catch(err => { this.log.error('could not write the peer store: %e', err) })
    }, PEER_STORE_FLUSH_MS).unref()
    if (this.peerRecords.size > PEER_STORE_MEMORY_ENTRIES) {
      // forget written entries, oldest first: they are on disk
      for (const old of this.peerRecords.keys()) {
        if (this.peerRecords.size <= PEER_STORE_MEMORY_ENTRIES) break
        if (!this.dirtyPeers.has(old)) this.peerRecords.delete(old)
      }
    }
  }
}
