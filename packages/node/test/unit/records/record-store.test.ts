/**
 * The record store over a stub DHT and a MemoryDatastore: what a put counts, what a read
 * keeps and picks, the write guard, and our own copy.
 */
import { describe, it, expect, beforeAll } from 'vitest'
import { generateAccountKeys, userKey, type AccountPayload, type PresencePayload } from '@conf-chat/protocol'
import type { PeerId } from '@libp2p/interface'
import { HOLDERS_REUSE_MS, type PutOutcome } from '../../../src/network/records/index.js'
import {
  testStore, peerIds, claim, released, presenceKeyOf, presenceOf, signed, presence, dsKeyOf, storedForm,
  peerResponse, valueEvent, namedError
} from './fixtures.js'

const alice = generateAccountKeys()
const mallory = generateAccountKeys()

let peers: PeerId[]
beforeAll(async () => { peers = await peerIds(6) })

describe('a key put again', () => {
  it('goes straight to the holders that stored it when it was last looked up, our own copy first, and is looked up again after HOLDERS_REUSE_MS', async () => {
    const sent: string[] = []
    const { store, dht, clock } = testStore({}, { putTo: async (to) => { sent.push(to.toString()); return 'stored' } })
    const [p0, p1, p2, p3] = peers as [PeerId, PeerId, PeerId, PeerId]
    const key = presenceKeyOf(alice)
    dht.putAnswers = [{ peer: p0, answer: 'stores' }, { peer: p1, answer: 'stores' }, { peer: p2, answer: 'stores' }, { peer: p3, answer: 'refuses' }]
    expect(await store.put(key, presenceOf(alice, 1))).toMatchObject({ replicas: 3 })
    await store.settled()
    clock.advance(HOLDERS_REUSE_MS - 1)
    expect(await store.put(key, presenceOf(alice, 2))).toEqual({ replicas: 3, refused: 0 })
    await store.settled()
    expect(dht.puts).toHaveLength(1)
    expect(sent.sort()).toEqual([p0, p1, p2].map(String).sort())
    expect((await store.getLocal<PresencePayload>(key))?.record.seq).toBe(2)
    // an older record than our own copy is refused before anything is sent
    await expect(store.put(key, presenceOf(alice, 1))).rejects.toMatchObject({ name: 'RecordConflictError' })
    expect(sent).toHaveLength(3)
    clock.advance(1)
    await store.put(key, presenceOf(alice, 3))
    expect(dht.puts).toHaveLength(2)
    expect(sent).toHaveLength(3)
  })

  it('is put with a lookup at once when fewer than the write quorum of the remembered holders take it; refusals count', async () => {
    const answers: Record<string, PutOutcome> = {}
    const { store, dht } = testStore({}, { putTo: async (to) => answers[to.toString()] ?? 'stored' })
    const [p0, p1, p2] = peers as [PeerId, PeerId, PeerId]
    const key = presenceKeyOf(alice)
    dht.putAnswers = [{ peer: p0, answer: 'stores' }, { peer: p1, answer: 'stores' }, { peer: p2, answer: 'stores' }]
    await store.put(key, presenceOf(alice, 1))
    answers[p0.toString()] = 'refused'
    answers[p1.toString()] = 'failed'
    expect(await store.put(key, presenceOf(alice, 2))).toEqual({ replicas: 3, refused: 0 })
    expect(dht.puts.map(p => p.value.length > 0)).toEqual([true, true])
    // a key of a namespace whose write quorum is every holder (a name) is always looked up
    const name = userKey('alice')
    await store.put(name, claim(alice, 'alice'))
    await store.put(name, claim(alice, 'alice', 2))
    expect(dht.puts.filter(p => p.key === name)).toHaveLength(2)
  })

  it('is put with a lookup as well when the remembered holders are slow to reach the quorum; they still get it', async () => {
    // remembered holders that have left: their dials hang until the put's time limit
    let hang = false
    const reached: string[] = []
    const putTo = async (to: PeerId, _key: string, _value: Uint8Array, options: { signal?: AbortSignal }): Promise<PutOutcome> => {
      if (!hang) return 'stored'
      await new Promise<void>(resolve => { options.signal?.addEventListener('abort', () => { resolve() }, { once: true }) })
      reached.push(to.toString())
      return 'failed'
    }
    const { store, dht } = testStore({ holdersPatienceMs: 50, queryTimeoutMs: 2_000 }, { putTo })
    const [p0, p1, p2] = peers as [PeerId, PeerId, PeerId]
    const key = presenceKeyOf(alice)
    dht.putAnswers = [{ peer: p0, answer: 'stores' }, { peer: p1, answer: 'stores' }, { peer: p2, answer: 'stores' }]
    await store.put(key, presenceOf(alice, 1))
    await store.settled()
    hang = true
    expect(await store.put(key, presenceOf(alice, 2))).toEqual({ replicas: 3, refused: 0 })
    // returned before the put's time limit ended the remembered holders' attempts
    expect(reached).toEqual([])
    expect(dht.puts).toHaveLength(2)
    // the hanging attempts are the put's tail: settled() waits for them (ended by the time limit)
    await store.settled()
    expect(reached.sort()).toEqual([p0, p1, p2].map(String).sort())
  })
})

describe('put', () => {
  it('counts the replicas that echoed our record and those that refused it; a timeout or a stray answer counts as neither', async () => {
    const { store, dht } = testStore()
    const [p0, p1, p2, p3, p4, stranger] = peers as [PeerId, PeerId, PeerId, PeerId, PeerId, PeerId]
    const key = presenceKeyOf(alice)
    const value = presenceOf(alice, 2)
    dht.putAnswers = [
      { peer: p0, answer: 'stores' },
      { peer: p1, answer: 'stores' },
      { peer: p2, answer: 'echoes', value: presenceOf(alice, 1) },
      { peer: p3, answer: 'refuses' },
      { peer: p4, answer: 'times-out' }
    ]
    // answers from a peer we never sent PUT_VALUE to, and a second answer from p0
    dht.extraPutEvents = [peerResponse(stranger, 'PUT_VALUE', key, value), peerResponse(p0, 'PUT_VALUE', key, value)]

    expect(await store.put(key, value)).toEqual({ replicas: 2, refused: 2 })
    expect(dht.puts.map(p => p.key)).toEqual([key])
    // kad-dht's put wrote our own copy first
    expect((await store.getLocal<PresencePayload>(key))?.record.seq).toBe(2)
  })

  it('refuses an invalid record before anything is sent', async () => {
    const { store, dht } = testStore()
    const key = presenceKeyOf(alice)
    await expect(store.put(key, presenceOf(mallory, 1))).rejects.toMatchObject({ name: 'InvalidRecordError' })
    await expect(store.put(key, new Uint8Array([1, 2, 3]))).rejects.toMatchObject({ name: 'InvalidRecordError' })
    expect(dht.puts).toEqual([])
  })

  it('throws RecordConflictError when our own store holds a record this one may not replace', async () => {
    const { store, dht } = testStore()
    dht.putAnswers = [{ peer: peers[0]!, answer: 'stores' }]
    const name = userKey('alice')
    await store.put(name, claim(alice, 'alice'))
    await expect(store.put(name, claim(mallory, 'alice', 5))).rejects.toMatchObject({ name: 'RecordConflictError' })
    const key = presenceKeyOf(alice)
    await store.put(key, presenceOf(alice, 3))
    await expect(store.put(key, presenceOf(alice, 2))).rejects.toMatchObject({ name: 'RecordConflictError' })
    expect(Buffer.compare((await store.storedValue(name))!, claim(alice, 'alice'))).toBe(0)
    expect((await store.getLocal(key))?.record.seq).toBe(3)
  })

  it('ends at its time limit with what it counted; the caller\'s abort reaches the DHT and ends the put with the abort', async () => {
    const { store, dht } = testStore({ queryTimeoutMs: 50 })
    dht.putAnswers = [{ peer: peers[0]!, answer: 'stores' }, { peer: peers[1]!, answer: 'hangs' }]
    expect(await store.put(presenceKeyOf(alice), presenceOf(alice, 1))).toEqual({ replicas: 1, refused: 0 })
    expect(dht.puts[0]!.signal?.aborted).toBe(true)

    const { store: store2, dht: dht2 } = testStore({ queryTimeoutMs: 60_000 })
    dht2.putAnswers = [{ peer: peers[0]!, answer: 'hangs' }]
    const controller = new AbortController()
    const putting = store2.put(presenceKeyOf(alice), presenceOf(alice, 1), { signal: controller.signal })
    controller.abort()
    // the caller gave up: no count comes back as if the put had finished
    await expect(putting).rejects.toMatchObject({ name: 'AbortError' })
    expect(dht2.puts[0]!.signal?.aborted).toBe(true)
  })

  it('returns once its write quorum stored the record; the put goes on to the other holders, and settled() waits for it', async () => {
    const { store, dht } = testStore({ queryTimeoutMs: 60_000 })
    const [p0, p1, p2, p3] = peers as [PeerId, PeerId, PeerId, PeerId]
    // presence: a quorum of 3
    dht.putAnswers = [{ peer: p0, answer: 'stores' }, { peer: p1, answer: 'stores' }, { peer: p2, answer: 'stores' }, { peer: p3, answer: 'hangs' }]
    const caller = new AbortController()
    expect(await store.put(presenceKeyOf(alice), presenceOf(alice, 1), { signal: caller.signal })).toEqual({ replicas: 3, refused: 0 })
    // not cut short at the return: the query to the slow holder still runs
    expect(dht.puts[0]!.signal?.aborted).toBe(false)
    const pending = await Promise.race([store.settled().then(() => 'settled'), new Promise(resolve => { setImmediate(() => { resolve('still running') }) })])
    expect(pending).toBe('still running')
    caller.abort()
    await store.settled()
    expect(dht.puts[0]!.signal?.aborted).toBe(true)
  })

  it('waits for every holder of a name (registration reads every replica right after), and below the quorum for the whole put', async () => {
    const { store, dht } = testStore({ queryTimeoutMs: 50 })
    dht.putAnswers = [...peers.slice(0, 5).map(peer => ({ peer, answer: 'stores' as const })), { peer: peers[5]!, answer: 'hangs' }]
    expect(await store.put(userKey('alice'), claim(alice, 'alice'))).toEqual({ replicas: 5, refused: 0 })
    expect(dht.puts[0]!.signal?.aborted).toBe(true)
    dht.putAnswers = [{ peer: peers[0]!, answer: 'stores' }, { peer: peers[1]!, answer: 'stores' }, { peer: peers[2]!, answer: 'hangs' }]
    expect(await store.put(presenceKeyOf(alice), presenceOf(alice, 1))).toEqual({ replicas: 2, refused: 0 })
    expect(dht.puts[1]!.signal?.aborted).toBe(true)
  })

  it('passes on a DHT error that is not its time limit', async () => {
    const { store, dht } = testStore()
    dht.localPut = async () => { throw namedError('ClosedError', 'datastore closed') }
    await expect(store.put(presenceKeyOf(alice), presenceOf(alice, 1))).rejects.toMatchObject({ name: 'ClosedError' })
  })
})

describe('getAll and get', () => {
  it("ends with the caller's abort, never with a partial or empty answer, while its own time limit still returns what came", async () => {
    const { store, dht } = testStore()
    const key = presenceKeyOf(alice)
    dht.held.set(key, [{ from: peers[0]!, value: presenceOf(alice, 1) }])
    const gaveUp = new AbortController()
    // the caller aborts after the first replica answered; kad-dht then ends its query quietly
    dht.getError = undefined
    const events = store.getAll<PresencePayload>(key, { signal: gaveUp.signal })
    gaveUp.abort(new Error('the user gave up'))
    await expect(events).rejects.toThrow('the user gave up')
    await expect(store.put(key, presenceOf(alice, 2), { signal: gaveUp.signal })).rejects.toThrow('the user gave up')
    // a DHT error (not the caller's abort) keeps what was collected
    dht.getError = namedError('QueryError', 'Could not send correction')
    expect((await store.get<PresencePayload>(key))?.record.seq).toBe(1)
  })

  it('collects our copy and every valid replica, drops forged and malformed ones, and picks the highest sequence number', async () => {
    const { store, dht } = testStore()
    const key = presenceKeyOf(alice)
    await store.put(key, presenceOf(alice, 2))
    dht.held.set(key, [
      { from: peers[0]!, value: presenceOf(alice, 1) },
      { from: peers[1]!, value: presenceOf(alice, 4) },
      // mallory signing alice's key, random bytes, a record for another key, no record at all
      { from: peers[2]!, value: signed(key, 9, presence(), mallory) },
      { from: peers[3]!, value: new Uint8Array([0xde, 0xad]) },
      { from: peers[4]!, value: presenceOf(mallory, 9) },
      { from: peers[5]! },
      // a second answer from one peer does not count twice
      { from: peers[0]!, value: presenceOf(alice, 3) }
    ])
    const got = await store.getAll<PresencePayload>(key)
    expect(got.all.map(r => r.record.seq)).toEqual([2, 1, 4])
    expect(got.status).toBe('found')
    expect(got.best?.record.seq).toBe(4)
    expect(got.best?.payload.updatedAt).toBe(4)
    expect((await store.get(key))?.record.seq).toBe(4)
  })

  it('first come, first served: the owner most replicas hold wins a name, whatever the sequence numbers; a released name goes to the live claim', async () => {
    const { store, dht } = testStore()
    const key = userKey('alice')
    dht.held.set(key, [
      { from: peers[0]!, value: claim(alice, 'alice', 1) },
      { from: peers[1]!, value: claim(mallory, 'alice', 7) },
      { from: peers[2]!, value: claim(alice, 'alice', 1) }
    ])
    const got = await store.getAll<AccountPayload>(key)
    expect(got.all).toHaveLength(3)
    expect(Buffer.compare(got.best!.record.pub, alice.signPublic)).toBe(0)

    dht.held.set(key, [
      { from: peers[0]!, value: claim(alice, 'alice', 2, released('alice')) },
      { from: peers[1]!, value: claim(mallory, 'alice', 1) },
      { from: peers[2]!, value: claim(alice, 'alice', 2, released('alice')) },
      { from: peers[3]!, value: claim(alice, 'alice', 1) }
    ])
    expect(Buffer.compare((await store.get(key))!.record.pub, mallory.signPublic)).toBe(0)
  })

  it('finds nothing rather than a forgery (and a forgery is no answer: the read cannot tell)', async () => {
    const { store, dht } = testStore()
    const key = presenceKeyOf(alice)
    dht.held.set(key, [{ from: peers[0]!, value: signed(key, 7, presence(), mallory) }])
    expect(await store.getAll(key)).toEqual({ status: 'unknown', best: undefined, all: [], answers: { none: 0, failed: 1 } })
  })

  it('stops the query once a quorum of valid records is reached, our own copy included', async () => {
    const { store, dht } = testStore()
    const key = presenceKeyOf(alice)
    await store.put(key, presenceOf(alice, 1))
    dht.held.set(key, [
      { from: peers[0]!, value: new Uint8Array([1]) },
      { from: peers[1]!, value: presenceOf(alice, 2) },
      { from: peers[2]!, value: presenceOf(alice, 3) },
      { from: peers[3]!, value: presenceOf(alice, 4) }
    ])
    const got = await store.getAll(key, { quorum: 3 })
    expect(got.all.map(r => r.record.seq)).toEqual([1, 2, 3])
    expect(dht.gets[0]).toMatchObject({ yielded: 3, ended: true })

    // our own copy alone meets a quorum of 1: the DHT is not asked
    expect((await store.getAll(key, { quorum: 1 })).all).toHaveLength(1)
    expect(dht.gets).toHaveLength(1)
  })

  it('keeps what it collected when the query fails midway (a replica refusing our correction) and reads only PEER_RESPONSE records', async () => {
    const { store, dht } = testStore()
    const key = presenceKeyOf(alice)
    dht.held.set(key, [{ from: peers[0]!, value: presenceOf(alice, 5) }])
    dht.getError = namedError('StreamResetError')
    const got = await store.getAll(key)
    expect(got.best?.record.seq).toBe(5)

    // kad-dht's VALUE events repeat what PEER_RESPONSE carried: the store does not count them twice
    const { store: other, dht: otherDht } = testStore()
    otherDht.get = async function * () { yield valueEvent(peers[0]!, presenceOf(alice, 6)) }
    expect(await other.getAll(key)).toMatchObject({ status: 'unknown', best: undefined, all: [] })
  })

  it('passes a signal that combines the caller\'s with its time limit to the DHT', async () => {
    const { store, dht } = testStore({ queryTimeoutMs: 60_000 })
    const controller = new AbortController()
    await store.getAll(presenceKeyOf(alice), { signal: controller.signal })
    const signal = dht.gets[0]!.signal!
    expect(signal.aborted).toBe(false)
    controller.abort()
    expect(signal.aborted).toBe(true)
  })
})

describe('our own copy', () => {
  it('getLocal verifies the stored record and hides an expired one; storedValue returns the raw bytes', async () => {
    const { store, datastore, clock } = testStore({ recordTtlMs: 60_000 })
    const key = presenceKeyOf(alice)
    expect(await store.getLocal(key)).toBeUndefined()
    expect(await store.storedValue(key)).toBeUndefined()

    await store.put(key, presenceOf(alice, 1))
    expect((await store.getLocal(key))?.record.seq).toBe(1)
    clock.advance(60_001)
    expect(await store.getLocal(key)).toBeUndefined()

    // a forgery written straight into the datastore is shown raw, never as a record
    const forged = signed(key, 9, presence(), mallory)
    await datastore.put(dsKeyOf(key), storedForm(key, forged, clock.now()))
    expect(await store.getLocal(key)).toBeUndefined()
    expect(Buffer.compare((await store.storedValue(key))!, forged)).toBe(0)
  })
})

describe('the write guard', () => {
  it('first come, first served: a name is its first key\'s until released; an owner\'s update must raise the sequence number', async () => {
    const { store, datastore, clock } = testStore({ recordTtlMs: 60_000 })
    const key = userKey('alice')
    // what ChatDatastore does with every write of a DHT record: guard, then write
    const write = async (value: Uint8Array, k = key): Promise<void> => {
      const raw = storedForm(k, value, clock.now())
      await store.guard(dsKeyOf(k), raw)
      await datastore.put(dsKeyOf(k), raw)
    }
    const holder = async (): Promise<Uint8Array | undefined> => (await store.getLocal(key))?.record.pub

    await write(claim(alice, 'alice', 1))
    await expect(write(claim(mallory, 'alice', 9))).rejects.toMatchObject({ name: 'RecordConflictError' })
    await write(claim(alice, 'alice', 1)) // the same record again
    await write(claim(alice, 'alice', 2))
    await expect(write(claim(alice, 'alice', 1))).rejects.toMatchObject({ name: 'RecordConflictError' })
    expect(await holder()).toEqual(alice.signPublic)

    await write(claim(alice, 'alice', 3, released('alice')))
    await write(claim(mallory, 'alice', 1))
    expect(await holder()).toEqual(mallory.signPublic)

    // an expired record blocks nobody
    clock.advance(60_001)
    await write(claim(alice, 'alice', 1))
    expect(await holder()).toEqual(alice.signPublic)

    // the stateless checks run too
    await expect(write(presenceOf(alice, 1))).rejects.toMatchObject({ name: 'InvalidRecordError' })
    await expect(write(presenceOf(mallory, 1), presenceKeyOf(alice))).rejects.toMatchObject({ name: 'InvalidRecordError' })
  })

  it('isExpired: past the TTL by the store\'s clock, or unreadable', () => {
    const { store, clock } = testStore({ recordTtlMs: 1_000 })
    const key = presenceKeyOf(alice)
    const raw = storedForm(key, presenceOf(alice, 1), clock.now())
    expect(store.isExpired(raw)).toBe(false)
    clock.advance(1_000)
    expect(store.isExpired(raw)).toBe(false)
    clock.advance(1)
    expect(store.isExpired(raw)).toBe(true)
    expect(store.isExpired(new Uint8Array([0xff, 0x01]))).toBe(true)
  })
})
