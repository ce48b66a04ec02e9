/**
 * The connection trimmer on real libp2p nodes (loopback TCP, one process): a peer over
 * its high water mark closes idle connections down to its low water mark once their
 * grace period is over; it keeps the connection of a stream in use, those of the DHT
 * peers kad-dht keeps alive, and those of peers that keep it alive (they dial again at
 * once); and the network keeps working (a DHT client reads through it).
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { createLibp2p, type Libp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { generateAccountKeys, keyIdOf, createSignedRecord, encodeSignedRecord, presenceKey } from '@conf-chat/protocol'
import type { Stream } from '@libp2p/interface'
import type { ChatPeer } from '@conf-chat/node/network'
import { startNetwork, type TestNetwork } from './helpers/network.js'
import { eventually } from './helpers/chat.js'

const HOLD_PROTOCOL = '/conf-chat-test/hold/1.0.0'
const TRIM = { lowWater: 2, highWater: 3, gracePeriodMs: 300, recheckMs: 300 }
const VISITORS = 6

describe('a peer with more connections than its high water mark', () => {
  let net: TestNetwork | undefined
  let hub: ChatPeer
  let server: ChatPeer
  let client: ChatPeer
  const visitors: Libp2p[] = []
  let held: Stream | undefined
  const { key, value } = (() => {
    const keys = generateAccountKeys()
    const key = presenceKey(keyIdOf(keys.signPublic))
    const payload = { username: 'someone', status: 'online', peerId: 'x', addrs: [], expiresAt: Date.parse('2100-01-01'), updatedAt: 1 }
    return { key, value: encodeSignedRecord(createSignedRecord(key, 1, payload, keys)) }
  })()

  beforeAll(async () => {
    // the hub (the network's first peer) trims; a DHT server and a DHT client join through it
    net = await startNetwork(0, { connections: TRIM })
    hub = net.supernode
    await hub.libp2p.handle(HOLD_PROTOCOL, () => {}) // the hub's side stays open, read by nobody
    const roomy = { connections: { lowWater: 100, highWater: 100 } }
    server = await net.addPeer(roomy)
    await server.records.put(key, value)
    client = await net.addPeer({ ...roomy, clientMode: true })
    // plain libp2p nodes (no DHT) dial the hub; the first keeps a stream open, as a chat does
    for (let i = 0; i < VISITORS; i++) {
      const node = await createLibp2p({ transports: [tcp()], connectionEncrypters: [noise()], streamMuxers: [yamux()] })
      visitors.push(node)
      await node.dial(hub.multiaddrs)
    }
    held = await visitors[0]!.dialProtocol(hub.multiaddrs, HOLD_PROTOCOL)
  }, 120_000)
  afterAll(async () => {
    await Promise.allSettled(visitors.map(async v => { await v.stop() }))
    await net?.cleanup()
  }, 60_000)

  it('closes idle connections down to the low water mark once they are past their grace period, and keeps those in use or kept alive', async () => {
    const connected = (p: { peerId: ChatPeer['peerId'] }): boolean => hub.libp2p.getConnections(p.peerId).length > 0
    await eventually(() => visitors.slice(1).every(v => !connected(v)), 20_000, 50)
    expect(hub.trimStats.closed).toBeGreaterThanOrEqual(VISITORS - 1)
    // kept: the visitor with a stream in use, the DHT server (kad-dht keeps its closest
    // peers alive) and the DHT client (the hub is one of its closest: it dials again)
    expect(connected(visitors[0]!)).toBe(true)
    expect(held?.status).toBe('open')
    expect(connected(server)).toBe(true)
    await eventually(() => connected(client), 5_000, 50)
    expect(hub.libp2p.getConnections().length).toBeLessThanOrEqual(3)
  })

  it('leaves the network working: the DHT client reads a record through the hub', async () => {
    const got = await client.records.get(key)
    expect(got?.value).toEqual(value)
  })
})
