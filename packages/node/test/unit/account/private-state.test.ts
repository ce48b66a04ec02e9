/**
 * PrivateStateStore alone, over an in-memory stand-in for the record store that applies
 * the same update rule as every storing peer (checkUpdate: the owner's seq must rise).
 */
import { describe, it, expect } from 'vitest'
import {
  generateAccountKeys, keyIdOf, stateKey, statePageKey, openForOwner, privateStateSchema, MAX_FRIEND_NOTE_CHARS, MAX_RECORD_BYTES, MAX_STATE_PAGES, STATE_PART_BYTES,
  type VerifiedRecord, type SealedPayload, type FriendEntry, type StatePayload, type StatePagePayload
} from '@conf-chat/protocol'
import { defaultLogger } from '@libp2p/logger'
import { PrivateStateStore, type PrivateStateComponents } from '../../../src/account/private-state.js'
import { MemoryRecords } from '../fixtures/memory-records.js'
import { paginate } from '../../../src/account/state-pages.js'

const keys = generateAccountKeys()
const owner = { keyId: keyIdOf(keys.signPublic), keys }
const friend = (username: string): FriendEntry => ({ username, keyId: keyIdOf(generateAccountKeys().signPublic), signPublic: new Uint8Array(32), boxPublic: new Uint8Array(32), since: 1 })
const addFriend = (f: FriendEntry) => (s: { friends: FriendEntry[] }) => { if (!s.friends.some(x => x.username === f.username)) s.friends.push(f) }

function stateOf (records: MemoryRecords): PrivateStateComponents {
  return { records: records as unknown as PrivateStateComponents['records'], owner, logger: defaultLogger() }
}

function storedState (records: MemoryRecords): { seq: number, friends: string[] } {
  const r = records.stored.get(stateKey(owner.keyId)) as VerifiedRecord<SealedPayload>
  return { seq: r.record.seq, friends: openForOwner(r.payload.sealed, keys, privateStateSchema).friends.map(f => f.username).sort() }
}

describe('private state', () => {
  it('a load the network could not answer is retried, never taken for "no state": the friends come back', async () => {
    const records = new MemoryRecords()
    const writer = new PrivateStateStore(stateOf(records))
    await writer.load()
    expect(await writer.update(addFriend(friend('bob')))).toBe(true)
    writer.close()

    records.down = true
    const readsBefore = records.reads
    // each retry is reported (the user sees "network slow, retrying")
    const retries: Array<[number, number]> = []
    const a = new PrivateStateStore({ ...stateOf(records), onRetry: (attempt, ms) => { retries.push([attempt, ms]) } }, { stateRetryMs: 5 })
    let loaded = false
    const loading = a.load().then(() => { loaded = true })
    await records.readsReach(readsBefore + 3)
    // still loading, and no empty state was taken for the real one
    expect(loaded).toBe(false)
    expect(a.state.friends).toEqual([])
    expect(retries.slice(0, 2)).toEqual([[1, 5], [2, 5]])
    records.down = false
    await loading
    expect(a.state.friends.map(f => f.username)).toEqual(['bob'])
    a.close()
  })

  it('a change made while the load is still retrying is kept on top of the state it finally reads', async () => {
    const records = new MemoryRecords()
    const writer = new PrivateStateStore(stateOf(records))
    await writer.load()
    expect(await writer.update(addFriend(friend('bob')))).toBe(true)
    writer.close()

    records.down = true
    const a = new PrivateStateStore(stateOf(records), { stateRetryMs: 5 })
    const loading = a.load()
    await records.readsReach(records.reads + 2)
    // written on seq 1 while unknown: the store refuses it (it holds seq 1 already), the reload cannot tell yet
    const durable = a.update(addFriend(friend('carol')))
    await records.readsReach(records.reads + 3)
    records.down = false
    await loading
    expect(await durable).toBe(false)
    expect(await a.flush(5_000)).toBe(true)
    // the failed writes while the network could not tell used up sequence numbers: only the friends matter
    expect(storedState(records).friends).toEqual(['bob', 'carol'])
    expect(a.state.friends.map(f => f.username).sort()).toEqual(['bob', 'carol'])
    a.close()
  })

  it('closing ends a load that cannot tell, with the error (no empty state is taken)', async () => {
    const records = new MemoryRecords()
    records.down = true
    const a = new PrivateStateStore(stateOf(records), { stateRetryMs: 5 })
    const loading = a.load()
    await records.readsReach(2)
    a.close()
    await expect(loading).rejects.toMatchObject({ name: 'UnknownRecordError' })
  })

  it('starts empty, writes each change with a rising seq, and is read back by another session', async () => {
    const records = new MemoryRecords()
    const a = new PrivateStateStore(stateOf(records))
    await a.load()
    expect(a.state.friends).toEqual([])
    expect(await a.update(addFriend(friend('bob')))).toBe(true)
    expect(await a.update(addFriend(friend('carol')))).toBe(true)
    expect(storedState(records)).toEqual({ seq: 2, friends: ['bob', 'carol'] })
    const b = new PrivateStateStore(stateOf(records))
    await b.load()
    expect(b.state.friends.map(f => f.username)).toEqual(['bob', 'carol'])
    a.close()
    b.close()
  })

  it('loses no change when another session wrote first: takes the newer state and replays its own', async () => {
    const records = new MemoryRecords()
    const a = new PrivateStateStore(stateOf(records))
    const b = new PrivateStateStore(stateOf(records))
    await a.load()
    await b.load()
    expect(await b.update(addFriend(friend('bob')))).toBe(true)
    // a's write (seq 1 again) is refused by the store; a reloads b's and applies its change on top
    expect(await a.update(addFriend(friend('dave')))).toBe(true)
    expect(storedState(records)).toEqual({ seq: 2, friends: ['bob', 'dave'] })
    expect(a.state.friends.map(f => f.username).sort()).toEqual(['bob', 'dave'])
    a.close()
    b.close()
  })

  it('keeps a change made while the network is down in memory and writes it when it is back', async () => {
    const records = new MemoryRecords()
    const a = new PrivateStateStore(stateOf(records), { stateRetryMs: 20 })
    await a.load()
    records.down = true
    expect(await a.update(addFriend(friend('erin')))).toBe(false)
    expect(a.state.friends.map(f => f.username)).toEqual(['erin'])
    expect(await a.flush(100)).toBe(false)
    records.down = false
    expect(await a.flush(5_000)).toBe(true)
    expect(storedState(records)).toEqual({ seq: expect.any(Number), friends: ['erin'] })
    a.close()
  })

  it('written() waits through failed writes until the change is in the DHT; false only when closed first', async () => {
    const records = new MemoryRecords()
    const a = new PrivateStateStore(stateOf(records), { stateRetryMs: 5 })
    await a.load()
    expect(await a.written()).toBe(true)
    records.down = true
    const readsBefore = records.reads
    void a.update(addFriend(friend('erin')))
    const written = a.written()
    let settled: boolean | undefined
    void written.then(ok => { settled = ok })
    // several writes failed (each one reads first, and is retried): still waiting
    await records.readsReach(readsBefore + 3)
    expect(settled).toBeUndefined()
    records.down = false
    expect(await written).toBe(true)
    expect(storedState(records).friends).toEqual(['erin'])

    records.down = true
    void a.update(addFriend(friend('frank')))
    const never = a.written()
    a.close()
    expect(await never).toBe(false)
  })

  it('tells the user when writes keep failing (every 3rd failure in a row, with the reason), and once when one goes through', async () => {
    const records = new MemoryRecords()
    const told: string[] = []
    const a = new PrivateStateStore({
      ...stateOf(records),
      onUnsaved: (failures, reason) => { told.push(`unsaved ${failures}: ${reason}`) },
      onSaved: failures => { told.push(`saved after ${failures}`) }
    }, { stateRetryMs: 5 })
    await a.load()
    // one failure and then success: nothing to tell
    records.down = true
    void a.update(addFriend(friend('erin')))
    const first = a.written()
    await records.readsReach(records.reads + 1)
    records.down = false
    expect(await first).toBe(true)
    expect(told).toEqual([])
    // failures in a row: told at the 3rd and the 6th, then once written
    records.down = true
    void a.update(addFriend(friend('frank')))
    const written = a.written()
    await expect.poll(() => told.length, { timeout: 5_000 }).toBeGreaterThanOrEqual(2)
    expect(told.slice(0, 2)).toEqual(['unsaved 3: no peer stored it', 'unsaved 6: no peer stored it'])
    records.down = false
    expect(await written).toBe(true)
    const unsaved = told.filter(t => t.startsWith('unsaved')).length
    expect(told.slice(unsaved)).toEqual([expect.stringMatching(/^saved after \d+$/)])
    a.close()
  })

  describe('in pages', () => {
    /** `n` friends with the longest notes: about 340 bytes each, sealed */
    const many = (n: number, prefix = 'f') => (state: { friends: FriendEntry[] }) => {
      for (let i = 0; i < n; i++) state.friends.push({ ...friend(`${prefix}${i}`), note: 'n'.repeat(MAX_FRIEND_NOTE_CHARS) })
    }
    const head = (records: MemoryRecords): VerifiedRecord<StatePayload> => records.stored.get(stateKey(owner.keyId)) as VerifiedRecord<StatePayload>

    it('writes a state larger than one record in pages, and another session reads it whole', async () => {
      const records = new MemoryRecords()
      const a = new PrivateStateStore(stateOf(records))
      await a.load()
      expect(await a.update(many(1000))).toBe(true)
      const pages = head(records).payload.pages!
      expect(pages.count).toBeGreaterThanOrEqual(3)
      for (let i = 1; i < pages.count; i++) expect(records.stored.get(statePageKey(owner.keyId, pages.slot, i))).toBeDefined()
      // every record is within the limit a holder takes
      for (const r of records.stored.values()) expect(r.value.length).toBeLessThanOrEqual(MAX_RECORD_BYTES)
      const b = new PrivateStateStore(stateOf(records))
      await b.load()
      expect(b.state.friends).toHaveLength(1000)
      // back under one record: the head alone again, the old pages no longer read
      expect(await b.update(s => { s.friends.splice(10) })).toBe(true)
      expect(head(records).payload.pages).toBeUndefined()
      const c = new PrivateStateStore(stateOf(records))
      await c.load()
      expect(c.state.friends).toHaveLength(10)
      a.close()
      b.close()
      c.close()
    })

    it('never takes a state with a page missing or of another version: the read is retried until the pages agree', async () => {
      const records = new MemoryRecords()
      const a = new PrivateStateStore(stateOf(records))
      await a.load()
      expect(await a.update(many(600))).toBe(true)
      const page = statePageKey(owner.keyId, head(records).payload.pages!.slot, 1)
      const written = records.stored.get(page)!
      // the page as an older write left it (another version's digest)
      records.stored.set(page, { ...written, payload: { ...(written.payload as StatePagePayload), digest: new Uint8Array(32) } })
      const retries: number[] = []
      const b = new PrivateStateStore({ ...stateOf(records), onRetry: attempt => { retries.push(attempt) } }, { stateRetryMs: 5 })
      const loading = b.load()
      await expect.poll(() => retries.length).toBeGreaterThanOrEqual(2)
      expect(b.state.friends).toEqual([])
      records.stored.delete(page)
      await expect.poll(() => retries.length).toBeGreaterThanOrEqual(3)
      records.stored.set(page, written)
      await loading
      expect(b.state.friends).toHaveLength(600)
      a.close()
      b.close()
    })

    it("a write whose head no peer took leaves the current head's pages whole: the state reads as before, and the next write goes through", async () => {
      const records = new MemoryRecords()
      const a = new PrivateStateStore(stateOf(records), { stateRetryMs: 5 })
      await a.load()
      expect(await a.update(many(600))).toBe(true)
      const slot = head(records).payload.pages!.slot
      const put = records.put.bind(records)
      let headsRefused = true
      records.put = async (key: string, value: Uint8Array) => headsRefused && key === stateKey(owner.keyId) ? { replicas: 0, refused: 0 } : await put(key, value)
      expect(await a.update(many(10, 'g'))).toBe(false)
      // the failed write's pages went to the other slot
      expect(records.stored.get(statePageKey(owner.keyId, slot === 'a' ? 'b' : 'a', 1))).toBeDefined()
      const b = new PrivateStateStore(stateOf(records))
      await b.load()
      expect(b.state.friends).toHaveLength(600)
      b.close()
      headsRefused = false
      expect(await a.flush(5_000)).toBe(true)
      const c = new PrivateStateStore(stateOf(records))
      await c.load()
      expect(c.state.friends).toHaveLength(610)
      a.close()
      c.close()
    })

    it('refuses to write a state past its pages, and tells the user why; the state stays in memory', async () => {
      const records = new MemoryRecords()
      const told: string[] = []
      // 2 records where the product allows 16: 1,000 friends (about 370 KiB sealed) do not fit
      const a = new PrivateStateStore({ ...stateOf(records), onUnsaved: (_n, reason) => { told.push(reason) } }, { stateRetryMs: 5, maxStatePages: 2 })
      await a.load()
      expect(await a.update(many(1000))).toBe(false)
      await expect.poll(() => told.length, { timeout: 5_000 }).toBeGreaterThanOrEqual(1)
      a.close()
      expect(told[0]).toMatch(/more than the 224 KiB a state may have/)
      expect(a.state.friends).toHaveLength(1000)
      expect(records.stored.get(stateKey(owner.keyId))).toBeUndefined()
      expect(() => paginate(new Uint8Array(MAX_STATE_PAGES * STATE_PART_BYTES + 1), 0, 'a')).toThrow(/a state may have/)
    })
  })
})
