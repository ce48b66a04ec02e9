/**
 * This peer's copy of an account's history (History keeps the DHT pages), in the peer's
 * messaging store. Entries and marks are encrypted under a key only the owner can derive;
 * the keys hold the account's key id, conversation ids (keyed hashes) and message ids:
 *
 * - `/h/<keyId>/<conv>/<sent time>.<id>`: the entries, in the order they were sent;
 * - `/hi/<keyId>/<conv>/<id>`: the conversation's index (is this id stored here?);
 * - `/hu/<keyId>/<id>`: "kept unshown", a received message not shown yet (if the process
 *   is killed first, the next mailbox read here shows it);
 * - `/hw/<keyId>/<id>`: "waiting for its write", an entry not yet in a DHT page (written
 *   at the account's next login on this peer if the session ends first).
 */
import type { AbortOptions, Logger } from '@libp2p/interface'
import { z } from 'zod'
import { encryptLocal, decryptLocal, historyEntrySchema, type HistoryEntry } from '@conf-chat/protocol'
import type { LocalStore } from '../storage/index.js'

/**
 * A message read from the mailbox and kept here, whose showing waits for the end of the
 * read (a read's messages are shown together): kept with the entry until `shown`, so that
 * a process killed in between shows it at its next read (the mailbox item is then known
 * here, and would never be shown again). It goes to the DHT pages only once shown: the
 * pages tell the account's other peers what was shown.
 */
export interface UnshownMessage {
  entry: HistoryEntry
  /** A conference message's conference. */
  conference?: { id: string, name: string }
}

/** An entry and its conversation (what a mark holds). */
export interface MarkedEntry {
  conv: string
  entry: HistoryEntry
}

/** What `store` marks an entry with: kept unshown, waiting for its write, or none (it came from a DHT page). */
export type LocalMark = Omit<UnshownMessage, 'entry'> | 'to write' | 'in a page'

/** A mark "waiting for its write to the pages": the entry and its conversation. */
const waitingSchema = z.object({ conv: z.string(), entry: historyEntrySchema })

/** A mark "kept unshown": the same, with a conference message's conference. */
const unshownSchema = waitingSchema.extend({
  conference: z.object({ id: z.string(), name: z.string() }).optional()
})

/** Oldest first: by sent time, then id. */
export function compareEntries (a: Pick<HistoryEntry, 'sentAt' | 'id'>, b: Pick<HistoryEntry, 'sentAt' | 'id'>): number {
  return a.sentAt - b.sentAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
}

const sortKey = (e: HistoryEntry): string => `${e.sentAt.toString(36).padStart(9, '0')}.${e.id}`

export class LocalHistory {
  private readonly local: LocalStore
  private readonly keyId: string
  private readonly key: Uint8Array
  private readonly log: Logger
  /** Entries with a mark "waiting for its write", by id. */
  private readonly waitingIds = new Set<string>()

  /** The copy of the account `keyId`, encrypted under `key` (the owner's local key). */
  constructor (local: LocalStore, keyId: string, key: Uint8Array, log: Logger) {
    this.local = local
    this.keyId = keyId
    this.key = key
    this.log = log
  }

  /** Whether the entry `id` of the conversation is stored here. */
  async has (conv: string, id: string): Promise<boolean> {
    return await this.local.has(this.indexKey(conv, id))
  }

  /** Store the entry and its id in the conversation's index, with `mark` (one batch); 'to write' also notes the id as waiting. */
  async store (conv: string, entry: HistoryEntry, mark: LocalMark): Promise<void> {
    const puts: Array<[string, unknown]> = [
      [`/h/${this.keyId}/${conv}/${sortKey(entry)}`, encryptLocal(entry, this.key)],
      [this.indexKey(conv, entry.id), 1]
    ]
    if (mark === 'to write') puts.push(this.waitingMark({ conv, entry }))
    else if (mark !== 'in a page') puts.push([this.unshownKey(entry.id), encryptLocal({ ...mark, conv, entry }, this.key)])
    await this.local.putMany(puts)
    if (mark === 'to write') this.waitingIds.add(entry.id)
  }

  /**
   * The entry `id` stays here, but nothing says it is: no mark asks to show it or to
   * write it, and the index does not know it (a received message refused now is new to
   * the next read).
   */
  async disown (conv: string, id: string): Promise<void> {
    await this.local.writeMany([], [this.unshownKey(id), this.waitingKey(id), this.indexKey(conv, id)])
    this.waitingIds.delete(id)
  }

  /** The conversation's entries stored here, oldest first; an unreadable one is skipped. */
  async list (conv: string): Promise<HistoryEntry[]> {
    const entries: HistoryEntry[] = []
    for await (const { value } of this.local.entries<Uint8Array>(`/h/${this.keyId}/${conv}/`)) {
      try {
        entries.push(decryptLocal(value, this.key, historyEntrySchema))
      } catch (err: any) {
        this.log('skipped an unreadable local history entry: %s', err.message)
      }
    }
    return entries.sort(compareEntries)
  }

  /** The messages kept unshown. */
  async * unshown (options: AbortOptions = {}): AsyncGenerator<UnshownMessage & MarkedEntry> {
    yield * this.marks(this.unshownKey(''), unshownSchema, options)
  }

  /** Shown now: `shown`'s marks "kept unshown" become "waiting for its write" (one batch); `ids` lose theirs. */
  async markShown (shown: MarkedEntry[], ids: string[]): Promise<void> {
    await this.local.writeMany(shown.map(m => this.waitingMark(m)), ids.map(id => this.unshownKey(id)))
    for (const m of shown) this.waitingIds.add(m.entry.id)
  }

  /** The entries waiting for their write that this session does not know of yet (an earlier session's), noted as known from then on. */
  async * waitingSinceBefore (options: AbortOptions = {}): AsyncGenerator<MarkedEntry> {
    for await (const m of this.marks(this.waitingKey(''), waitingSchema, options)) {
      if (this.waitingIds.has(m.entry.id)) continue
      this.waitingIds.add(m.entry.id)
      yield m
    }
  }

  /** These entries are in a page in the DHT now: their marks "waiting for its write" go. */
  async written (ids: string[]): Promise<void> {
    const marked = ids.filter(id => this.waitingIds.has(id))
    if (marked.length === 0) return
    await this.local.writeMany([], marked.map(id => this.waitingKey(id)))
    for (const id of marked) this.waitingIds.delete(id)
  }

  /** The marks under `prefix` (unshown, or waiting for their write); an unreadable one is dropped. */
  private async * marks<T> (prefix: string, schema: z.ZodType<T>, options: AbortOptions): AsyncGenerator<T> {
    for await (const { key, value } of this.local.entries<Uint8Array>(prefix, options)) {
      let mark: T
      try {
        mark = decryptLocal(value, this.key, schema)
      } catch (err: any) {
        this.log('dropped an unreadable history mark %s: %s', key, err.message)
        await this.local.delete(key)
        continue
      }
      yield mark
    }
  }

  private indexKey (conv: string, id: string): string {
    return `/hi/${this.keyId}/${conv}/${id}`
  }

  private waitingMark (m: MarkedEntry): [string, unknown] {
    return [this.waitingKey(m.entry.id), encryptLocal({ conv: m.conv, entry: m.entry }, this.key)]
  }

  private waitingKey (id: string): string {
    return `/hw/${this.keyId}/${id}`
  }

  private unshownKey (id: string): string {
    return `/hu/${this.keyId}/${id}`
  }
}
