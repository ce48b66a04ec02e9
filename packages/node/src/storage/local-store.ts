/**
 * The peer's own local store for messaging (outbox, history cache, seen envelope ids):
 * a LevelDB of its own under the data directory, apart from the DHT's datastore, so
 * that nothing here is ever served to other peers. Values are CBOR.
 *
 * Writes and existence checks made in the same tick go to LevelDB together (DataLoader
 * collects them): the writes as one batch, the checks as one `getMany`. A mailbox read
 * handles 16 messages at a time, each a check and a write of its history entry: 1,000
 * messages were 2,000 LevelDB calls, 120 ms of the read's CPU (a profile of
 * `npm run bench:messages`). Each caller's writes stay atomic (the batch holds them all).
 */
import { join } from 'node:path'
import * as cborg from 'cborg'
import DataLoader from 'dataloader'
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

type WriteOp = { type: 'put', key: string, value: Uint8Array } | { type: 'del', key: string }

export class LocalStore {
  private readonly ds: LevelDatastore
  private readonly log: Logger
  /** Each caller's writes (in order), committed with those of its tick in one batch. */
  private readonly writes: DataLoader<WriteOp[], void>
  /** Keys checked for existence in one tick, read with one getMany. */
  private readonly checks: DataLoader<string, boolean>

  /** The store lives in `<dataDir>/messaging`. */
  constructor (dataDir: string, components: LocalStoreComponents = {}) {
    this.ds = new LevelDatastore(join(dataDir, LOCAL_STORE_DIR))
    this.log = (components.logger ?? defaultLogger()).forComponent('conf-chat:storage:local-store')
    this.writes = new DataLoader(async groups => {
      const batch = this.ds.batch()
      for (const ops of groups) {
        for (const op of ops) {
          if (op.type === 'put') batch.put(new Key(op.key, false), op.value)
          else batch.delete(new Key(op.key, false))
        }
      }
      await batch.commit()
      return groups.map(() => undefined)
    }, { cache: false })
    this.checks = new DataLoader(async keys => (await this.ds.db.getMany([...keys])).map(value => value != null), { cache: false })
  }

  async open (): Promise<void> { await this.ds.open() }
  async close (): Promise<void> { await this.ds.close() }

  /** Written to the LevelDB log before it resolves: it survives a kill -9 of the process. */
  async put (key: string, value: unknown, options: AbortOptions = {}): Promise<void> {
    await this.writeMany([[key, value]], [], options)
  }

  /** Several puts in one atomic LevelDB batch. */
  async putMany (entries: Array<[string, unknown]>, options: AbortOptions = {}): Promise<void> {
    await this.writeMany(entries, [], options)
  }

  /** Puts and deletes in one atomic LevelDB batch (a key in both: deleted). */
  async writeMany (puts: Array<[string, unknown]>, deletes: string[], options: AbortOptions = {}): Promise<void> {
    options.signal?.throwIfAborted()
    const ops: WriteOp[] = puts.map(([key, value]) => ({ type: 'put', key, value: cborg.encode(value) }))
    for (const key of deletes) ops.push({ type: 'del', key })
    await this.writes.load(ops)
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
    options.signal?.throwIfAborted()
    return await this.checks.load(key)
  }

  async delete (key: string, options: AbortOptions = {}): Promise<void> {
    await this.writeMany([], [key], options)
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
