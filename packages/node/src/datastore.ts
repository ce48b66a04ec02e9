import { LevelDatastore } from 'datastore-level'
import type { AbortOptions } from '@libp2p/interface'
import type { Key } from 'interface-datastore'

/** Where kad-dht keeps the records it stores (its default `datastorePrefix` + `/record`). */
export const DHT_RECORD_PREFIX = '/dht/record'

export type RecordWriteGuard = (key: Key, value: Uint8Array) => Promise<void>

/**
 * The peer's on-disk datastore (LevelDB). kad-dht's validators see only the incoming
 * value, so the stateful half of validation (first come first served, sequence
 * numbers) runs here, where every stored DHT record is written: an inbound PUT_VALUE, a
 * correction, or our own put. A refused write throws, which kad-dht turns into an
 * error for the sender.
 */
export class ChatDatastore extends LevelDatastore {
  recordGuard?: RecordWriteGuard

  override async put (key: Key, value: Uint8Array, options?: AbortOptions): Promise<Key> {
    if (this.recordGuard != null && key.toString().startsWith(DHT_RECORD_PREFIX + '/')) {
      await this.recordGuard(key, value)
    }
    return await super.put(key, value, options)
  }
}
