/**
 * ChatDatastore on a temporary LevelDB: the write guard for DHT records (with the record
 * store's guard, as the peer wires it), expiry on reads, the peer store kept in memory, and
 * the count of bytes held for others.
 */
import { describe, it, expect, beforeEach, afterEach } from 'vitest'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Key } from 'interface-datastore'
import { defaultLogger } from '@libp2p/logger'
import { generateAccountKeys, userKey } from '@conf-chat/protocol'
import { ChatDatastore } from '../../../src/storage/index.js'
import { RecordStore } from '../../../src/network/records/index.js'
import { Clock, StubDht, claim, released, presenceKeyOf, presenceOf, dsKeyOf, storedForm } from '../records/fixtures.js'

const alice = generateAccountKeys()
const mallory = generateAccountKeys()

let dir: string
let ds: ChatDatastore
let clock: Clock

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'conf-chat-unit-datastore-'))
  ds = new ChatDatastore(join(dir, 'datastore'), { logger: defaultLogger() })
  await ds.open()
  clock = new Clock()
})

afterEach(async () => {
  await ds.close()
  await rm(dir, { recursive: true, force: true })
})

/** The peer's wiring: the record store's guard and expiry on the datastore. */
function guarded (recordTtlMs = 60_000): RecordStore {
  const store = new RecordStore({ dht: new StubDht(), datastore: ds, now: clock.now, logger: defaultLogger() }, { recordTtlMs })
  ds.recordGuard = store.guard
  ds.recordExpired = store.isExpired
  return store
}

const write = async (key: string, value: Uint8Array, at = clock.now()): Promise<Key> =>
  await ds.put(dsKeyOf(key), storedForm(key, value, at))

describe('the write guard', () => {
  it('first come, first served names and rising sequence numbers: a refused write throws and leaves the stored record', async () => {
    const store = guarded()
    const name = userKey('alice')
    await write(name, claim(alice, 'alice', 1))
    await expect(write(name, claim(mallory, 'alice', 9))).rejects.toMatchObject({ name: 'RecordConflictError' })
    await write(name, claim(alice, 'alice', 2))
    await expect(write(name, claim(alice, 'alice', 1))).rejects.toMatchObject({ name: 'RecordConflictError' })
    expect((await store.getLocal(name))?.record.seq).toBe(2)

    await write(name, claim(alice, 'alice', 3, released('alice')))
    await write(name, claim(mallory, 'alice', 1))
    expect((await store.getLocal(name))?.record.pub).toEqual(mallory.signPublic)

    await expect(write(presenceKeyOf(alice), presenceOf(mallory, 1))).rejects.toMatchObject({ name: 'InvalidRecordError' })
    expect(await ds.has(dsKeyOf(presenceKeyOf(alice)))).toBe(false)
  })

  it('two claims of one free name at once: exactly one is stored, the other refused', async () => {
    const store = guarded()
    const name = userKey('race')
    const claims = [claim(alice, 'race'), claim(mallory, 'race')]
    const results = await Promise.allSettled(claims.map(async c => await write(name, c)))
    expect(results.map(r => r.status).sort()).toEqual(['fulfilled', 'rejected'])
    const winner = claims[results.findIndex(r => r.status === 'fulfilled')]!
    expect(Buffer.compare((await store.storedValue(name))!, winner)).toBe(0)
  })

  it('guards only DHT records', async () => {
    let calls = 0
    ds.recordGuard = async () => { calls++; throw new Error('refused') }
    await ds.put(new Key('/other/thing', false), Uint8Array.of(1))
    await ds.put(new Key('/peers/someone', false), Uint8Array.of(2))
    expect(calls).toBe(0)
    await expect(write(presenceKeyOf(alice), presenceOf(alice, 1))).rejects.toThrow('refused')
    expect(calls).toBe(1)
  })
})

describe('expiry', () => {
  it('an expired record is not served and does not block a new claim', async () => {
    const store = guarded(1_000)
    const name = userKey('old')
    await write(name, claim(alice, 'old'), clock.now() - 5_000)
    await expect(ds.get(dsKeyOf(name))).rejects.toMatchObject({ name: 'NotFoundError' })
    await write(name, claim(mallory, 'old'))
    expect((await store.getLocal(name))?.record.pub).toEqual(mallory.signPublic)
    // by the store's clock, the fresh record expires too
    clock.advance(1_001)
    await expect(ds.get(dsKeyOf(name))).rejects.toMatchObject({ name: 'NotFoundError' })
  })
  it('a record whose owner signed an end to its life is refused after it, and no longer served, swept or republished', async () => {
    // the store keeps a record 48 h after its last put, and republishes it hourly
    const store = guarded(48 * 3_600_000)
    const key = presenceKeyOf(alice)
    const ends = clock.now() + 1_000
    // already over: refused
    await expect(write(key, presenceOf(alice, 1, { expiresAt: clock.now() - 1 }))).rejects.toMatchObject({ name: 'InvalidRecordError' })
    await write(key, presenceOf(alice, 2, { expiresAt: ends }))
    expect((await store.getLocal(key))?.record.seq).toBe(2)
    clock.advance(1_000)
    // well within the store's TTL, but past the signed end: hidden, not republished, swept
    await expect(ds.get(dsKeyOf(key))).rejects.toMatchObject({ name: 'NotFoundError' })
    expect(await store.getLocal(key)).toBeUndefined()
    clock.advance(3_600_000 - 1_000)
    expect(await store.republish()).toBe(0)
    expect(await store.sweep()).toBe(1)
  })
})

describe('the peer store in memory', () => {
  const [a, b, c] = ['/peers/a', '/peers/b', '/peers/c'].map(k => new Key(k, false)) as [Key, Key, Key]

  it('serves entries from memory, lists them, and writes them to disk on close', async () => {
    await ds.put(a, Uint8Array.of(1))
    await ds.put(b, Uint8Array.of(2))
    await ds.delete(b)
    const batch = ds.batch()
    batch.put(c, Uint8Array.of(3))
    batch.put(new Key('/other/x', false), Uint8Array.of(4))
    await batch.commit()
    expect([...await ds.get(a)]).toEqual([1])
    expect(await ds.has(b)).toBe(false)
    const listed: string[] = []
    for await (const key of ds.queryKeys({ prefix: '/peers' })) listed.push(key.toString())
    expect(listed).toEqual(['/peers/a', '/peers/c'])

    await ds.close()
    await ds.open()
    expect([...await ds.get(a)]).toEqual([1])
    expect([...await ds.get(c)]).toEqual([3])
    expect([...await ds.get(new Key('/other/x', false))]).toEqual([4])
    await expect(ds.get(b)).rejects.toMatchObject({ name: 'NotFoundError' })
  })

  it('a write wins over a read from disk still in flight', async () => {
    await ds.put(a, Uint8Array.of(1))
    await ds.close()
    await ds.open()
    // the read goes to disk (nothing in memory after a reopen); the write lands meanwhile
    const reading = ds.get(a)
    await ds.put(a, Uint8Array.of(9))
    expect([...await reading]).toEqual([9])
    expect([...await ds.get(a)]).toEqual([9])
    await ds.flushPeers()
    await ds.close()
    await ds.open()
    expect([...await ds.get(a)]).toEqual([9])
  })
})

describe('responsibility', () => {
  it('a record from the network for a key this peer is not close to is refused; its own put of one is kept', async () => {
    // as kad-dht's put does: our own copy first, through the datastore (and its guard)
    class LocalFirstDht extends StubDht {
      override async * put (keyBytes: Uint8Array, value: Uint8Array, options: { signal?: AbortSignal } = {}): AsyncGenerator<any> {
        const key = new TextDecoder().decode(keyBytes)
        await ds.put(dsKeyOf(key), storedForm(key, value, clock.now()))
        yield * super.put(keyBytes, value, options)
      }
    }
    const store = new RecordStore({ dht: new LocalFirstDht(), datastore: ds, now: clock.now, logger: defaultLogger(), responsibility: { isResponsible: () => false } })
    ds.recordGuard = store.guard
    const key = presenceKeyOf(alice)
    await expect(write(key, presenceOf(alice, 1))).rejects.toMatchObject({ name: 'NotResponsibleError' })
    await store.put(key, presenceOf(alice, 2))
    expect((await store.getLocal(key))?.record.seq).toBe(2)
    // the copy it keeps does not open the key to others' writes
    await expect(write(key, presenceOf(alice, 3))).rejects.toMatchObject({ name: 'NotResponsibleError' })
  })
})

describe('bytes held for others', () => {
  it('counts what is on disk under the prefixes, then follows puts, replacements, deletes and batches', async () => {
    await ds.put(new Key('/held/a', false), new Uint8Array(10))
    await ds.put(new Key('/other/a', false), new Uint8Array(1000))
    const changes: number[] = []
    ds.onHeldChange = bytes => { changes.push(bytes) }
    expect(await ds.countHeld(['/held/'])).toBe(10)
    await ds.put(new Key('/held/b', false), new Uint8Array(20))
    await ds.put(new Key('/held/a', false), new Uint8Array(5))
    await ds.put(new Key('/other/b', false), new Uint8Array(1000))
    await ds.delete(new Key('/held/b', false))
    await ds.delete(new Key('/held/none', false))
    const batch = ds.batch()
    batch.put(new Key('/held/c', false), new Uint8Array(7))
    batch.put(new Key('/held/c', false), new Uint8Array(8))
    batch.delete(new Key('/held/a', false))
    await batch.commit()
    expect(ds.heldBytes).toBe(8)
    expect(changes).toEqual([30, 25, 5, 5, 8])
  })
})
