/**
 * The DHT as ChatPeer wires kad-dht, on real libp2p nodes (loopback TCP, one process):
 * RPCs run on pooled streams instead of a new stream each, a pooled stream the remote
 * reset is not used again, and kad-dht's closer-peer announcements reach the peer store
 * only when they bring news, the routing table is offered only peers a connection
 * vouches for, and the writes of one tick leave a socket together.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { generateAccountKeys, keyIdOf, createSignedRecord, encodeSignedRecord, presenceKey } from '@conf-chat/protocol'
import { DHT_PROTOCOL, DHT_SELF_LOOKUP_INTERVAL_MS, DHT_TABLE_REFRESH_INTERVAL_MS, ChatPeer } from '@conf-chat/node/network'
import { Socket } from 'node:net'
import { rm } from 'node:fs/promises'
import type { PeerId, Stream } from '@libp2p/interface'
import { startNetwork, tempDir, type TestNetwork } from './helpers/network.js'
import { until } from './helpers/until.js'

function newRecord (): { key: string, value: Uint8Array } {
  const keys = generateAccountKeys()
  const key = presenceKey(keyIdOf(keys.signPublic))
  const payload = { username: 'someone', status: 'online', peerId: 'x', addrs: [], expiresAt: Date.parse('2100-01-01'), updatedAt: 1 }
  return { key, value: encodeSignedRecord(createSignedRecord(key, 1, payload, keys)) }
}

const same = (a: Uint8Array | undefined, b: Uint8Array): boolean => a != null && Buffer.compare(a, b) === 0

/** DHT streams of `peer` in one direction that are open now. */
function dhtStreams (peer: ChatPeer, direction: 'inbound' | 'outbound'): Stream[] {
  return peer.libp2p.getConnections().flatMap(c => c.streams)
    .filter(s => s.protocol === DHT_PROTOCOL && s.direction === direction && s.status === 'open')
}

describe('DHT RPCs on a supernode and 4 peers', () => {
  let net: TestNetwork | undefined
  let all: ChatPeer[] = []
  // (counted by the pool: libp2p's own stream middleware, `libp2p.use()`, cannot count an
  // inbound-handled protocol in libp2p 3.3.11: each inbound stream appends the handler to the
  // registered middleware list, so the nth stream runs the handler n times)
  const totalOpened = (): number => all.reduce((n, p) => n + (p.dhtStats.pool?.opened ?? 0), 0)

  beforeAll(async () => {
    net = await startNetwork(4)
    all = [net.supernode, ...net.peers]
  }, 120_000)
  afterAll(async () => { await net?.cleanup() }, 60_000)

  it('runs kad-dht\'s self-lookup and routing-table refresh at the peer\'s intervals, not every 5 minutes', () => {
    // kad-dht's init takes no refresh interval: the peer sets its RoutingTableRefresh's own
    // field, which a kad-dht upgrade could rename (then this fails, and the peer logs it)
    expect(DHT_TABLE_REFRESH_INTERVAL_MS).toBeGreaterThan(5 * 60_000)
    for (const peer of all) {
      const dht = peer.libp2p.services.dht as unknown as { routingTableRefresh: { refreshInterval: number }, querySelf: { interval: number } }
      expect(dht.routingTableRefresh.refreshInterval).toBe(DHT_TABLE_REFRESH_INTERVAL_MS)
      expect(dht.querySelf.interval).toBe(DHT_SELF_LOOKUP_INTERVAL_MS)
    }
  })

  it('runs many puts and gets on a bounded number of streams', async () => {
    const [a, b] = [net!.peers[0]!, net!.peers[1]!]
    // warm up: each peer's pool gets its streams
    for (let i = 0; i < 3; i++) {
      const r = newRecord()
      await a.records.put(r.key, r.value)
      await b.records.get(r.key)
    }
    const before = totalOpened()
    const reusedBefore = all.reduce((n, p) => n + (p.dhtStats.pool?.reused ?? 0), 0)
    const ops = 20
    for (let i = 0; i < ops; i++) {
      const r = newRecord()
      const put = await a.records.put(r.key, r.value)
      expect(put.replicas).toBeGreaterThanOrEqual(3)
      expect(same((await b.records.get(r.key))?.value, r.value)).toBe(true)
    }
    const reused = all.reduce((n, p) => n + (p.dhtStats.pool?.reused ?? 0), 0) - reusedBefore
    // each put and get asks every other server at least once (5 peers): a stream per RPC
    // would open at least 2 * ops * 4 = 160; pooled, at most 2 per ordered pair of peers (5 * 4)
    expect(reused).toBeGreaterThanOrEqual(2 * ops * 4)
    expect(totalOpened() - before).toBeLessThanOrEqual(2 * all.length * (all.length - 1))
    // and what stays open is bounded the same way
    for (const peer of all) expect(dhtStreams(peer, 'outbound').length).toBeLessThanOrEqual(2 * (all.length - 1))
  })

  it('does not use a pooled stream the remote reset, and the next read still succeeds', async () => {
    const [a, c] = [net!.peers[0]!, net!.peers[2]!]
    const r = newRecord()
    await a.records.put(r.key, r.value)
    const pooled = dhtStreams(a, 'outbound')
    expect(pooled.length).toBeGreaterThan(0)
    const gone = Promise.all(pooled.map(async s => await new Promise<void>(resolve => {
      if (s.status !== 'open') { resolve(); return }
      s.addEventListener('close', () => { resolve() }, { once: true })
    })))
    // every other peer resets the streams a holds to it (as kad-dht does to an idle inbound stream)
    for (const peer of all.filter(p => p !== a)) {
      for (const s of dhtStreams(peer, 'inbound')) {
        if (s.direction === 'inbound') s.abort(new Error('reset by the test'))
      }
    }
    await gone
    const openedBefore = a.dhtStats.pool!.opened
    // kad-dht's own get, run to its end: an RPC on a reset stream would show as a QUERY_ERROR
    const events: Array<{ name: string }> = []
    for await (const ev of a.libp2p.services.dht.get(new TextEncoder().encode(r.key), { signal: AbortSignal.timeout(20_000) })) events.push(ev)
    expect(events.filter(ev => ev.name === 'QUERY_ERROR')).toEqual([])
    expect(events.some(ev => ev.name === 'VALUE')).toBe(true)
    expect(same((await a.records.get(r.key))?.value, r.value)).toBe(true)
    const fromC = await c.records.get(r.key)
    expect(same(fromC?.value, r.value)).toBe(true)
    // a's read ran on new streams: the reset ones were dropped, not handed out again
    expect(a.dhtStats.pool!.opened).toBeGreaterThan(openedBefore)
    expect(pooled.every(s => s.status !== 'open')).toBe(true)
  })

  it('sends what a peer writes in one tick with one system call (corked TCP sockets)', async () => {
    const [a, b] = [net!.peers[0]!, net!.peers[1]!]
    // count the socket writes Node makes (one write system call each) and the chunks they carry
    const proto = Socket.prototype as unknown as Record<'_write' | '_writev', (...args: any[]) => unknown>
    const { _write, _writev } = proto
    let calls = 0
    let chunks = 0
    proto._write = function (this: Socket, ...args: any[]) { calls++; chunks++; return _write.apply(this, args) }
    proto._writev = function (this: Socket, ...args: any[]) { calls++; chunks += (args[0] as unknown[]).length; return _writev.apply(this, args) }
    try {
      for (let i = 0; i < 5; i++) {
        const r = newRecord()
        await a.records.put(r.key, r.value)
        expect(same((await b.records.get(r.key))?.value, r.value)).toBe(true)
      }
    } finally {
      proto._write = _write
      proto._writev = _writev
    }
    // each frame is a noise length and ciphertext around a yamux header and data: written
    // one by one, every chunk would be a call of its own
    expect(calls).toBeGreaterThan(0)
    expect(chunks / calls).toBeGreaterThan(1.5)
  })

  it('lets closer peers with news reach the peer store and drops the repeats', async () => {
    const [a] = [net!.peers[0]!]
    const stats = all.map(p => p.dhtStats.discovery!)
    // repeats were dropped (the filter is in place) ...
    expect(stats.reduce((n, s) => n + s.dropped, 0)).toBeGreaterThan(0)
    expect(stats.reduce((n, s) => n + s.passed, 0)).toBeGreaterThan(0)
    // the peer-store reads behind closer-peer lists were answered from memory
    expect(all.reduce((n, p) => n + (p.dhtStats.peerInfo?.hits ?? 0), 0)).toBeGreaterThan(0)
    // ... and every peer's addresses still reached a's peer store
    for (const peer of all.filter(p => p !== a)) {
      const known = await a.libp2p.peerStore.get(peer.peerId)
      expect(known.addresses.map(x => x.multiaddr.toString())).toContain(peer.multiaddrs[0]!.toString().split('/p2p/')[0])
    }
  })

  it('does not dial a peer only heard of in a closer-peer list to ping it for the routing table; one it connects to goes in', async () => {
    // (from 0 peers in its table on: at the default, k = 20, this small network's tables take every peer heard of)
    const a = await net!.addPeer({ tableFromConnections: 0 })
    // a DHT server a has never been connected to (it joined no network)
    const dir = await tempDir()
    const z = new ChatPeer({ dataDir: dir, host: '127.0.0.1', port: 0 })
    try {
      await z.start()
      type Queue = { onIdle: () => Promise<void> }
      const dht = a.libp2p.services.dht as unknown as {
        network: EventTarget
        routingTable: { find: (p: PeerId) => Promise<PeerId | undefined>, routingTableUpdateQueue: Queue, pingNewContactQueue: Queue }
      }
      // kad-dht's network announces z as a closer peer of some response
      dht.network.dispatchEvent(new CustomEvent('peer', { detail: { id: z.peerId, multiaddrs: z.multiaddrs } }))
      await dht.routingTable.routingTableUpdateQueue.onIdle()
      await dht.routingTable.pingNewContactQueue.onIdle()
      // no dial, no table entry; but its address reached the peer store, so a lookup can dial it
      expect(a.libp2p.getConnections(z.peerId)).toEqual([])
      expect(await dht.routingTable.find(z.peerId)).toBeUndefined()
      expect((await a.libp2p.peerStore.get(z.peerId)).addresses.length).toBeGreaterThan(0)
      // once connected (as a lookup that queries it is), identify shows it serves the DHT and it goes in
      await a.libp2p.dial(z.peerId)
      const { value } = await until(async () => await dht.routingTable.find(z.peerId), found => found != null, 15_000)
      expect(value?.toString()).toBe(z.peerId.toString())
    } finally {
      await z.stop()
      await rm(dir, { recursive: true, force: true })
    }
  })
})
