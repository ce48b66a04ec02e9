import { describe, expect, it } from 'vitest'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { LRUCache } from 'lru-cache'
import { boundedCache } from '../src/bounded-cache.js'

describe('boundedCache', () => {
  it('keeps at most its number of entries, dropping the least recently used', () => {
    const cache = boundedCache<string, number>(3)
    for (const [i, key] of ['a', 'b', 'c'].entries()) cache.set(key, i)
    expect(cache.get('a')).toBe(0) // a is now the most recently used
    cache.set('d', 3)
    expect([...cache.keys()].sort()).toEqual(['a', 'c', 'd'])
    expect(cache.size).toBe(3)
    for (let i = 0; i < 100; i++) cache.set(`k${i}`, i)
    expect(cache.size).toBe(3)
  })

  it('forgets entries after their ttl (the clock of lru-cache, injected)', () => {
    let now = 1_000
    const cache = boundedCache<string, string>(10, { ttl: 500, ttlResolution: 0, perf: { now: () => now } })
    cache.set('x', 'y')
    now += 499
    expect(cache.get('x')).toBe('y')
    now += 2
    expect(cache.get('x')).toBeUndefined()
  })

  it('allocates as it fills: 50 empty caches of 20,000 entries with a ttl take well under 1 MB (lru-cache given max takes 36 MB)', () => {
    // a full collection before each reading, so that garbage of other tests in this
    // worker, collected or not in between, does not count
    setFlagsFromString('--expose-gc')
    const gc = runInNewContext('gc') as () => void
    const heapGrowth = (make: () => unknown): number => {
      gc()
      const before = process.memoryUsage().heapUsed
      const kept = Array.from({ length: 50 }, make)
      gc()
      const grown = process.memoryUsage().heapUsed - before
      expect(kept).toHaveLength(50)
      return grown
    }
    expect(heapGrowth(() => new LRUCache<string, number>({ max: 20_000, ttl: 60_000 }))).toBeGreaterThan(20 * 1024 * 1024)
    expect(heapGrowth(() => boundedCache<string, number>(20_000, { ttl: 60_000 }))).toBeLessThan(1024 * 1024)
  })
})
