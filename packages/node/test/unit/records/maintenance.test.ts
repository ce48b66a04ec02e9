/** The sweeper and the republisher, on the store's injected clock. */
import { describe, it, expect, beforeAll, afterEach, vi } from 'vitest'
import { Key } from 'interface-datastore'
import { generateAccountKeys, userKey } from '@conf-chat/protocol'
import type { PeerId } from '@libp2p/interface'
import { DHT_RECORD_PREFIX } from '../../../src/storage/index.js'
import { testStore, peerIds, claim, presenceKeyOf, presenceOf, dsKeyOf, storedForm, namedError } from './fixtures.js'

const alice = generateAccountKeys()
const bob = generateAccountKeys()
const MINUTE = 60_000
const HOUR = 60 * MINUTE

let peers: PeerId[]
beforeAll(async () => { peers = await peerIds(2) })
afterEach(() => { vi.useRealTimers() })

describe('sweep', () => {
  it('deletes the records past the TTL by the clock, and unreadable entries, and nothing else', async () => {
    const { store, datastore, clock } = testStore({ recordTtlMs: 10 * MINUTE })
    await store.put(presenceKeyOf(alice), presenceOf(alice, 1))
    await store.put(userKey('alice'), claim(alice, 'alice'))
    clock.advance(5 * MINUTE)
    await store.put(presenceKeyOf(bob), presenceOf(bob, 1))
    const junk = new Key(`${DHT_RECORD_PREFIX}/junk`, false)
    await datastore.put(junk, new Uint8Array([0xff, 0xff]))
    const notARecord = new Key('/peers/someone', false)
    await datastore.put(notARecord, new Uint8Array([1]))

    expect(await store.sweep()).toBe(0)
    expect(await datastore.has(junk)).toBe(false)

    clock.advance(5 * MINUTE + 1)
    expect(await store.sweep()).toBe(2)
    expect(await datastore.has(dsKeyOf(presenceKeyOf(alice)))).toBe(false)
    expect(await datastore.has(dsKeyOf(userKey('alice')))).toBe(false)
    expect(await datastore.has(dsKeyOf(presenceKeyOf(bob)))).toBe(true)
    expect(await datastore.has(notARecord)).toBe(true)
  })
})

describe('republish', () => {
  it('re-puts the records not refreshed within the interval, skips fresh and expired ones, and the put refreshes them', async () => {
    const { store, dht, datastore, clock } = testStore({ recordTtlMs: 48 * HOUR, republishIntervalMs: HOUR })
    dht.putAnswers = [{ peer: peers[0]!, answer: 'stores' }]
    const due = presenceOf(alice, 1)
    await store.put(presenceKeyOf(alice), due)
    clock.advance(30 * MINUTE)
    await store.put(presenceKeyOf(bob), presenceOf(bob, 1))
    // received by this store as a holder long ago: expired, so not ours to spread again
    await datastore.put(dsKeyOf(userKey('alice')), storedForm(userKey('alice'), claim(alice, 'alice'), clock.now() - 49 * HOUR))
    clock.advance(31 * MINUTE)
    dht.puts.length = 0

    expect(await store.republish()).toBe(1)
    expect(dht.puts.map(p => [p.key, Buffer.compare(p.value, due)])).toEqual([[presenceKeyOf(alice), 0]])
    expect(await store.republish()).toBe(0)
    // half an hour on, bob's copy is due; alice's was refreshed by her republish
    clock.advance(30 * MINUTE)
    expect(await store.republish()).toBe(1)
    expect(dht.puts.map(p => p.key)).toEqual([presenceKeyOf(alice), presenceKeyOf(bob)])
    expect(await store.republish()).toBe(0)
  })

  it('goes on past a record it cannot put', async () => {
    const { store, dht, clock } = testStore({ republishIntervalMs: HOUR })
    await store.put(presenceKeyOf(alice), presenceOf(alice, 1))
    await store.put(presenceKeyOf(bob), presenceOf(bob, 1))
    clock.advance(HOUR)
    const local = dht.localPut!
    dht.localPut = async (key, value) => {
      if (key === presenceKeyOf(alice)) throw namedError('WriteError')
      await local(key, value)
    }
    expect(await store.republish()).toBe(1)
  })

  it('stop() ends a republish under way', async () => {
    const { store, dht, clock } = testStore({ republishIntervalMs: HOUR, queryTimeoutMs: HOUR })
    await store.put(presenceKeyOf(alice), presenceOf(alice, 1))
    await store.put(presenceKeyOf(bob), presenceOf(bob, 1))
    clock.advance(HOUR)
    dht.puts.length = 0
    dht.putAnswers = [{ peer: peers[0]!, answer: 'hangs' }]
    store.start()
    const republishing = store.republish()
    await vi.waitFor(() => { expect(dht.puts).toHaveLength(1) })
    store.stop()
    await republishing
    expect(dht.puts).toHaveLength(1)
    expect(dht.puts[0]!.signal?.aborted).toBe(true)
  })

  it('start() republishes on its timer and sweeps on its own; republishIntervalMs 0 turns republishing off', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval'] })
    const { store, dht, datastore, clock } = testStore({ recordTtlMs: 4 * HOUR, republishIntervalMs: HOUR })
    await store.put(presenceKeyOf(alice), presenceOf(alice, 1))
    await datastore.put(dsKeyOf(userKey('alice')), storedForm(userKey('alice'), claim(alice, 'alice'), clock.now() - 5 * HOUR))
    clock.advance(HOUR)
    dht.puts.length = 0
    store.start()
    // republish ticks at a quarter of the interval (with ±25 % jitter); the sweep every TTL/4 (at most 10 min)
    await vi.advanceTimersByTimeAsync(10 * MINUTE)
    expect(await datastore.has(dsKeyOf(userKey('alice')))).toBe(false)
    await vi.advanceTimersByTimeAsync(HOUR / 4 * 1.25)
    expect(dht.puts.map(p => p.key)).toEqual([presenceKeyOf(alice)])
    store.stop()

    const off = testStore({ recordTtlMs: 4 * HOUR, republishIntervalMs: 0 })
    await off.store.put(presenceKeyOf(alice), presenceOf(alice, 1))
    off.clock.advance(2 * HOUR)
    off.dht.puts.length = 0
    off.store.start()
    await vi.advanceTimersByTimeAsync(2 * HOUR)
    expect(off.dht.puts).toEqual([])
    off.store.stop()
  })
})
