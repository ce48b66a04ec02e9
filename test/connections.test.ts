/**
 * The connection trimmer on real libp2p nodes (loopback TCP, one process): a peer over
 * its high water mark closes idle connections down to its low water mark once their
 * grace period is over, keeps the connection of a stream in use and those of the DHT
 * peers kad-dht keeps alive, and the peers whose connections were closed still read
 * from the DHT (they dial again).
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { generateAccountKeys, keyIdOf, createSignedRecord, encodeSignedRecord, presenceKey } from '@conf-chat/protocol'
import type { Stream } from '@libp2p/interface'
import type { ChatPeer } from '@conf-chat/node/network'
import { startNetwork, type TestNetwork } from './helpers/network.js'
import { eventually } from './helpers/chat.js'

const HOLD_PROTOCOL = '/conf-chat-test/hold/1.0.0'
const TRIM = { lowWater: 2, highWater: 3, gracePeriodMs: 300, recheckMs: 300 }
const CLIENTS = 6

describe('a peer with more connections than its high water mark', () => {
  let net: TestNetwork | undefined
  let hub: ChatPeer
  let server: ChatPeer
  let clients: ChatPeer[]
  let held: Stream | undefined
  const { key, value } = (() => {
    const keys = generateAccountKeys()
    const key = presenceKey(keyIdOf(keys.signPublic))
    const payload = { username: 'someone', status: 'online', peerId: 'x', addrs: [], expiresAt: 1, updatedAt: 1 }
    return { key, value: encodeSignedRecord(createSignedRecord(key, 1, payload, keys)) }
  })()

  beforeAll(async () => {
    // the hub (the network's first peer) trims; one DHT server and six DHT clients join through it
    net = await startNetwork(0, { connections: TRIM })
    hub = net.supernode
    // the hub's side of the held stream stays open, read by nobody
    await hub.libp2p.handle(HOLD_PROTOCOL, () => {})
    server = await net.addPeer({ connections: { lowWater: 100, highWater: 100 } })
    await server.records.put(key, value)
    clients = []
    for (let i = 0; i < CLIENTS; i++) clients.push(await net.addPeer({ clientMode: true, connections: { lowWater: 100, highWater: 100 } }))
    // the first client keeps a stream open to the hub, as a chat does
    held = await clients[0]!.libp2p.dialProtocol(hub.peerId, HOLD_PROTOCOL)
  }, 120_000)
  afterAll(async () => {
    await held?.close().catch(() => {})
    await net?.cleanup()
  }, 60_000)

  it('closes idle connections down to the low water mark once they are past their grace period', async () => {
    const connected = (p: ChatPeer): boolean => hub.libp2p.getConnections(p.peerId).length > 0
    await eventually(() => hub.trimStats.closed >= CLIENTS - 1 && clients.filter(connected).length === 1, 20_000, 50)
    // kept: the DHT server (kad-dht keeps its closest peers alive) and the client with a stream in use
    expect(connected(server)).toBe(true)
    expect(connected(clients[0]!)).toBe(true)
    expect(hub.libp2p.getConnections().length).toBe(TRIM.lowWater)
    // the held stream still works
    expect(held?.status).toBe('open')
  })

  it('leaves the network working: a peer whose connection was closed reads from the DHT again', async () => {
    const trimmed = clients.find(c => hub.libp2p.getConnections(c.peerId).length === 0)!
    expect(trimmed).toBeDefined()
    const got = await trimmed.records.get(key)
    expect(got?.value).toEqual(value)
  })
})
