/**
 * The records this peer stores, as kad-dht keeps them in the datastore: one entry per
 * key under DHT_RECORD_PREFIX, in kad-dht's serialized form with the time received.
 */
import { Libp2pRecord } from '@libp2p/record'
import { Key } from 'interface-datastore'
import { fromString as bytesFromString, toString as bytesToString } from 'uint8arrays'
import { signedLifetimeEnd } from '@conf-chat/protocol'
import { DHT_RECORD_PREFIX } from '../../storage/index.js'
import type { AbortOptions } from '@libp2p/interface'
import type { Datastore } from 'interface-datastore'

export interface StoredRecord {
  /** The datastore key. */
  key: Key
  record: Libp2pRecord
}

/** The datastore key kad-dht stores the record for DHT key `key` under. */
export function dsKeyFor (key: string): Key {
  return new Key(`${DHT_RECORD_PREFIX}/${bytesToString(bytesFromString(key), 'base32')}`, false)
}

/**
 * Whether `record` was received more than `ttlMs` before `now` (ms since the epoch), or
 * the lifetime its owner signed into it has ended.
 */
export function isExpiredAt (record: Libp2pRecord, ttlMs: number, now: number): boolean {
  return now - record.timeReceived.getTime() > ttlMs || (signedLifetimeEnd(bytesToString(record.key), record.value) ?? Infinity) <= now
}

/** Every stored record; an unreadable entry is deleted on the way. */
export async function * storedRecords (datastore: Pick<Datastore, 'query' | 'delete'>, options: AbortOptions = {}): AsyncGenerator<StoredRecord> {
  for await (const { key, value } of datastore.query({ prefix: DHT_RECORD_PREFIX }, options)) {
    try {
      yield { key, record: Libp2pRecord.deserialize(value) }
    } catch {
      await datastore.delete(key, options)
    }
  }
}
