/**
 * A put's targets: a closest-peers lookup read as it goes, stopped once the peers closest
 * to the key have answered; and the put that sends the record to them in order.
 */
import { describe, it, expect, beforeAll } from 'vitest'
import { EventTypes, MessageType, type QueryEvent } from '@libp2p/kad-dht'
import { defaultLogger } from '@libp2p/logger'
import { fromString as bytesFromString } from 'uint8arrays'
import { generateAccountKeys, userKey } from '@conf-chat/protocol'
import type { PeerId } from '@libp2p/interface'
import { findPutTargets, kadPutTo, CONVERGED_CLOSEST, PUT_HOLDERS, type PutOutcome } from '../../../src/network/records/index.js'
import { MAX_UNCHECKED_TARGETS } from '../../../src/network/records/put-targets.js'
import { byDistanceTo } from '../fixtures/kad-distance.js'
import { testStore, peerIds, presenceKeyOf, presenceOf, claim, peerResponse } from './fixtures.js'

const alice = generateAccountKeys()
const key = presenceKeyOf(alice)
const log = defaultLogger().forComponent('test')
const path = { index: 0, queued: 0, running: 0, total: 1 }

const asked = (to: PeerId): QueryEvent => ({ name: 'SEND_QUERY', type: EventTypes.SEND_QUERY, to, messageName: 'FIND_NODE', messageType: MessageType.FIND_NODE, path })
const answered = (from: PeerId, closer: PeerId[] = []): QueryEvent => ({
  name: 'PEER_RESPONSE', type: EventTypes.PEER_RESPONSE, from, messageName: 'FIND_NODE', messageType: MessageType.FIND_NODE,
  closer: closer.map(id => ({ id, multiaddrs: [] })), providers: [], path
})
const failed = (from: PeerId): QueryEvent => ({ name: 'QUERY_ERROR', type: EventTypes.QUERY_ERROR, from, error: new Error('dial failed'), path })

/** A stub of kad-dht's getClosestPeers that yields `events`, then hangs until its signal aborts (a query that would go on). */
function lookup (events: QueryEvent[]): { dht: { getClosestPeers: (key: Uint8Array, options?: { signal?: AbortSignal }) => AsyncGenerator<QueryEvent> }, yielded: () => number, signal: () => AbortSignal | undefined } {
  let n = 0
  let seen: AbortSignal | undefined
  return {
    dht: {
      async * getClosestPeers (_key, options = {}) {
        seen = options.signal
        for (const ev of events) { n++; yield ev }
        if (options.signal?.aborted !== true) await new Promise(resolve => { options.signal?.addEventListener('abort', resolve, { once: true }) })
      }
    },
    yielded: () => n,
    signal: () => seen
  }
}

let self: PeerId
/** peers ordered by their distance to the key, closest first */
let byDistance: PeerId[]
beforeAll(async () => {
  const [first, ...rest] = await peerIds(31)
  self = first!
  byDistance = byDistanceTo(key, rest)
})

describe('a put\'s targets', () => {
  it('stop the lookup once the closest peers named have all answered, and come closest first without the peers that failed', async () => {
    const p = byDistance
    const far = p[11]!
    const events = [
      asked(far), answered(far, [...p.slice(0, 11), self]),
      // the third closest cannot be reached: the five closest left are 0, 1, 3, 4, 5
      failed(p[2]!), answered(p[0]!), answered(p[1]!), answered(p[3]!), answered(p[4]!),
      answered(p[7]!),
      answered(p[5]!),
      // the query would go on: the lookup must not wait for it
      answered(p[6]!)
    ]
    const stub = lookup(events)
    const targets = await findPutTargets({ self, dht: stub.dht, log }, key)
    expect(CONVERGED_CLOSEST).toBe(5)
    expect(stub.yielded()).toBe(events.length - 1)
    // the query's RPCs still in flight end with it
    expect(stub.signal()?.aborted).toBe(true)
    expect(targets.map(String)).toEqual([0, 1, 3, 4, 5, 6, 7, 8, 9, 10, 11].map(i => p[i]!.toString()))
  })

  it('are every peer that did not fail when the query ends before that (fewer servers than the closest asked for)', async () => {
    const [a, b, c] = byDistance.slice(0, 3) as [PeerId, PeerId, PeerId]
    const events = [asked(c), answered(c, [a, b, self]), answered(a), failed(b)]
    const stub = {
      async * getClosestPeers () { yield * events }
    }
    expect((await findPutTargets({ self, dht: stub, log }, key)).map(String)).toEqual([a, c].map(String))
  })

  it('take at most 15 peers that were only named, so made-up ids close to the key do not crowd out the peers that answered', async () => {
    const p = byDistance
    // a hostile answer names 20 ids closer than any real peer; kad-dht could dial none of them
    const events = [answered(p[29]!, p.slice(0, 20)), ...p.slice(25, 29).map(peer => answered(peer))]
    const stub = { async * getClosestPeers () { yield * events } }
    const targets = await findPutTargets({ self, dht: stub, log }, key)
    expect(MAX_UNCHECKED_TARGETS).toBe(15)
    expect(targets.map(String)).toEqual([...p.slice(0, 15), ...p.slice(25, 30)].map(String))
  })

  it('end with the caller\'s abort rather than with what the lookup found so far', async () => {
    const stub = lookup([answered(byDistance[9]!, byDistance.slice(0, 8))])
    const controller = new AbortController()
    const finding = findPutTargets({ self, dht: stub.dht, log }, key, { signal: controller.signal })
    controller.abort()
    await expect(finding).rejects.toMatchObject({ name: 'AbortError' })
  })
})

describe('a put to the targets of its lookup', () => {
  it('sends the record in the targets\' order, ten at a time, until twenty stored it; one that fails or refuses makes room for the next', async () => {
    const targets = byDistance.slice(0, 30)
    const answers = new Map<string, PutOutcome>([[targets[1]!.toString(), 'refused'], [targets[4]!.toString(), 'failed']])
    const sent: string[] = []
    let inFlight = 0
    let maxInFlight = 0
    const { store, dht } = testStore({}, {
      findTargets: async () => targets,
      putTo: async (to) => {
        sent.push(to.toString())
        maxInFlight = Math.max(maxInFlight, ++inFlight)
        await new Promise(resolve => setImmediate(resolve))
        inFlight--
        return answers.get(to.toString()) ?? 'stored'
      }
    })
    const result = await store.put(key, presenceOf(alice, 1))
    // returned at the presence quorum, while the rest went on
    expect(result.replicas).toBeGreaterThanOrEqual(3)
    expect(result.replicas).toBeLessThan(PUT_HOLDERS)
    await store.settled()
    expect(maxInFlight).toBe(10)
    expect(sent).toEqual(targets.slice(0, PUT_HOLDERS + 2).map(String))
    // kad-dht's put (and its own lookup) was not used; our own copy was stored first
    expect(dht.puts).toEqual([])
    expect((await store.getLocal(key))?.record.seq).toBe(1)
    // the 20 that stored it are the key's holders for its next put within a minute
    sent.length = 0
    expect(await store.put(key, presenceOf(alice, 2))).toMatchObject({ replicas: expect.any(Number) })
    await store.settled()
    expect(sent.sort()).toEqual(targets.slice(0, PUT_HOLDERS + 2).filter((_, i) => i !== 1 && i !== 4).map(String).sort())
  })

  it('waits for the whole put below its quorum, and a name keeps kad-dht\'s put', async () => {
    const targets = byDistance.slice(0, 2)
    let looked = 0
    const { store, dht } = testStore({}, { findTargets: async () => { looked++; return targets }, putTo: async () => 'stored' })
    expect(await store.put(key, presenceOf(alice, 1))).toEqual({ replicas: 2, refused: 0 })
    expect(looked).toBe(1)
    expect(dht.puts).toEqual([])
    // registration reads every replica of a name right after its put: kad-dht's whole lookup
    dht.putAnswers = [{ peer: byDistance[0]!, answer: 'stores' }]
    expect(await store.put(userKey('alice'), claim(alice, 'alice'))).toEqual({ replicas: 1, refused: 0 })
    expect(looked).toBe(1)
    expect(dht.puts.map(p => p.key)).toEqual([userKey('alice')])
  })
})

describe('a PUT_VALUE to one holder (kad-dht\'s RPC client)', () => {
  it('is stored when echoed back, refused when the holder ends it once sent, and failed when the peer could not be reached', async () => {
    const [peer] = byDistance as [PeerId]
    const value = presenceOf(alice, 1)
    let script: QueryEvent[] = []
    const dht = { network: { async * sendRequest () { yield * script } } }
    const putTo = kadPutTo(dht)!
    const sent: QueryEvent = { name: 'SEND_QUERY', type: EventTypes.SEND_QUERY, to: peer, messageName: 'PUT_VALUE', messageType: MessageType.PUT_VALUE, path }
    const echo: QueryEvent = {
      name: 'PEER_RESPONSE', type: EventTypes.PEER_RESPONSE, from: peer, messageName: 'PUT_VALUE', messageType: MessageType.PUT_VALUE,
      closer: [], providers: [], record: { key: bytesFromString(key), value } as any, path
    }
    script = [sent, echo]
    expect(await putTo(peer, key, value, {})).toBe('stored')
    script = [sent, failed(peer)]
    expect(await putTo(peer, key, value, {})).toBe('refused')
    // no stream was opened: the dial failed, or the id has no address
    script = [failed(peer)]
    expect(await putTo(peer, key, value, {})).toBe('failed')
  })
})

describe('a read', () => {
  it('ends once the 20 peers closest to the key have answered, when no holder is left to ask: absent if the closest said none, else found with the stale holders corrected', async () => {
    const p = byDistance
    const none = (from: PeerId): QueryEvent => ({ ...peerResponse(from, 'GET_VALUE', key), closer: [] })
    /** a get whose first answer names the 23 closest; each of `answers` after it; then it would go on until aborted */
    const script = (answers: QueryEvent[]): { get: (keyBytes: Uint8Array, options?: { signal?: AbortSignal }) => AsyncGenerator<QueryEvent>, yielded: () => number } => {
      let n = 0
      return {
        async * get (_keyBytes, options = {}) {
          for (const ev of [{ ...none(p[29]!), closer: [...p.slice(0, 23), self].map(id => ({ id, multiaddrs: [] })) }, ...answers, none(p[22]!)]) { n++; yield ev }
          if (options.signal?.aborted !== true) await new Promise(resolve => { options.signal?.addEventListener('abort', resolve, { once: true }) })
        },
        yielded: () => n
      }
    }
    // one of the 20 closest was asked but has not answered yet: the read goes on (until its time limit here)
    const asking: QueryEvent = { name: 'SEND_QUERY', type: EventTypes.SEND_QUERY, to: p[5]!, messageName: 'GET_VALUE', messageType: MessageType.GET_VALUE, path }
    let stub = script([asking, ...p.slice(0, 21).filter((_, i) => i !== 5).map(none)])
    const { store: limited, dht: limitedDht } = testStore({ queryTimeoutMs: 50 }, { peerId: self })
    limitedDht.get = stub.get
    expect((await limited.read(key)).status).toBe('unknown')
    stub = script([failed(p[3]!), ...p.slice(0, 21).filter((_, i) => i !== 3).map(none)])
    const { store, dht } = testStore({}, { peerId: self })
    dht.get = stub.get
    expect((await store.read(key)).status).toBe('absent')
    // the far answer, the 20 closest that did not fail (one of the 21 closest failed), and no more
    expect(stub.yielded()).toBe(22)

    const { store: other, dht: otherDht, correctionsSent, corrections } = testStore({}, { peerId: self })
    stub = script([
      { ...peerResponse(p[0]!, 'GET_VALUE', key, presenceOf(alice, 1)), closer: [] },
      { ...peerResponse(p[1]!, 'GET_VALUE', key, presenceOf(alice, 2)), closer: [] },
      ...p.slice(2, 20).map(none)
    ])
    otherDht.get = stub.get
    // presence: a quorum of 3, which the two holders do not reach
    const got = await other.read(key)
    expect(got).toMatchObject({ status: 'found', best: { record: { seq: 2 } } })
    expect(stub.yielded()).toBe(21)
    // kad-dht corrects stale holders only at its query's end, which this read did not wait for
    await correctionsSent(1)
    expect(corrections.map(c => c.to.toString())).toEqual([p[0]!.toString()])
  })

  it('of every replica (a name) runs to the query\'s end: a contest must not hide behind the 20 closest', async () => {
    const p = byDistance
    const none = (from: PeerId): QueryEvent => ({ ...peerResponse(from, 'GET_VALUE', key), closer: [] })
    const events = [{ ...none(p[29]!), closer: p.slice(0, 25).map(id => ({ id, multiaddrs: [] })) }, ...p.slice(0, 25).map(none)]
    let yielded = 0
    const { store, dht } = testStore({ queryTimeoutMs: 60_000 }, { peerId: self })
    dht.get = async function * () { for (const ev of events) { yielded++; yield ev } }
    expect((await store.getAll(key)).status).toBe('absent')
    expect(yielded).toBe(events.length)
  })
})
