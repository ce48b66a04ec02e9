/**
 * Conversation history of one account, readable by its owner only, from any peer.
 *
 * - Locally (this peer's messaging store, local-history.ts) every entry is kept encrypted
 *   under a key only the owner can derive, for speed: `history()` after the first read of a
 *   session needs no network.
 * - In the DHT, each conversation is a series of pages `/cc-history/<keyId>/<conv>/<n>`,
 *   each sealed to the owner and under HISTORY_PAGE_BYTES, so a long conversation never
 *   nears the record size limit. Only the last page is rewritten as it grows; the page
 *   count lives in the private state. Writes are batched: a conversation's new entries are
 *   written once it has been quiet for DEFAULT_HISTORY_FLUSH_MS, at the latest
 *   HISTORY_FLUSH_MAX_WAIT_MS after the first of them, and at logout. So a busy
 *   conversation costs a put every half minute, not one per message, and the writes come
 *   in its pauses, not while messages are being delivered: in a conference each message
 *   is a history write on every member's peer, and a DHT put (a lookup of the 20 closest
 *   peers, at 200 peers ~60 RPCs) costs the whole network CPU.
 * - An entry waiting for its write is marked as such in the local store until a page
 *   holding it is in the DHT: a process killed before the write writes it at the
 *   account's next login on this peer.
 * - `<conv>` is a keyed hash of the other side's key id: the DHT does not show who talks
 *   with whom.
 */
import type { AbortOptions, ComponentLogger, Logger } from '@libp2p/interface'
import {
  createSignedRecord, encodeSignedRecord, historyKey, sealForOwner, openForOwner, conversationId, ownerLocalKey,
  historyPageSchema, historyEntryBytes, HISTORY_PAGE_BYTES,
  type HistoryEntry, type SealedPayload, type AccountKeys
} from '@conf-chat/protocol'
import type { RecordStore } from '../network/index.js'
import type { LocalStore } from '../storage/index.js'
import type { PrivateStateStore } from '../account/index.js'
import { within, delay } from '../utils/index.js'
import { LocalHistory, type UnshownMessage } from './local-history.js'

export { compareEntries, type UnshownMessage } from './local-history.js'

/** How long a conversation must have been quiet before its new entries are written to the DHT. */
export const DEFAULT_HISTORY_FLUSH_MS = 5_000
/**
 * The longest an entry waits for its write while its conversation goes on: a conference
 * of 20 at 200 peers wrote its members' first pages 5 s into a burst of messages, and
 * the members showed the messages sent meanwhile 0.3-1.2 s late instead of 40 ms
 * (bench:scale). Half a minute keeps a busy conversation's later writes within
 * HOLDERS_REUSE_MS of each other (network/records/record-writer.ts), so they need no lookup.
 */
export const HISTORY_FLUSH_MAX_WAIT_MS = 30_000

/** History pages fetched at once when a conversation is first read on a peer. */
const PAGE_FETCH_CONCURRENCY = 8

/**
 * Rounds of reads a list gives a page the network could not tell about (a read that hit its
 * time limit, as when a dead peer is among the closest), and the pause before each further
 * round. Only the pages still unread are read again.
 */
export const HISTORY_READ_ROUNDS = 3
const HISTORY_RETRY_PAUSE_MS = 500

/**
 * Some pages of a conversation could not be read from the network now (after
 * HISTORY_READ_ROUNDS rounds): `entries` is what is known (this peer's copy and the pages
 * read), `unreadPages` how many pages are missing from it. The next list reads them again.
 */
export class IncompleteHistoryError<T = HistoryEntry> extends Error {
  override name = 'IncompleteHistoryError'
  readonly code = 'not-ready' as const
  constructor (readonly entries: T[], readonly unreadPages: number) {
    super(`${unreadPages} history page(s) could not be read from the network now: try again`)
  }
}

export interface HistoryInit {
  /** How long a conversation must be quiet before its new entries are written to the DHT. @default 5000 ms */
  historyFlushMs?: number
  /** The longest a new entry waits for that write. @default 30000 ms */
  historyFlushMaxWaitMs?: number
}

export interface HistoryComponents {
  records: Pick<RecordStore, 'get' | 'put'>
  local: LocalStore
  /** Where the number of pages of each conversation is kept. */
  state: Pick<PrivateStateStore, 'state' | 'update'>
  logger: ComponentLogger
}

export interface HistoryOwner {
  keyId: string
  keys: AccountKeys
}

interface Page {
  index: number
  entries: HistoryEntry[]
  ids: Set<string>
  bytes: number
  /** Sequence number of the version in the DHT (0: not there yet). */
  seq: number
  dirty: boolean
}

interface Conversation {
  id: string
  /** Entries not yet in a DHT page, oldest first. */
  pending: HistoryEntry[]
  /** The last page, once loaded or begun in this session. */
  tail?: Page
  /** The last page being loaded: callers at the same time share one read. */
  loadingTail?: Promise<Page>
  /** The ids of the page before the tail (for `has`): read once, by all callers at the same time. */
  previousIds?: Promise<Set<string>>
  /** Every DHT page was merged into the local store in this session. */
  synced: boolean
}

function newPage (index: number): Page {
  return { index, entries: [], ids: new Set(), bytes: 0, seq: 0, dirty: false }
}

export class History {
  private readonly records: HistoryComponents['records']
  /** This peer's copy: entries, index and marks. */
  private readonly here: LocalHistory
  private readonly owner: HistoryOwner
  private readonly state: HistoryComponents['state']
  private readonly log: Logger
  private readonly flushMs: number
  private readonly flushMaxWaitMs: number
  /** When the oldest entry not yet in a flush came (for HISTORY_FLUSH_MAX_WAIT_MS). */
  private firstUnflushedAt?: number
  private readonly conversations = new Map<string, Conversation>()
  /** Conversation ids by the other side's key id (an HMAC each: computed once a session). */
  private readonly conversationIds = new Map<string, string>()
  private flushTimer?: NodeJS.Timeout
  private flushing: Promise<boolean> = Promise.resolve(true)
  /** Entries appended (or found) as unshown: they go to the DHT pages once shown. */
  private readonly notShown = new Map<string, { conv: string, entry: HistoryEntry }>()
  /** Set when this session took over another peer's (see `tookOver`). */
  private handover?: Promise<void>
  private closed = false
  private closing = false

  constructor (components: HistoryComponents, owner: HistoryOwner, init: HistoryInit = {}) {
    this.records = components.records
    this.log = components.logger.forComponent('conf-chat:chat:history')
    this.state = components.state
    this.owner = owner
    this.flushMs = init.historyFlushMs ?? DEFAULT_HISTORY_FLUSH_MS
    this.flushMaxWaitMs = Math.max(this.flushMs, init.historyFlushMaxWaitMs ?? HISTORY_FLUSH_MAX_WAIT_MS)
    this.here = new LocalHistory(components.local, owner.keyId, ownerLocalKey(owner.keys), this.log)
  }

  /** The conversation with the account `otherKeyId`. */
  conversationOf (otherKeyId: string): string {
    let id = this.conversationIds.get(otherKeyId)
    if (id == null) {
      id = conversationId(this.owner.keys, otherKeyId)
      this.conversationIds.set(otherKeyId, id)
    }
    return id
  }

  /**
   * Record one message (sent or received): stored locally at once, in the DHT at the next
   * flush. `isNew`: the caller knows the id is new here (a message just sent). `unshown`:
   * kept as not shown yet, with the entry, until `shown` (see UnshownMessage). False when
   * the history is closing (a takeover or logout under way): the entry will not reach the
   * DHT pages, so a received message must not be shown (the account's next peer would
   * show it again); a message shown is always one the pages get.
   */
  async append (otherKeyId: string, entry: HistoryEntry, isNew = false, unshown?: Omit<UnshownMessage, 'entry'>): Promise<boolean> {
    const c = this.conversation(this.conversationOf(otherKeyId))
    if (!isNew && await this.here.has(c.id, entry.id)) return true
    if (this.closing) return false
    await this.here.store(c.id, entry, unshown ?? 'to write')
    if (this.closing) {
      // closed meanwhile: the entry stays on this peer, but no mark asks to show it again
      // or to write it to the pages (a message not shown must not be in them), and its id
      // is not known here: a received one, refused now, is new to the next read (`has`)
      await this.here.disown(c.id, entry.id)
      return false
    }
    if (unshown != null) {
      this.notShown.set(entry.id, { conv: c.id, entry })
      return true
    }
    c.pending.push(entry)
    this.scheduleFlush()
    return true
  }

  /** The messages appended as unshown and not marked `shown` since (a process killed in between). */
  async unshown (options: AbortOptions = {}): Promise<UnshownMessage[]> {
    const out: UnshownMessage[] = []
    for await (const { conv, ...message } of this.here.unshown(options)) {
      this.notShown.set(message.entry.id, { conv, entry: message.entry })
      out.push(message)
    }
    return out
  }

  /** These messages were shown: no longer kept as unshown, and on their way to the DHT pages. */
  async shown (ids: string[]): Promise<void> {
    if (ids.length === 0) return
    const kept = ids.flatMap(id => { const k = this.notShown.get(id); return k == null ? [] : [k] })
    await this.here.markShown(kept, ids)
    for (const k of kept) {
      this.notShown.delete(k.entry.id)
      this.conversation(k.conv).pending.push(k.entry)
    }
    this.scheduleFlush()
  }

  /**
   * The entries of an earlier session on this peer that never reached the DHT pages (the
   * process was killed, or the logout could not write them): written with the next flush.
   * Resolves how many there were.
   */
  async resumeWrites (options: AbortOptions = {}): Promise<number> {
    let n = 0
    for await (const { conv, entry } of this.here.waitingSinceBefore(options)) {
      this.conversation(conv).pending.push(entry)
      n++
    }
    if (n > 0) {
      this.log('%d history entries of an earlier session to write', n)
      this.scheduleFlush()
    }
    return n
  }

  /**
   * Whether this peer's copy of the conversation holds a message (a live message's check:
   * no network). In a session that took over the account's session on another peer (see
   * `tookOver`), that peer may have shown it: then also the last DHT pages, once it has
   * finished.
   */
  async knows (otherKeyId: string, id: string, options: AbortOptions = {}): Promise<boolean> {
    if (await this.here.has(this.conversationOf(otherKeyId), id)) return true
    if (this.handover == null) return false
    await this.handover
    return await this.has(otherKeyId, id, options)
  }

  /**
   * This session took over the account's session on another peer, which finishes (writes
   * what it showed to the DHT pages) by `handover`: last pages read before then are read
   * again, and live messages are checked against them too (a sender whose ack came late
   * sends the same message again, to this peer).
   */
  tookOver (handover: Promise<void>): void {
    this.handover = handover.then(() => {
      for (const c of this.conversations.values()) {
        if (c.tail?.dirty === true) continue
        c.tail = undefined
        c.previousIds = undefined
      }
    })
  }

  /**
   * Whether the conversation holds a message: this peer's copy first, then the last two
   * DHT pages (a message shown on another peer lands there once that peer's conversation
   * is quiet, HISTORY_FLUSH_MAX_WAIT_MS at most, or when its session ends).
   */
  async has (otherKeyId: string, id: string, options: AbortOptions = {}): Promise<boolean> {
    const c = this.conversation(this.conversationOf(otherKeyId))
    // every entry this session saw is in the local store: only older pages need the DHT
    if (await this.here.has(c.id, id)) return true
    const tail = await this.ensureTail(c, options)
    if (tail.ids.has(id)) return true
    if (tail.index === 0) return false
    // read once a session: a mailbox of a thousand messages must not mean a thousand reads
    const read = c.previousIds ??= this.loadPage(c.id, tail.index - 1, options).then(page => page?.ids ?? new Set<string>())
    try {
      return (await read).has(id)
    } catch (err) {
      // the network could not tell: the next call reads again
      if (c.previousIds === read) c.previousIds = undefined
      throw err
    }
  }

  /**
   * The whole conversation, oldest first (by sent time, then id). Throws
   * IncompleteHistoryError (with what is known) when pages could not be read.
   */
  async list (otherKeyId: string, options: AbortOptions = {}): Promise<HistoryEntry[]> {
    const c = this.conversation(this.conversationOf(otherKeyId))
    const unread = c.synced ? 0 : await this.syncFromDht(c, options)
    const entries = await this.here.list(c.id)
    if (unread > 0) throw new IncompleteHistoryError(entries, unread)
    return entries
  }

  /** Write every pending entry to the DHT now; resolves true if all were written. */
  async flush (): Promise<boolean> {
    clearTimeout(this.flushTimer)
    this.flushTimer = undefined
    this.firstUnflushedAt = undefined
    const run = this.flushing.then(async () => await this.flushAll())
    this.flushing = run.catch(() => false)
    return await run
  }

  /** Flush (bounded by `timeoutMs` and `options.signal`) and stop. Entries appended from then on are not kept (see `append`). */
  async close (timeoutMs: number, options: AbortOptions = {}): Promise<boolean> {
    this.closing = true
    try {
      return await within(this.flush(), timeoutMs, false, options)
    } finally {
      this.closed = true
      clearTimeout(this.flushTimer)
    }
  }

  private conversation (id: string): Conversation {
    let c = this.conversations.get(id)
    if (c == null) {
      c = { id, pending: [], synced: false }
      this.conversations.set(id, c)
    }
    return c
  }

  /**
   * A flush once the conversations have been quiet for `flushMs` (each new entry puts it
   * off), at the latest `flushMaxWaitMs` after the first entry not yet flushed. A retry
   * after a failed flush comes after `flushMs` (at least 5 s), put off by nothing.
   */
  private scheduleFlush (retry = false): void {
    if (this.closed) return
    if (retry) {
      if (this.flushTimer == null) this.setFlushTimer(Math.max(this.flushMs, 5_000))
      return
    }
    const now = Date.now()
    this.firstUnflushedAt ??= now
    this.setFlushTimer(Math.max(0, Math.min(this.flushMs, this.firstUnflushedAt + this.flushMaxWaitMs - now)))
  }

  private setFlushTimer (delayMs: number): void {
    clearTimeout(this.flushTimer)
    this.flushTimer = setTimeout(() => {
      this.flushTimer = undefined
      this.flush().catch(err => { this.log.error('history flush failed: %e', err) })
    }, delayMs)
    this.flushTimer.unref()
  }

  private async flushAll (): Promise<boolean> {
    let ok = true
    for (const c of this.conversations.values()) {
      if (c.pending.length === 0 && c.tail?.dirty !== true) continue
      try {
        if (!await this.flushConversation(c)) ok = false
      } catch (err: any) {
        this.log('history flush of a conversation failed: %s', err.message)
        ok = false
      }
    }
    if (!ok) this.scheduleFlush(true)
    return ok
  }

  private async flushConversation (c: Conversation): Promise<boolean> {
    let tail = await this.ensureTail(c)
    // entries the last page holds already (an earlier session's, resumed): a page in the DHT, or one about to be
    // (before the batch leaves `pending`: a failed local write leaves it there for the next flush)
    const inTail = c.pending.filter(e => tail.ids.has(e.id))
    if (inTail.length > 0 && !tail.dirty) await this.here.written(inTail.map(e => e.id))
    const batch = c.pending.splice(0)
    for (let i = 0; i < batch.length; i++) {
      const e = batch[i] as HistoryEntry
      if (tail.ids.has(e.id)) continue
      const size = historyEntryBytes(e)
      if (tail.entries.length > 0 && tail.bytes + size > HISTORY_PAGE_BYTES) {
        // the full page must be in the DHT before the next one is begun
        if (tail.dirty && !await this.putPage(c.id, tail)) {
          c.pending.unshift(...batch.slice(i))
          return false
        }
        tail = c.tail = newPage(tail.index + 1)
      }
      tail.entries.push(e)
      tail.ids.add(e.id)
      tail.bytes += size
      tail.dirty = true
    }
    return !tail.dirty || await this.putPage(c.id, tail)
  }

  /** The last page: loaded from the DHT once a session; a new page if there is none, or if
   * it is unreadable (so that an unread page is never overwritten). Throws
   * UnknownRecordError when the network could not tell (nothing is cached: the next call
   * reads again, and a flush is retried). */
  private async ensureTail (c: Conversation, options: AbortOptions = {}): Promise<Page> {
    if (c.tail != null) return c.tail
    c.loadingTail ??= this.loadTail(c, options).finally(() => { c.loadingTail = undefined })
    return await c.loadingTail
  }

  private async loadTail (c: Conversation, options: AbortOptions): Promise<Page> {
    const pages = this.state.state.history[c.id]?.pages ?? 0
    let tail = newPage(pages)
    if (pages > 0) {
      const last = await this.loadPage(c.id, pages - 1, options)
      if (last != null) tail = last
      else this.log('history page %d of a conversation unreadable: starting page %d', pages - 1, pages)
    }
    c.tail ??= tail
    return c.tail
  }

  /** A DHT page, undefined if absent or unreadable; throws UnknownRecordError if the network could not tell. */
  private async loadPage (conv: string, index: number, options: AbortOptions = {}): Promise<Page | undefined> {
    const found = await this.records.get<SealedPayload>(historyKey(this.owner.keyId, conv, index), options)
    if (found == null) return undefined
    try {
      const page = openForOwner(found.payload.sealed, this.owner.keys, historyPageSchema)
      const p = newPage(index)
      p.seq = found.record.seq
      for (const e of page.entries) {
        if (p.ids.has(e.id)) continue
        p.entries.push(e)
        p.ids.add(e.id)
        p.bytes += historyEntryBytes(e)
      }
      return p
    } catch (err: any) {
      this.log.error('history page %d unreadable: %s', index, err.message)
      return undefined
    }
  }

  /** Put a page; if the DHT holds a newer version (another session wrote it), merge and retry once. */
  private async putPage (conv: string, page: Page, merged = false): Promise<boolean> {
    const key = historyKey(this.owner.keyId, conv, page.index)
    const seq = page.seq + 1
    const payload: SealedPayload = { sealed: sealForOwner({ v: 1, entries: page.entries }, this.owner.keys), updatedAt: Date.now() }
    let result
    try {
      result = await this.records.put(key, encodeSignedRecord(createSignedRecord(key, seq, payload, this.owner.keys)))
    } catch (err: any) {
      if (err.name !== 'RecordConflictError') {
        this.log('history page put failed: %s', err.message)
        return false
      }
      result = { replicas: 0, refused: 1 }
    }
    if (result.replicas > 0) {
      page.seq = seq
      page.dirty = false
      await this.notePages(conv, page.index + 1)
      await this.here.written([...page.ids])
      return true
    }
    if (result.refused === 0 || merged) return false
    const remote = await this.loadPage(conv, page.index)
    if (remote == null) return false
    for (const e of remote.entries) {
      if (page.ids.has(e.id)) continue
      page.entries.push(e)
      page.ids.add(e.id)
      page.bytes += historyEntryBytes(e)
      await this.here.store(conv, e, 'in a page')
    }
    page.seq = Math.max(page.seq, remote.seq)
    return await this.putPage(conv, page, true)
  }

  private async notePages (conv: string, pages: number): Promise<void> {
    if ((this.state.state.history[conv]?.pages ?? 0) >= pages) return
    // the count is what lets another peer find the page: written in the background, flushed at logout
    void this.state.update(s => {
      if ((s.history[conv]?.pages ?? 0) < pages) s.history[conv] = { pages }
    })
  }

  /**
   * Merge every DHT page of the conversation into the local store (once a session). A page
   * the network could not tell about is read again, up to HISTORY_READ_ROUNDS rounds;
   * resolves how many pages are still unread (the next list reads them again).
   */
  private async syncFromDht (c: Conversation, options: AbortOptions): Promise<number> {
    const pages = this.state.state.history[c.id]?.pages ?? 0
    let unread = Array.from({ length: pages }, (_, i) => i)
    for (let round = 1; unread.length > 0 && round <= HISTORY_READ_ROUNDS; round++) {
      if (round > 1) await delay(HISTORY_RETRY_PAUSE_MS, options)
      const missing: number[] = []
      for (let at = 0; at < unread.length; at += PAGE_FETCH_CONCURRENCY) {
        const chunk = unread.slice(at, at + PAGE_FETCH_CONCURRENCY)
        const loaded = await Promise.all(chunk.map(async i => await this.loadPage(c.id, i, options).catch(err => {
          if (err.name !== 'UnknownRecordError') throw err
          missing.push(i)
          return undefined
        })))
        for (const page of loaded) {
          if (page == null) continue
          for (const e of page.entries) {
            if (!await this.here.has(c.id, e.id)) await this.here.store(c.id, e, 'in a page')
          }
        }
      }
      if (missing.length > 0) this.log('round %d: %d history page(s) of a conversation could not be read', round, missing.length)
      unread = missing
    }
    c.synced = unread.length === 0
    return unread.length
  }
}
