/**
 * Reads designed for the record type, over a stub DHT: a read stops at its namespace's
 * quorum, the highest sequence number wins, stale holders are corrected in the
 * background (at most once per key within an interval), and the three outcomes found,
 * absent and unknown stay apart.
 */
import { describe, it, expect, beforeAll } from 'vitest'
import { generateAccountKeys, userKey, type PresencePayload } from '@conf-chat/protocol'
import type { PeerId } from '@libp2p/interface'
import { testStore, peerIds, claim, presenceKeyOf, presenceOf } from './fixtures.js'
import { READ_QUORUMS, ABSENT_CLOSEST, ABSENT_MIN_ANSWERS, CORRECTION_INTERVAL_MS } from '../../../src/network/records/index.js'
import { kadId, compareDistance } from '../../../src/network/records/quorums.js'
import { CORRECTIONS_IN_FLIGHT } from '../../../src/network/records/corrections.js'

const alice = generateAccountKeys()
const bob = generateAccountKeys()
const mallory = generateAccountKeys()

let peers: PeerId[]
beforeAll(async () => { peers = await peerIds(10) })

/** `ids` sorted by Kademlia distance to `key`, closest first. */
const closestFirst = (key: string, ids: PeerId[]): PeerId[] => {
  const target = kadId(new TextEncoder().encode(key))
  return [...ids].sort((a, b) => compareDistance(target, kadId(a.toMultihash().bytes), kadId(b.toMultihash().bytes)))
}

/** Answers from peers[from..] holding presence records of `keys` with these sequence numbers. */
const holding = (keys: typeof alice, seqs: number[], from = 0): Array<{ from: PeerId, value: Uint8Array }> =>
  seqs.map((seq, i) => ({ from: peers[from + i]!, value: presenceOf(keys, seq) }))

describe('quorum', () => {
  it('stops at the namespace\'s quorum of valid records, never waiting for every holder; getAll reads them all', async () => {
    const { store, dht } = testStore()
    const key = presenceKeyOf(alice)
    expect(READ_QUORUMS['cc-presence']).toBe(3)
    dht.held.set(key, holding(alice, [1, 1, 1, 1, 1, 1, 1, 1]))
    const got = await store.read<PresencePayload>(key)
    expect(got.status).toBe('found')
    expect(got.all).toHaveLength(READ_QUORUMS['cc-presence'])
    expect(dht.gets[0]).toMatchObject({ yielded: 3, ended: true })

    expect((await store.getAll(key)).all).toHaveLength(8)
    expect(dht.gets[1]).toMatchObject({ yielded: 8, ended: true })
  })

  it('the highest sequence number among the quorum wins, whatever the order the holders answered in', async () => {
    const { store, dht } = testStore()
    const key = presenceKeyOf(alice)
    dht.held.set(key, holding(alice, [2, 5, 3, 9]))
    const got = await store.read<PresencePayload>(key)
    expect(got.all.map(r => r.record.seq)).toEqual([2, 5, 3])
    expect(got.best?.record.seq).toBe(5)
    expect((await store.get<PresencePayload>(key))?.payload.updatedAt).toBe(5)
  })
})

describe('correcting stale holders', () => {
  it('sends the chosen record to each holder that answered with an older one, and replaces our own older copy', async () => {
    const { store, dht, corrections, correctionsSent } = testStore()
    const key = presenceKeyOf(alice)
    await store.put(key, presenceOf(alice, 1))
    dht.held.set(key, holding(alice, [4, 2, 4, 4, 4]))
    const got = await store.read<PresencePayload>(key)
    expect(got.best?.record.seq).toBe(4)
    await correctionsSent(1)
    // the holder with seq 2 got the one with seq 4, byte for byte; the others already had it
    expect(corrections.map(c => c.to.toString())).toEqual([peers[1]!.toString()])
    expect(Buffer.compare(corrections[0]!.value, presenceOf(alice, 4))).toBe(0)
    expect(corrections[0]!.key).toBe(key)
    await expect.poll(async () => (await store.getLocal(key))?.record.seq).toBe(4)
    expect(store.correctionCounts).toMatchObject({ sent: 2, stored: 2, failed: 0 })
  })

  it('corrects a key at most once within the interval, however often it is read', async () => {
    const { store, dht, clock, corrections, correctionsSent } = testStore()
    const key = presenceKeyOf(alice)
    dht.held.set(key, holding(alice, [3, 1, 3]))
    await store.read(key)
    await correctionsSent(1)
    for (let i = 0; i < 5; i++) await store.read(key)
    clock.advance(CORRECTION_INTERVAL_MS - 1)
    await store.read(key)
    expect(corrections).toHaveLength(1)
    expect(store.correctionCounts.skipped).toBe(6)
    clock.advance(1)
    await store.read(key)
    await correctionsSent(2)
    expect(corrections).toHaveLength(2)
  })

  it('runs only a few corrections at once: a read that finds them busy skips its own', async () => {
    const { store, dht, corrections } = testStore()
    // corrections that never finish: the in-flight limit is reached
    let release!: () => void
    const blocked = new Promise<void>(resolve => { release = resolve })
    const keys = Array.from({ length: CORRECTIONS_IN_FLIGHT + 1 }, () => generateAccountKeys())
    ;(store as any).corrections.components.correct = async (to: PeerId, key: string, value: Uint8Array) => {
      corrections.push({ to, key, value })
      await blocked
      return true
    }
    for (const k of keys) {
      dht.held.set(presenceKeyOf(k), holding(k, [2, 1, 2]))
      await store.read(presenceKeyOf(k))
    }
    expect(corrections).toHaveLength(CORRECTIONS_IN_FLIGHT)
    expect(store.correctionCounts.skipped).toBe(1)
    release()
  })

  it('leaves the correcting to kad-dht when the query ran to its end, and never sends one owner\'s record over another owner\'s claim', async () => {
    const { store, dht, corrections } = testStore()
    const key = presenceKeyOf(alice)
    // fewer holders than the quorum: the query ends by itself (kad-dht's get corrects them)
    dht.held.set(key, holding(alice, [2, 1]))
    expect((await store.read(key)).best?.record.seq).toBe(2)

    // a name race: alice's claim wins by count; mallory's holder is not "stale", it holds another owner's claim
    const name = userKey('alice')
    dht.held.set(name, [
      ...[0, 1, 2, 3, 4, 5].map(i => ({ from: peers[i]!, value: claim(alice, 'alice', 1) })),
      { from: peers[6]!, value: claim(mallory, 'alice', 1) }
    ])
    const got = await store.read(name)
    expect(got.all).toHaveLength(READ_QUORUMS['cc-user'])
    expect(Buffer.compare(got.best!.record.pub, alice.signPublic)).toBe(0)
    await Promise.resolve()
    expect(corrections).toEqual([])
    expect(store.correctionCounts.sent).toBe(0)
  })
})

describe('found, absent, unknown', () => {
  it('absent: the query ended by itself and enough holders answered that they have no record', async () => {
    const { store, dht } = testStore()
    const key = presenceKeyOf(bob)
    dht.held.set(key, Array.from({ length: ABSENT_MIN_ANSWERS }, (_, i) => ({ from: peers[i]! })))
    expect(await store.read(key)).toEqual({ status: 'absent', best: undefined, all: [], answers: { none: ABSENT_MIN_ANSWERS, failed: 0 } })
    expect(await store.get(key)).toBeUndefined()
    // in a network smaller than that, every peer asked answering "none" is enough
    dht.held.set(key, [{ from: peers[0]! }])
    expect((await store.read(key)).status).toBe('absent')
  })

  it('unknown: the time limit passed with no answer (get throws UnknownRecordError, never "no record")', async () => {
    const { store, dht } = testStore({ queryTimeoutMs: 50 })
    const key = presenceKeyOf(bob)
    dht.held.set(key, [{ from: peers[0]!, hangs: true }])
    expect(await store.read(key)).toEqual({ status: 'unknown', best: undefined, all: [], answers: { none: 0, failed: 0 } })
    await expect(store.get(key)).rejects.toMatchObject({ name: 'UnknownRecordError', key })
    // answers without a record before the limit do not make it "absent": the query did not end
    dht.held.set(key, [{ from: peers[0]! }, { from: peers[1]! }, { from: peers[2]! }, { from: peers[3]!, hangs: true }])
    expect((await store.read(key)).status).toBe('unknown')
  })

  it('unknown: too few of the peers closest to the key answered, or nobody was asked', async () => {
    const { store, dht } = testStore()
    const key = presenceKeyOf(bob)
    // 1 of 3 tried answered: fewer than ABSENT_MIN_ANSWERS and not every peer tried
    dht.held.set(key, [{ from: peers[0]! }, { from: peers[1]!, fails: true }, { from: peers[2]!, fails: true }])
    expect(await store.read(key)).toMatchObject({ status: 'unknown', answers: { none: 1, failed: 2 } })
    // the three peers closest to the key failed: answers from further away do not make it absent
    const byDistance = closestFirst(key, peers)
    dht.held.set(key, byDistance.map((from, i) => ({ from, fails: i < 3 })).reverse()) // the farthest answer first
    expect(await store.read(key)).toMatchObject({ status: 'unknown', answers: { none: byDistance.length - 3, failed: 3 } })
    // a peer with no other DHT server: nothing asked, nothing known
    dht.held.set(key, [])
    expect((await store.read(key)).status).toBe('unknown')
    await expect(store.get(key)).rejects.toMatchObject({ name: 'UnknownRecordError' })
  })

  it('absent when the closest peers to the key answered "none", however many further away failed (a busy network)', async () => {
    const { store, dht } = testStore()
    const key = presenceKeyOf(bob)
    const byDistance = closestFirst(key, peers)
    expect(ABSENT_CLOSEST).toBe(5)
    // of the 5 closest, 3 answered "none"; every other peer failed
    dht.held.set(key, byDistance.map((from, i) => ({ from, fails: !(i === 0 || i === 2 || i === 4) })).reverse())
    expect(await store.read(key)).toMatchObject({ status: 'absent', answers: { none: 3, failed: byDistance.length - 3 } })
    // only 2 of the 5 closest answered: unknown
    dht.held.set(key, byDistance.map((from, i) => ({ from, fails: !(i === 0 || i === 4 || i >= 5) })).reverse())
    expect((await store.read(key)).status).toBe('unknown')
  })

  it('found under the time limit: a valid record is an answer even if the quorum was not reached', async () => {
    const { store, dht } = testStore({ queryTimeoutMs: 50 })
    const key = presenceKeyOf(alice)
    dht.held.set(key, [...holding(alice, [6]), { from: peers[1]!, hangs: true }])
    const got = await store.read<PresencePayload>(key)
    expect(got.status).toBe('found')
    expect(got.best?.record.seq).toBe(6)
  })
})
