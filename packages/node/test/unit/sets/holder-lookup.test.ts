/**
 * Finding a set's holders over a stub of kad-dht's closest-peers query: the lookup stops
 * once the peers a reader asks (2R) have answered, and the holders are those that
 * answered, closest to the set's key first.
 */
import { describe, it, expect, beforeAll } from 'vitest'
import { EventTypes, MessageType, type QueryEvent } from '@libp2p/kad-dht'
import { defaultLogger } from '@libp2p/logger'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { PeerId } from '@libp2p/interface'
import { byDistanceTo } from '../fixtures/kad-distance.js'
import { HolderLookup } from '../../../src/network/sets/holder-lookup.js'

const setKey = '/cc-mailbox/holder-lookup-test'
const path = { index: 0, queued: 0, running: 0, total: 1 }
const answered = (from: PeerId, closer: PeerId[] = []): QueryEvent => ({
  name: 'PEER_RESPONSE', type: EventTypes.PEER_RESPONSE, from, messageName: 'FIND_NODE', messageType: MessageType.FIND_NODE,
  closer: closer.map(id => ({ id, multiaddrs: [] })), providers: [], path
})

let self: PeerId
/** peers by their distance to the set's key (kad-dht: SHA-256 ids, XOR), closest first */
let byDistance: PeerId[]
beforeAll(async () => {
  const [first, ...rest] = await Promise.all(Array.from({ length: 16 }, async () => peerIdFromPrivateKey(await generateKeyPair('Ed25519'))))
  self = first!
  byDistance = byDistanceTo(setKey, rest)
})

describe('a set\'s holders', () => {
  it('are the peers that answered, closest first, and the lookup stops once the 2R closest named have answered', async () => {
    const p = byDistance
    let yielded = 0
    let querySignal: AbortSignal | undefined
    // R = 2: a reader asks the 4 closest
    const events = [answered(p[10]!, p.slice(0, 8)), answered(p[3]!), answered(p[0]!), answered(p[2]!), answered(p[1]!), answered(p[6]!)]
    const dht = {
      getMode: () => 'client' as const,
      async * getClosestPeers (_key: Uint8Array, options: { signal?: AbortSignal } = {}) {
        querySignal = options.signal
        for (const ev of events) { yielded++; yield ev }
        if (options.signal?.aborted !== true) await new Promise(resolve => { options.signal?.addEventListener('abort', resolve, { once: true }) })
      }
    }
    const lookup = new HolderLookup({
      peerId: self, dht, network: { getConnections: () => [] }, isDhtServer: () => true, logger: defaultLogger(), shutdown: () => new AbortController().signal
    }, { replicas: 2, queryTimeoutMs: 10_000 })
    const holders = await lookup.findHolders(setKey, { count: 5 })
    expect(yielded).toBe(5)
    expect(querySignal?.aborted).toBe(true)
    expect(holders.map(String)).toEqual([p[0], p[1], p[2], p[3], p[10]].map(String))
  })
})
