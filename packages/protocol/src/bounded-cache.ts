/**
 * LRU caches bounded by a count of entries, whose memory grows as they fill.
 *
 * lru-cache given `max` allocates its arrays for `max` entries when it is made: two arrays
 * of `max` slots (keys, values) and two of links, and with a `ttl` two more (8 bytes a
 * slot). A cache of 20,000 entries with a TTL holds 720 KB while empty; a peer made a few
 * such caches for what hostile peers might send, and an idle peer carried 2 MB of empty
 * slots (seen in a heap snapshot of an idle peer). Counted against `maxSize`, each entry
 * of size 1, the bound is the same and lru-cache grows its arrays as entries come.
 */
import { LRUCache } from 'lru-cache'

export type BoundedCacheOptions<K extends {}, V extends {}> = Omit<LRUCache.Options<K, V, unknown>, 'max' | 'maxSize' | 'sizeCalculation' | 'maxEntrySize'>

/** An LRU cache of at most `entries` entries (the least recently used go first). */
export function boundedCache<K extends {}, V extends {}> (entries: number, options: BoundedCacheOptions<K, V> = {}): LRUCache<K, V> {
  return new LRUCache<K, V>({ ...options, maxSize: entries, sizeCalculation: () => 1 } as LRUCache.Options<K, V, unknown>)
}
