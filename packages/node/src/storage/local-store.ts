/**
 * The peer's own local store for messaging (outbox, history cache, seen envelope ids):
 * a LevelDB of its own under the data directory, apart from the DHT's datastore, so
 * that nothing here is ever served to other peers. Values are CBOR.
 */
import { join } from 'node:path'
import * as cborg from 'cborg'
import { LevelDatastore } from 'datastore-level'
import { Key } from 'interface-datastore'
import { logger } from '@libp2p/logger'

const log = logger('conf-chat:local-store')

export class LocalStore {
  private readonly ds: LevelDatastore

  constructor (dataDir: string) {
    this.ds = new LevelDatastore(join(dataDir, 'messaging'))
  }

  async open (): Promise<void> { await this.ds.open() }
  async close (): Promise<void> { await this.ds.close() }

  /** Written to the LevelDB log before it resolves: it survives a kill -9 of the process. */
  async put (key: string, value: unknown): Promise<void> {
    await this.ds.put(new Key(key, false), cborg.encode(value))
  }

  /** Several puts in one atomic LevelDB batch. */
  async putMany (entries: Array<[string, unknown]>): Promise<void> {
    const batch = this.ds.batch()
    for (const [key, value] of entries) batch.put(new Key(key, false), cborg.encode(value))
    await batch.commit()
  }

  async get<T = unknown> (key: string): Promise<T | undefined> {
    try {
      return cborg.decode(await this.ds.get(new Key(key, false))) as T
    } catch (err: any) {
      if (err.name !== 'NotFoundError') log('could not read %s: %s', key, err.message)
      return undefined
    }
  }

  async has (key: string): Promise<boolean> {
    return await this.ds.has(new Key(key, false))
  }

  async delete (key: string): Promise<void> {
    await this.ds.delete(new Key(key, false))
  }

  /** Entries under `prefix` (which should end with '/'), in key order; unreadable ones are skipped. */
  async * entries<T = unknown> (prefix: string): AsyncGenerator<{ key: string, value: T }> {
    for await (const { key, value } of this.ds.query({ prefix })) {
      let decoded: T
      try {
        decoded = cborg.decode(value) as T
      } catch {
        log('skipped an unreadable entry %s', key.toString())
        continue
      }
      yield { key: key.toString(), value: decoded }
    }
  }

  async * keys (prefix: string): AsyncGenerator<string> {
    for await (const key of this.ds.queryKeys({ prefix })) yield key.toString()
  }
}
