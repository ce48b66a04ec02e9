/**
 * The peer's own local store for messaging (outbox, history cache, seen envelope ids):
 * a LevelDB of its own under the data directory, apart from the DHT's datastore, so
 * that nothing here is ever served to other peers. Values are CBOR.
 */
import { join } from 'node:path'
import * as cborg from 'cborg'
import { LevelDatastore } from 'datastore-level'
import { Key } from 'interface-datastore'
import { defaultLogger } from '@libp2p/logger'
import type { AbortOptions, ComponentLogger, Logger } from '@libp2p/interface'

/** The local store's directory under the data directory. */
export const LOCAL_STORE_DIR = 'messaging'

export interface LocalStoreComponents {
  /** @default defaultLogger() */
  logger?: ComponentLogger
}

export class LocalStore {
  private readonly ds: LevelDatastore
  private readonly log: Logger

  /** The store lives in `<dataDir>/messaging`. */
  constructor (dataDir: string, components: LocalStoreComponents = {}) {
    this.ds = new LevelDatastore(join(dataDir, LOCAL_STORE_DIR))
    this.log = (components.logger ?? defaultLogger()).forComponent('conf-chat:storage:local-store')
  }

  async open (): Promise<void> { await this.ds.open() }
  async close (): Promise<void> { await this.ds.close() }

  /** Written to the LevelDB log before it resolves: it survives a kill -9 of the process. */
  async put (key: string, value: unknown, options: AbortOptions = {}): Promise<void> {
    await this.ds.put(new Key(key, false), cborg.encode(value), options)
  }

  /** Several puts in one atomic LevelDB batch. */
  async putMany (entries: Array<[string, unknown]>, options: AbortOptions = {}): Promise<void> {
    const batch = this.ds.batch()
    for (const [key, value] of entries) batch.put(new Key(key, false), cborg.encode(value))
    await batch.commit(options)
  }

  /** Puts and deletes in one atomic LevelDB batch (a key in both: deleted). */
  async writeMany (puts: Array<[string, unknown]>, deletes: string[], options: AbortOptions = {}): Promise<void> {
    const batch = this.ds.batch()
    for (const [key, value] of puts) batch.put(new Key(key, false), cborg.encode(value))
    for (const key of deletes) batch.delete(new Key(key, false))
    await batch.commit(options)
  }

  /** The value under `key`, or undefined if there is none or it cannot be read. */
  async get<T = unknown> (key: string, options: AbortOptions = {}): Promise<T | undefined> {
    try {
      return cborg.decode(await this.ds.get(new Key(key, false), options)) as T
    } catch (err: any) {
      if (err.name !== 'NotFoundError') this.log('could not read %s: %s', key, err.message)
      return undefined
    }
  }

  async has (key: string, options: AbortOptions = {}): Promise<boolean> {
    return await this.ds.has(new Key(key, false), options)
  }

  async delete (key: string, options: AbortOptions = {}): Promise<void> {
    await this.ds.delete(new Key(key, false), options)
  }

  /** Entries under `prefix` (which should end with '/'), in key order; unreadable ones are skipped. */
  async * entries<T = unknown> (prefix: string, options: AbortOptions = {}): AsyncGenerator<{ key: string, value: T }> {
    for await (const { key, value } of this.ds.query({ prefix }, options)) {
      let decoded: T
      try {
        decoded = cborg.decode(value) as T
      } catch {
        this.log('skipped an unreadable entry %s', key.toString())
        continue
      }
      yield { key: key.toString(), value: decoded }
    }
  }

  /** Keys under `prefix`, in key order. */
  async * keys (prefix: string, options: AbortOptions = {}): AsyncGenerator<string> {
    for await (const key of this.ds.queryKeys({ prefix }, options)) yield key.toString()
  }
}
