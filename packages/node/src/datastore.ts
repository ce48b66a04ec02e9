import { LevelDatastore } from 'datastore-level'
import { NotFoundError, type AbortOptions } from '@libp2p/interface'
import type { Key } from 'interface-datastore'

/** Where kad-dht keeps the records it stores (its default `datastorePrefix` + `/record`). */
export const DHT_RECORD_PREFIX = '/dht/record'

export type RecordWriteGuard = (key: Key, value: Uint8Array) => Promise<void>

/** Tells whether a stored DHT record (kad-dht's serialized form) has expired. */
export type RecordExpiry = (stored: Uint8Array) => boolean

/**
 * The peer's on-disk datastore (LevelDB). kad-dht's validators see only the incoming
 * value, so the stateful half of validation (first come first served, sequence
 * numbers) runs here, where every stored DHT record is written: an inbound PUT_VALUE, a
 * correction, or our own put. A refused write throws, which kad-dht turns into an
 * error for the sender. Reads hide expired records, so that kad-dht never serves a
 * record past our TTL (its own check is a hard-coded 48 h).
 */
export class ChatDatastore extends LevelDatastore {
  recordGuard?: RecordWriteGuard
  recordExpired?: RecordExpiry
  /** The last guarded write per key: writes of one key run one at a time. */
  private readonly pendingWrites = new Map<string, Promise<unknown>>()

  override async put (key: Key, value: Uint8Array, options?: AbortOptions): Promise<Key> {
    const guard = this.recordGuard
    const id = key.toString()
    if (guard == null || !id.startsWith(DHT_RECORD_PREFIX + '/')) return await super.put(key, value, options)
    // check-then-write must not interleave: two claims of one free name arriving at once
    // would both pass the guard and the later write would silently replace the first
    const previous = this.pendingWrites.get(id) ?? Promise.resolve()
    const write = previous.catch(() => {}).then(async () => {
      await guard(key, value)
      return await super.put(key, value, options)
    })
    this.pendingWrites.set(id, write)
    try {
      return await write
    } finally {
      if (this.pendingWrites.get(id) === write) this.pendingWrites.delete(id)
    }
  }

  override async get (key: Key, options?: AbortOptions): Promise<Uint8Array> {
    const value = await super.get(key, options)
    if (this.recordExpired != null && key.toString().startsWith(DHT_RECORD_PREFIX + '/') && this.recordExpired(value)) {
      throw new NotFoundError('record expired')
    }
    return value
  }
}
