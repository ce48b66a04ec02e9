/**
 * bench:scale's lookup counters (scripts/lib/lookup-trace.mjs): rounds follow who told
 * the lookup of whom, and on real peers (loopback TCP, one process) a traced kad-dht
 * read and write still work and are counted.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { generateAccountKeys, keyIdOf, createSignedRecord, encodeSignedRecord, presenceKey } from '@conf-chat/protocol'
import { startNetwork, type TestNetwork } from './helpers/network.js'
// @ts-expect-error a plain ES module of the benchmark scripts, without types
import { LookupTrace, sumTraces, traceLookups } from '../scripts/lib/lookup-trace.mjs'

const id = (s: string): { toString: () => string } => ({ toString: () => s })
const send = (to: string, messageName = 'GET_VALUE'): object => ({ name: 'SEND_QUERY', to: id(to), messageName })
const answer = (from: string, closer: string[]): object => ({ name: 'PEER_RESPONSE', from: id(from), closer: closer.map(c => ({ id: id(c) })) })

describe('lookup trace', () => {
  it('counts a hop for each peer first named by an answer, and every query sent', () => {
    const t = new LookupTrace('get')
    for (const ev of [
      send('a'), send('b'), // round 1: from our routing table
      answer('a', ['c', 'b']), // c: round 2 (b was round 1 already)
      send('c'),
      answer('b', ['c', 'd']), // c keeps round 2; d: round 2
      answer('c', ['e']), // e: round 3
      send('d'), send('e'),
      { name: 'QUERY_ERROR', from: id('e') }
    ]) t.observe(ev)
    expect(t.toJSON()).toMatchObject({ kind: 'get', rpcs: 5, lookupRpcs: 5, rounds: 3, errors: 1, lookupMs: undefined })
  })

  it('times opening each RPC\'s stream, dialing or not, apart from its answer, and a put\'s lookup until its first PUT_VALUE', () => {
    let clock = 1000
    const t = new LookupTrace('put', { isConnected: (peer: { toString: () => string }) => peer.toString() === 'near', now: () => clock })
    const at = (ms: number, ev: object): void => { clock = 1000 + ms; t.observe(ev) }
    at(0, { name: 'DIAL_PEER', peer: id('near') })
    at(1, { name: 'DIAL_PEER', peer: id('far') })
    at(3, send('near', 'FIND_NODE')) // a stream on the connection we had: 3 ms
    at(41, send('far', 'FIND_NODE')) // dialed first: 40 ms
    at(13, answer('near', ['x'])) // 10 ms after its request
    at(61, answer('far', [])) // 20 ms
    at(70, { name: 'DIAL_PEER', peer: id('x') })
    at(75, send('x', 'FIND_NODE'))
    at(76, { name: 'QUERY_ERROR', from: id('x') }) // no answer: no answer time
    at(80, { name: 'DIAL_PEER', peer: id('near') })
    at(82, send('near', 'PUT_VALUE')) // the store phase: not a lookup RPC
    at(90, send('far', 'PUT_VALUE'))
    expect(t.toJSON()).toMatchObject({
      rpcs: 5,
      lookupRpcs: 3,
      lookupMs: 82,
      rpcMs: { openConnected: [3], openDialed: [40, 5], answer: [10, 20] }
    })
  })

  it('adds no round for the PUT_VALUE messages of a put', () => {
    const t = new LookupTrace('put')
    for (const ev of [send('a', 'FIND_NODE'), answer('a', ['b']), send('b', 'FIND_NODE'), send('b', 'PUT_VALUE'), send('x', 'PUT_VALUE')]) t.observe(ev)
    expect(t.toJSON()).toMatchObject({ rpcs: 4, lookupRpcs: 2, rounds: 2 })
  })
})

describe('traced lookups on a supernode and 5 peers', () => {
  let net: TestNetwork | undefined

  beforeAll(async () => { net = await startNetwork(5) }, 120_000)
  afterAll(async () => { await net?.cleanup() }, 60_000)

  it('a traced put and read of another peer work and are counted', async () => {
    const [writer, , , , reader] = net!.peers
    const w = traceLookups(writer!.libp2p.services.dht)
    const r = traceLookups(reader!.libp2p.services.dht)
    const keys = generateAccountKeys()
    const key = presenceKey(keyIdOf(keys.signPublic))
    const value = encodeSignedRecord(createSignedRecord(key, 1, { username: 'someone', status: 'online', peerId: 'x', addrs: [], expiresAt: Date.parse('2100-01-01'), updatedAt: 1 }, keys))

    const put = await writer!.records.put(key, value)
    expect(put.replicas).toBeGreaterThan(0)
    const putTrace = sumTraces(w.take())
    expect(putTrace.lookups).toBe(1)
    expect(putTrace.lookupRpcs).toBeGreaterThan(0)
    // one PUT_VALUE per replica at least, on top of the lookup's FIND_NODEs
    expect(putTrace.rpcs).toBeGreaterThanOrEqual(putTrace.lookupRpcs + put.replicas)
    expect(putTrace.rounds).toBeGreaterThanOrEqual(1)
    // every lookup RPC's stream open is timed (through kad-dht's onProgress), and the lookup ended before the put did
    const { openConnected, openDialed, answer } = putTrace.rpcMs
    expect(openConnected.length + openDialed.length).toBe(putTrace.lookupRpcs)
    expect(answer.length).toBeGreaterThan(0)
    expect(answer.length).toBeLessThanOrEqual(putTrace.lookupRpcs)
    expect(putTrace.lookupMs).toBeGreaterThan(0)

    // the reader may hold a replica itself (5 peers, k = 20): a quorum of 2 makes the read ask the network
    const got = await reader!.records.read(key, { quorum: 2 })
    expect(got.status).toBe('found')
    expect(Buffer.compare(Buffer.from(got.best!.value), Buffer.from(value))).toBe(0)
    const getTrace = sumTraces(r.take())
    expect(getTrace.lookups).toBe(1)
    expect(getTrace.rpcs).toBeGreaterThan(0)
    expect(getTrace.rounds).toBeGreaterThanOrEqual(1)
    expect(getTrace.rounds).toBeLessThanOrEqual(getTrace.rpcs)
    // taken: nothing left over for the next operation
    expect(w.take()).toEqual([])
  }, 60_000)
})
