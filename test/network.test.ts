/**
 * The network of issue 2 on real libp2p nodes (loopback TCP, one process): records
 * travel between peers that never met, the network outlives its supernode, restarted
 * peers keep their identity, their records and the peers they knew, and holders
 * republish records past the (shortened) expiry while their owner is offline.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { setTimeout as sleep } from 'node:timers/promises'
import {
  generateAccountKeys, keyIdOf, createSignedRecord, encodeSignedRecord, presenceKey
} from '@conf-chat/protocol'
import { ChatPeer, type ChatPeerInit } from '@conf-chat/node/network'
import { startNetwork, addrOf, type TestNetwork } from './helpers/network.js'

/** A fresh owner key and a signed presence record of it. */
function newRecord (seq = 1): { key: string, value: Uint8Array } {
  const keys = generateAccountKeys()
  const key = presenceKey(keyIdOf(keys.signPublic))
  const payload = { username: 'someone', status: 'online', peerId: 'x', addrs: [], expiresAt: Date.parse('2100-01-01'), updatedAt: seq }
  return { key, value: encodeSignedRecord(createSignedRecord(key, seq, payload, keys)) }
}

const same = (a: Uint8Array | undefined, b: Uint8Array): boolean => a != null && Buffer.compare(a, b) === 0

describe('a network of a supernode and 10 peers', () => {
  let net: TestNetwork | undefined

  beforeAll(async () => { net = await startNetwork(10) }, 120_000)
  afterAll(async () => { await net?.cleanup() }, 60_000)

  it('a record put by one peer is read by a peer that never had a connection to it', async () => {
    const { peers } = net!
    const writer = peers[0]!
    const writerId = writer.peerId
    const { key, value } = newRecord()
    const put = await writer.records.put(key, value)
    expect(put.replicas).toBeGreaterThanOrEqual(3)
    // the writer leaves before the reader exists, so they can never have been connected
    await writer.stop()
    const reader = await net!.addPeer({}, peers[5])
    expect(reader.libp2p.getConnections(writerId)).toEqual([])
    const got = await reader.records.get(key)
    expect(same(got?.value, value)).toBe(true)
    expect(reader.libp2p.getConnections(writerId)).toEqual([])
  })

  it('lets several pings to one peer run at the same time (kad-dht, a liveness probe, a friend check)', async () => {
    // with libp2p's default of one outbound ping stream per peer the second ping failed
    // (TooManyOutboundProtocolStreamsError), and a failed liveness probe aborts the connection
    const [a, b] = [net!.peers[3]!, net!.peers[4]!]
    const pings = Promise.all([1, 2, 3].map(async () => await a.libp2p.services.ping.ping(b.peerId, { signal: AbortSignal.timeout(20_000) })))
    // all three answered (a refused ping stream rejects)
    await expect(pings).resolves.toHaveLength(3)
    expect(a.libp2p.getConnections(b.peerId).length).toBeGreaterThan(0)
  })

  it('keeps working after the supernode stops: puts, gets, and new peers joining through any peer', async () => {
    const { supernode, peers } = net!
    await supernode.stop()
    const a = newRecord()
    expect((await peers[1]!.records.put(a.key, a.value)).replicas).toBeGreaterThanOrEqual(3)
    expect(same((await peers[7]!.records.get(a.key))?.value, a.value)).toBe(true)

    for (const via of [peers[2]!, peers[8]!]) {
      const joiner = await net!.addPeer({}, via)
      expect(joiner.joined).toBe(true)
      expect(same((await joiner.records.get(a.key))?.value, a.value)).toBe(true)
      const b = newRecord()
      expect((await joiner.records.put(b.key, b.value)).replicas).toBeGreaterThanOrEqual(3)
      expect(same((await peers[3]!.records.get(b.key))?.value, b.value)).toBe(true)
    }
  })
})

describe('restarts', () => {
  let net: TestNetwork | undefined
  const restarted: ChatPeer[] = []

  /** Start a peer again on the data directory of `peer` (stopped first); resolves `joined`
   * with the address it joined through. */
  async function restart (peer: ChatPeer, init: Partial<ChatPeerInit>): Promise<{ again: ChatPeer, joined: Promise<string> }> {
    await peer.stop()
    const again = new ChatPeer({ ...peer.init, ...init })
    restarted.push(again)
    const joined = new Promise<string>(resolve => { again.addEventListener('network:joined', ev => { resolve(ev.detail.via) }, { once: true }) })
    await again.start()
    return { again, joined }
  }

  beforeAll(async () => { net = await startNetwork(1) }, 60_000)
  afterAll(async () => {
    await Promise.allSettled(restarted.map(async p => await p.stop()))
    await net?.cleanup()
  }, 60_000)

  it('a restarted peer keeps its peer id and serves the records it stored, as their only running holder', async () => {
    const { supernode } = net!
    const holder = net!.peers[0]!
    const { key, value } = newRecord()
    // stored by the holder and the supernode only: the others join afterwards
    expect((await holder.records.put(key, value)).replicas).toBe(1)
    const c = await net!.addPeer()
    const d = await net!.addPeer()
    expect(await c.records.getLocal(key)).toBeUndefined()
    expect(await d.records.getLocal(key)).toBeUndefined()

    await supernode.stop()
    const oldId = holder.peerId
    // the same port, as a peer with a fixed port restarts: the others' stored address of
    // it stays right (a peer that moved port is found again only once they learn the new one)
    const port = Number(holder.multiaddrs[0]!.getComponents().find(c => c.name === 'tcp')!.value)
    const { again, joined } = await restart(holder, { bootstrap: [addrOf(c)], port })
    await joined
    expect(again.peerId.equals(oldId)).toBe(true)
    expect(same((await again.records.getLocal(key))?.value, value)).toBe(true)
    // the supernode is down and c, d never stored it: only the restarted peer can answer.
    // The reader joins through it, so its first lookups ask it whatever its distance to the key.
    const reader = await net!.addPeer({}, again)
    expect(same((await reader.records.get(key))?.value, value)).toBe(true)
    expect(await reader.records.getLocal(key)).toBeUndefined()
    expect(await d.records.getLocal(key)).toBeUndefined()
  })

  it('a peer restarted while the supernode is down rejoins through the peers it remembered', async () => {
    const { supernode } = net!
    expect(supernode.status).toBe('stopped')
    const d = net!.peers[2]!
    const oldId = d.peerId
    const { again, joined } = await restart(d, {})
    const via = await joined
    expect(again.peerId.equals(oldId)).toBe(true)
    // only the (stopped) supernode was given to it
    expect(again.init.bootstrap).toEqual(d.init.bootstrap)
    expect(again.init.bootstrap).toEqual([expect.stringContaining(supernode.peerId.toString())])
    expect(via).not.toContain(supernode.peerId.toString())
    expect(via).toMatch(/^\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\//)
    const { key, value } = newRecord()
    expect((await again.records.put(key, value)).replicas).toBeGreaterThanOrEqual(1)
    expect(same((await net!.peers[1]!.records.get(key))?.value, value)).toBe(true)
  })
})

describe('losing every connection', () => {
  let net: TestNetwork | undefined
  beforeAll(async () => { net = await startNetwork(2) }, 60_000)
  afterAll(async () => { await net?.cleanup() }, 60_000)

  it('a peer that lost every connection says so, joins again by itself and works', async () => {
    const [a, b] = net!.peers as [ChatPeer, ChatPeer]
    const events: string[] = []
    a.addEventListener('network:lost', () => { events.push('lost') })
    const rejoined = new Promise<string>(resolve => {
      a.addEventListener('network:joined', ev => { events.push('joined'); resolve(ev.detail.via) }, { once: true })
    })
    // every connection closes at once, as when a cable is pulled and plugged in again
    await Promise.all(a.libp2p.getConnections().map(async c => { await c.close() }))
    expect(await rejoined).toMatch(/^\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\//)
    expect(events).toEqual(['lost', 'joined'])
    expect(a.joined).toBe(true)
    expect(a.libp2p.getConnections().length).toBeGreaterThan(0)
    const { key, value } = newRecord()
    expect((await a.records.put(key, value)).replicas).toBeGreaterThanOrEqual(1)
    expect(same((await b.records.get(key))?.value, value)).toBe(true)
  })

  it('a peer that checks its reachability joins again without waiting for the dial-backs', async () => {
    const c = await net!.addPeer({ reachability: 'auto' })
    // the supernode dialled it back (on loopback its answer tends to come before the connection is seen here)
    expect(c.reachability).toBe('public')
    const mode = c.libp2p.services.dht.getMode()
    expect(mode).toBe('server')
    const dialback = c.libp2p.services.reachability
    const check = dialback.check.bind(dialback)
    // the dial-backs asked for after the loss are held until the test ends
    const held = Promise.withResolvers<void>()
    let waiting = 0
    dialback.check = async (...args) => {
      waiting++
      await held.promise
      waiting--
      return await check(...args)
    }
    try {
      const rejoined = new Promise<number>(resolve => { c.addEventListener('network:joined', () => { resolve(waiting) }, { once: true }) })
      await Promise.all(c.libp2p.getConnections().map(async conn => { await conn.close() }))
      // joined while the check was still waiting for its answers
      expect(await rejoined).toBe(1)
      expect(c.libp2p.getConnections().length).toBeGreaterThan(0)
      // and it is what it was until the check says otherwise
      expect(c.libp2p.services.dht.getMode()).toBe(mode)
    } finally {
      held.resolve()
      dialback.check = check
    }
  })

  it('ensureConnected() dials again at once when work needs the network', async () => {
    const [a] = net!.peers as [ChatPeer]
    let lost = 0
    const onLost = (): void => { lost++ }
    a.addEventListener('network:lost', onLost)
    try {
      await Promise.all(a.libp2p.getConnections().map(async c => { await c.close() }))
      expect(await a.ensureConnected(30_000)).toBe(true)
      expect(lost).toBe(1)
      expect(a.libp2p.getConnections().length).toBeGreaterThan(0)
    } finally {
      a.removeEventListener('network:lost', onLost)
    }
  })
})

describe('republish', () => {
  const ttl = { recordTtlMs: 3_000 }

  /** Put a record from one peer of a fresh network, stop that owner, and wait three TTLs. */
  async function putThenOwnerLeaves (init: Partial<ChatPeerInit>, check: (net: TestNetwork, key: string, value: Uint8Array) => Promise<void>): Promise<void> {
    const net = await startNetwork(4, init)
    try {
      const [owner, ...holders] = net.peers
      const { key, value } = newRecord()
      expect((await owner!.records.put(key, value)).replicas).toBeGreaterThanOrEqual(2)
      await owner!.stop()
      // the expiry is what is tested: three TTLs pass with the owner offline
      await sleep(3 * ttl.recordTtlMs)
      expect(holders.every(h => h.status === 'started')).toBe(true)
      await check(net, key, value)
    } finally {
      await net.cleanup()
    }
  }

  it.concurrent('a record outlives the expiry while its holders run and its owner is offline', async () => {
    await putThenOwnerLeaves({ ...ttl, republishIntervalMs: 1_000 }, async (net, key, value) => {
      // copies younger than the TTL, three TTLs after the last put by the owner
      const fresh = await Promise.all([net.supernode, ...net.peers.slice(1)].map(async h => same((await h.records.getLocal(key))?.value, value)))
      expect(fresh.filter(Boolean).length).toBeGreaterThanOrEqual(2)
      const reader = await net.addPeer({}, net.peers[2])
      // the reader knows every running server before it reads (right after its join it may know one, and
      // one answer beside the stopped owner's silence cannot tell "absent" from "unknown")
      await net.settled()
      expect(same((await reader.records.get(key))?.value, value)).toBe(true)
    })
  }, 90_000)

  it.concurrent('control: without republish the record is gone after the expiry', async () => {
    await putThenOwnerLeaves({ ...ttl, republishIntervalMs: 0 }, async (net, key) => {
      for (const holder of [net.supernode, ...net.peers.slice(1)]) {
        expect(await holder.records.getLocal(key)).toBeUndefined()
        expect(await holder.records.storedValue(key)).toBeUndefined()
      }
      const reader = await net.addPeer({}, net.peers[2])
      await net.settled()
      expect(await reader.records.get(key)).toBeUndefined()
    })
  }, 90_000)
})
