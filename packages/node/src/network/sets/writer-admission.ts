/**
 * A holder's side of set writer lists (SetNamespaceRules.writerList; for mailboxes see
 * protocol's writer-list.ts): which list applies to a set, and what a writer the list
 * does not name (a stranger) may still store. The newest list of each set is cached
 * (decoding one verifies a signature); so is what each stranger stored in the last day.
 */
import { LRUCache } from 'lru-cache'
import type { AbortOptions } from '@libp2p/interface'
import { boundedCache, type SetItem, type WriterListRules } from '@conf-chat/protocol'
import type { SetLayout, SetUsage } from './set-layout.js'
import { SET_FULL, STRANGER_DAY_FULL, STRANGER_KIND, WRITER_FULL } from './set-errors.js'

const DAY_MS = 24 * 60 * 60 * 1000
/** Senders named in all the lists kept decoded (each list counts one more): a few MiB at most. */
const LIST_NAMES_CACHED = 100_000
/** A cached list is read from disk again after this (one expired or removed behind our back). */
const LIST_CACHE_TTL_MS = 10 * 60_000
/** (set, stranger) pairs whose items of the last day are counted. */
const STRANGERS_COUNTED = 20_000

interface CachedList {
  id: string
  at: number
  expiresAt: number
  names: (writer: string) => boolean
  size?: number
  /** `names` of the writers asked about so far (each answer costs a hash): a set's writers, bounded. */
  answers?: Map<string, boolean>
}

/** Answers of `names` kept per list (a set holds at most 10,000 items). */
const ANSWERS_KEPT = 10_000

/** What one ADD request may store of strangers, decided item by item under the set's lock. */
export interface StrangerGate {
  /** Whether the set's list names `writer` (or the set has no list). */
  names: (writer: string) => boolean
  /** Undefined if the stranger may store `item` (then counted), else the holder's reason to refuse it. */
  admit: (writer: string, item: SetItem, mine: { items: number, bytes: number }) => string | undefined
}

export class WriterAdmission {
  private readonly lists = new LRUCache<string, CachedList | false>({
    maxSize: LIST_NAMES_CACHED,
    sizeCalculation: list => 1 + (list === false ? 0 : list.size ?? 0),
    ttl: LIST_CACHE_TTL_MS
  })
  /** Times of stranger items stored in the last day, by set and writer. */
  private readonly today = boundedCache<string, number[]>(STRANGERS_COUNTED, { ttl: DAY_MS })

  constructor (private readonly layout: Pick<SetLayout, 'items'>, private readonly now: () => number) {}

  /**
   * The gate for one request: the newest unexpired list among what the set holds and the
   * request's own `incoming` items; undefined when there is none (every writer is taken).
   * `ttlMs`: how long the set's items live.
   */
  async gate (setKey: string, rules: WriterListRules, usage: SetUsage, incoming: Iterable<SetItem>, ttlMs: number, options: AbortOptions = {}): Promise<StrangerGate | undefined> {
    const now = this.now()
    let list = await this.storedList(setKey, rules, ttlMs, options)
    for (const item of incoming) {
      if (!item.id.startsWith(rules.listPrefix)) continue
      const decoded = rules.decode(setKey, item)
      if (list == null || decoded.at > list.at) list = { id: item.id, ...decoded, expiresAt: decoded.at + ttlMs }
    }
    if (list == null || list.expiresAt <= now) return undefined
    const answers = list.answers ??= new Map()
    const named = list.names
    const names = (writer: string): boolean => {
      let answer = answers.get(writer)
      if (answer == null) {
        answer = named(writer)
        if (answers.size >= ANSWERS_KEPT) answers.clear()
        answers.set(writer, answer)
      }
      return answer
    }
    let strangers = 0
    for (const [writer, mine] of usage.writers) if (!names(writer)) strangers += mine.items
    const { may, items, bytes, perDay, perSet } = rules.strangers
    return {
      names,
      admit: (writer, item, mine) => {
        if (!may(item)) return STRANGER_KIND
        if (mine.items >= items || mine.bytes + item.data.length > bytes) return WRITER_FULL
        if (strangers >= perSet) return SET_FULL
        const key = `${setKey}\n${writer}`
        const times = (this.today.get(key) ?? []).filter(t => t > now - DAY_MS)
        if (times.length >= perDay) return STRANGER_DAY_FULL
        this.today.set(key, [...times, now])
        strangers++
        return undefined
      }
    }
  }

  /**
   * A list item was stored in `setKey`: it applies from now on if it is the newest. With
   * nothing cached, the next request reads the set's lists from disk (an older list
   * stored again must not pass for the newest).
   */
  stored (setKey: string, rules: WriterListRules, item: SetItem, ttlMs: number): void {
    const cached = this.lists.get(setKey)
    if (cached == null) return
    const decoded = rules.decode(setKey, item)
    if (cached === false || decoded.at > cached.at) this.lists.set(setKey, { id: item.id, ...decoded, expiresAt: decoded.at + ttlMs })
  }

  /** Lists of `setKey` were removed: read them from disk next time. */
  forget (setKey: string): void {
    this.lists.delete(setKey)
  }

  private async storedList (setKey: string, rules: WriterListRules, ttlMs: number, options: AbortOptions): Promise<CachedList | undefined> {
    const cached = this.lists.get(setKey)
    if (cached != null) return cached === false ? undefined : cached
    let newest: CachedList | undefined
    // list ids sort by their time: the last valid one read is the newest
    for await (const { id, item } of this.layout.items(setKey, { ...options, idPrefix: rules.listPrefix })) {
      if (item == null) continue
      try {
        const decoded = rules.decode(setKey, item)
        if (newest == null || decoded.at > newest.at) newest = { id, ...decoded, expiresAt: decoded.at + ttlMs }
      } catch {}
    }
    this.lists.set(setKey, newest ?? false)
    return newest
  }
}
