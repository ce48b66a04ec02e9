/** The local store on a temporary LevelDB: CBOR values by key, prefixes, and what survives a reopen. */
import { describe, it, expect, beforeEach, afterEach, vi } from 'vitest'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { LevelDatastore } from 'datastore-level'
import { Key } from 'interface-datastore'
import { defaultLogger } from '@libp2p/logger'
import { LocalStore, LOCAL_STORE_DIR } from '../../../src/storage/index.js'

let dir: string
let store: LocalStore

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'conf-chat-unit-local-'))
  store = new LocalStore(dir, { logger: defaultLogger() })
  await store.open()
})

afterEach(async () => {
  await store.close()
  await rm(dir, { recursive: true, force: true })
})

const collect = async <T>(it: AsyncIterable<T>): Promise<T[]> => { const out: T[] = []; for await (const x of it) out.push(x); return out }

describe('LocalStore', () => {
  it('put, get, has and delete structured values', async () => {
    const value = { id: 'm1', to: ['bob'], body: new Uint8Array([1, 2, 3]), tries: 2, nested: { ok: true } }
    expect(await store.get('/outbox/m1')).toBeUndefined()
    expect(await store.has('/outbox/m1')).toBe(false)
    await store.put('/outbox/m1', value)
    expect(await store.has('/outbox/m1')).toBe(true)
    expect(await store.get('/outbox/m1')).toEqual(value)
    await store.delete('/outbox/m1')
    expect(await store.has('/outbox/m1')).toBe(false)
    expect(await store.get('/outbox/m1')).toBeUndefined()
  })

  it('lists entries and keys under a prefix in key order, and keeps them across a reopen', async () => {
    await store.putMany([['/seen/b', 2], ['/seen/a', 1], ['/outbox/x', 'x'], ['/seen/c', 3]])
    await store.close()
    store = new LocalStore(dir)
    await store.open()
    expect(await collect(store.entries('/seen/'))).toEqual([
      { key: '/seen/a', value: 1 }, { key: '/seen/b', value: 2 }, { key: '/seen/c', value: 3 }
    ])
    expect(await collect(store.keys('/outbox/'))).toEqual(['/outbox/x'])
  })

  it('skips an entry it cannot decode and reads it as missing', async () => {
    await store.put('/seen/a', 1)
    await store.close()
    const raw = new LevelDatastore(join(dir, LOCAL_STORE_DIR))
    await raw.open()
    await raw.put(new Key('/seen/b', false), new Uint8Array([0xff, 0xff, 0xff]))
    await raw.close()
    store = new LocalStore(dir)
    await store.open()
    expect(await collect(store.entries('/seen/'))).toEqual([{ key: '/seen/a', value: 1 }])
    expect(await store.get('/seen/b')).toBeUndefined()
    expect(await store.has('/seen/b')).toBe(true)
  })

  it('sends the writes and the checks of one tick to LevelDB together, each caller\'s writes whole', async () => {
    const ds = (store as unknown as { ds: LevelDatastore }).ds
    const batches = vi.spyOn(ds, 'batch')
    const getMany = vi.spyOn(ds.db, 'getMany')
    await Promise.all(Array.from({ length: 200 }, async (_, i) => { await store.putMany([[`/h/${i}`, i], [`/hi/${i}`, 1]]) }))
    expect(batches).toHaveBeenCalledTimes(1)
    const found = await Promise.all(Array.from({ length: 400 }, async (_, i) => await store.has(`/hi/${i}`)))
    expect(getMany).toHaveBeenCalledTimes(1)
    expect(found.filter(Boolean)).toHaveLength(200)
    expect(found.slice(0, 200).every(Boolean)).toBe(true)
    expect((await collect(store.entries('/h/'))).length).toBe(200)
  })

  it('applies the writes of one tick in the order they were made', async () => {
    await Promise.all([
      store.put('/k/a', 1),
      store.delete('/k/a'),
      store.put('/k/b', 1),
      store.writeMany([['/k/b', 2], ['/k/c', 3]], ['/k/c'])
    ])
    expect(await collect(store.entries('/k/'))).toEqual([{ key: '/k/b', value: 2 }])
  })

  it('rejects every write of a batch that failed, and a write whose caller gave up', async () => {
    await store.close()
    const writes = [store.put('/k/a', 1), store.putMany([['/k/b', 2]])]
    for (const w of writes) await expect(w).rejects.toThrow()
    await store.open()
    await expect(store.put('/k/c', 3, { signal: AbortSignal.abort() })).rejects.toThrow(/abort/i)
    expect(await store.has('/k/c')).toBe(false)
  })
})
