/**
 * How a holder keeps sets in its datastore. Under `/cc-sets`, a set is named by the hex
 * SHA-256 of its key (`h`):
 *
 *   /cc-sets/keys/<h>            the set key itself (UTF-8): which sets this peer holds
 *   /cc-sets/items/<h>/<id>      an item: CBOR { id, data, addedAt }
 *   /cc-sets/tombs/<h>/<id>      a tombstone: CBOR number, when it expires (ms)
 *   /cc-sets/removals/<h>/<rid>  a signed removal: CBOR { ids, auth, expiresAt }
 *
 * Writes to one set run one at a time (`withSetLock`), so "keep the first item under an
 * id" holds; what a set holds (items and bytes, in all and per writer) is counted in one
 * scan when a write first needs it and kept up to date by the writes and deletions after
 * it. The iterators yield
 * in key order, as LevelDB does (holders page through a set by id): a datastore that
 * does not keep its keys in order breaks paging.
 */
import { Key } from 'interface-datastore'
import * as cborg from 'cborg'
import { z } from 'zod'
import { fromString as bytesFromString, toString as bytesToString } from 'uint8arrays'
import { setKeyHash, setItemSchema, setRemovalSchema, type SetItem, type SetRemoval } from '@conf-chat/protocol'
import { SETS_ROOT, SET_ITEMS_PREFIX } from './constants.js'
import type { AbortOptions } from '@libp2p/interface'
import type { Datastore } from 'interface-datastore'

const storedRemovalSchema = setRemovalSchema.extend({ expiresAt: z.number() })

/** A signed removal as a holder keeps it: until every item it could name has expired. */
export interface StoredRemoval extends SetRemoval {
  expiresAt: number
}

const indexKey = (h: string): Key => new Key(`${SETS_ROOT}/keys/${h}`, false)
const itemsPrefix = (h: string): string => `${SET_ITEMS_PREFIX}${h}/`
const tombsPrefix = (h: string): string => `${SETS_ROOT}/tombs/${h}/`
const removalsPrefix = (h: string): string => `${SETS_ROOT}/removals/${h}/`
const under = (prefix: string, name: string): Key => new Key(prefix + name, false)

/** What one writer has in a set. */
export interface Usage {
  items: number
  /** Bytes of item data. */
  bytes: number
}

/** What a set holds: in all, and per writer (as the namespace's `writerOf` names them). */
export interface SetUsage extends Usage {
  writers: Map<string, Usage>
  /** How the writers were told apart. */
  writerOf?: WriterOf
}

/** Who wrote an item, or undefined when the namespace does not tell. */
export type WriterOf = (item: SetItem) => string | undefined

export interface SetLayoutComponents {
  datastore: Pick<Datastore, 'get' | 'has' | 'delete' | 'batch' | 'query' | 'queryKeys'>
}

export class SetLayout {
  private readonly datastore: SetLayoutComponents['datastore']
  private readonly locks = new Map<string, Promise<void>>()
  private readonly usages = new Map<string, SetUsage>()

  constructor (components: SetLayoutComponents) {
    this.datastore = components.datastore
  }

  /** Run `fn` when no other write to the set runs; writes to one set queue up in order. */
  async withSetLock<T> (setKey: string, fn: () => Promise<T>): Promise<T> {
    const h = setKeyHash(setKey)
    const previous = this.locks.get(h) ?? Promise.resolve()
    let release!: () => void
    const gate = new Promise<void>(resolve => { release = resolve })
    const current = previous.then(async () => { await gate })
    this.locks.set(h, current)
    await previous
    try {
      return await fn()
    } finally {
      release()
      if (this.locks.get(h) === current) this.locks.delete(h)
    }
  }

  /**
   * What the set has on disk (items expired or not), in all and per writer. The writers
   * are counted with the `writerOf` of the first call after a deletion: give the same one
   * for a set every time.
   */
  async usage (setKey: string, writerOf: WriterOf | undefined, options: AbortOptions = {}): Promise<SetUsage> {
    const h = setKeyHash(setKey)
    const cached = this.usages.get(h)
    if (cached != null) return cached
    const usage: SetUsage = { items: 0, bytes: 0, writers: new Map(), writerOf }
    for await (const { item } of this.items(setKey, options)) {
      if (item != null) count(usage, item, 1)
      else usage.items++
    }
    this.usages.set(h, usage)
    return usage
  }

  /** The item under `id`, or undefined if the set has none (or it is unreadable). */
  async item (setKey: string, id: string, options: AbortOptions = {}): Promise<SetItem | undefined> {
    return decodeStored(await this.read(under(itemsPrefix(setKeyHash(setKey)), id), options), setItemSchema)
  }

  async hasItem (setKey: string, id: string, options: AbortOptions = {}): Promise<boolean> {
    return await this.datastore.has(under(itemsPrefix(setKeyHash(setKey)), id), options)
  }

  /**
   * Every item of the set as stored, in id order, read in one scan (keys and values
   * together: no read per item); with `after`, only those whose id sorts after it (the
   * others are skipped undecoded); with `idPrefix`, only those whose id starts with it.
   * `item` is undefined when unreadable.
   */
  async * items (setKey: string, options: AbortOptions & { after?: string, idPrefix?: string } = {}): AsyncGenerator<{ key: Key, id: string, item?: SetItem }> {
    const prefix = itemsPrefix(setKeyHash(setKey))
    for await (const { key, value } of this.datastore.query({ prefix: prefix + (options.idPrefix ?? '') }, options)) {
      const id = key.toString().slice(prefix.length)
      if (options.after != null && id <= options.after) continue
      yield { key, id, item: decodeStored(value, setItemSchema) }
    }
  }

  /** The ids of the set's items (expired or not), in id order, without reading the items. */
  async * itemIds (setKey: string, options: AbortOptions = {}): AsyncGenerator<string> {
    const prefix = itemsPrefix(setKeyHash(setKey))
    for await (const key of this.datastore.queryKeys({ prefix }, options)) yield key.toString().slice(prefix.length)
  }

  /** When the tombstone of `id` expires, or undefined if the set has none. */
  async tombstone (setKey: string, id: string, options: AbortOptions = {}): Promise<number | undefined> {
    const expiresAt = decodeStored(await this.read(under(tombsPrefix(setKeyHash(setKey)), id), options))
    return typeof expiresAt === 'number' ? expiresAt : undefined
  }

  /** Every tombstone of the set: `expiresAt` is undefined when unreadable. */
  async * tombstones (setKey: string, options: AbortOptions = {}): AsyncGenerator<{ key: Key, expiresAt?: number }> {
    for await (const { key, value } of this.datastore.query({ prefix: tombsPrefix(setKeyHash(setKey)) }, options)) {
      const expiresAt = decodeStored(value)
      yield { key, expiresAt: typeof expiresAt === 'number' ? expiresAt : undefined }
    }
  }

  async hasRemoval (setKey: string, rid: string, options: AbortOptions = {}): Promise<boolean> {
    return await this.datastore.has(under(removalsPrefix(setKeyHash(setKey)), rid), options)
  }

  /** Every removal kept for the set, in removal-id order: `removal` is undefined when unreadable. */
  async * removals (setKey: string, options: AbortOptions = {}): AsyncGenerator<{ key: Key, rid: string, removal?: StoredRemoval }> {
    const prefix = removalsPrefix(setKeyHash(setKey))
    for await (const { key, value } of this.datastore.query({ prefix }, options)) {
      yield { key, rid: key.toString().slice(prefix.length), removal: decodeStored(value, storedRemovalSchema) }
    }
  }

  /** The keys of the sets this peer holds anything of (items, tombstones or removals). */
  async heldSets (options: AbortOptions = {}): Promise<string[]> {
    const keys: string[] = []
    for await (const { value } of this.datastore.query({ prefix: `${SETS_ROOT}/keys/` }, options)) keys.push(bytesToString(value))
    return keys
  }

  async holdsSet (setKey: string, options: AbortOptions = {}): Promise<boolean> {
    return await this.datastore.has(indexKey(setKeyHash(setKey)), options)
  }

  /** Store new items (call under the set's lock, after checking none is held or tombstoned). */
  async putItems (setKey: string, items: SetItem[], options: AbortOptions = {}): Promise<void> {
    if (items.length === 0) return
    const h = setKeyHash(setKey)
    const batch = this.datastore.batch()
    for (const item of items) batch.put(under(itemsPrefix(h), item.id), cborg.encode({ id: item.id, data: item.data, addedAt: item.addedAt }))
    batch.put(indexKey(h), bytesFromString(setKey))
    try {
      await batch.commit(options)
      const usage = this.usages.get(h)
      if (usage != null) for (const item of items) count(usage, item, 1)
    } catch (err) {
      this.usages.delete(h)
      throw err
    }
  }

  /**
   * Apply a verified removal (call under the set's lock): delete the items it names, keep
   * a tombstone for each until `removal.expiresAt` (or later, if one exists already) and
   * the removal itself. Resolves to how many items were deleted.
   */
  async putRemoval (setKey: string, rid: string, removal: StoredRemoval, options: AbortOptions = {}): Promise<number> {
    const h = setKeyHash(setKey)
    const batch = this.datastore.batch()
    const gone: SetItem[] = []
    for (const id of new Set(removal.ids)) {
      const item = await this.item(setKey, id, options)
      if (item != null) { batch.delete(under(itemsPrefix(h), id)); gone.push(item) }
      const previous = await this.tombstone(setKey, id, options) ?? 0
      batch.put(under(tombsPrefix(h), id), cborg.encode(Math.max(removal.expiresAt, previous)))
    }
    batch.put(under(removalsPrefix(h), rid), cborg.encode({ ids: removal.ids, auth: removal.auth, expiresAt: removal.expiresAt }))
    batch.put(indexKey(h), bytesFromString(setKey))
    try {
      await batch.commit(options)
      const usage = this.usages.get(h)
      if (usage != null) for (const item of gone) count(usage, item, -1)
    } catch (err) {
      this.usages.delete(h)
      throw err
    }
    return gone.length
  }

  /**
   * Delete one stored entry of the set (an item, tombstone or removal) found by the
   * iterators; for an item, give the item the iterator read (else the set is counted again
   * at the next write).
   */
  async deleteEntry (setKey: string, key: Key, options: AbortOptions & { item?: SetItem } = {}): Promise<void> {
    const h = setKeyHash(setKey)
    await this.datastore.delete(key, options)
    if (!key.toString().startsWith(itemsPrefix(h))) return
    const usage = this.usages.get(h)
    if (usage != null && options.item != null) count(usage, options.item, -1)
    else this.usages.delete(h)
  }

  /** Forget that this peer holds the set (call when nothing of it is left). */
  async forgetSet (setKey: string, options: AbortOptions = {}): Promise<void> {
    const h = setKeyHash(setKey)
    await this.datastore.delete(indexKey(h), options)
    this.usages.delete(h)
  }

  /** A stored value, or empty bytes (which decode as absent) when there is none. */
  private async read (key: Key, options: AbortOptions): Promise<Uint8Array> {
    try {
      return await this.datastore.get(key, options)
    } catch {
      return new Uint8Array()
    }
  }
}

/** Add `item` to the set's usage and to its writer's (`sign` 1), or take it away (-1). */
function count (usage: SetUsage, item: SetItem, sign: 1 | -1): void {
  usage.items += sign
  usage.bytes += sign * item.data.length
  const writer = usage.writerOf?.(item)
  if (writer == null) return
  const mine = usage.writers.get(writer) ?? { items: 0, bytes: 0 }
  mine.items += sign
  mine.bytes += sign * item.data.length
  if (mine.items <= 0) usage.writers.delete(writer)
  else usage.writers.set(writer, mine)
}

/** Our own stored values: decoded and, with a schema, checked; anything else reads as absent. */
function decodeStored (value: Uint8Array): unknown
function decodeStored<T> (value: Uint8Array, schema: { safeParse: (v: unknown) => { success: true, data: T } | { success: false } }): T | undefined
function decodeStored<T> (value: Uint8Array, schema?: { safeParse: (v: unknown) => { success: true, data: T } | { success: false } }): unknown {
  let raw: unknown
  try { raw = cborg.decode(value) } catch { return undefined }
  if (schema == null) return raw
  const parsed = schema.safeParse(raw)
  return parsed.success ? parsed.data : undefined
}
