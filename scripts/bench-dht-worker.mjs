// One peer of the DHT benchmark (scripts/bench-dht.mjs), in its own process: a ChatPeer
// answering put/get requests (timed here) over IPC; see scripts/lib/bench-worker.mjs.
import { self, serve } from './lib/bench-worker.mjs'

/** kad-dht's PING message (protobuf field 1 `type` = 5), answered by the same message. */
const DHT_PING = Uint8Array.from([0x08, 0x05])

async function target (peerId, addrs) {
  const { peerIdFromString } = await import('@libp2p/peer-id')
  const { multiaddr } = await import('@multiformats/multiaddr')
  const id = peerIdFromString(peerId)
  if (addrs?.length > 0) await self.peer.libp2p.peerStore.merge(id, { multiaddrs: addrs.map(a => multiaddr(a)) })
  return id
}

serve({
  /** A put until it returned (at its write quorum), then until the rest of it (the other
   * holders) ended: the next request runs on a network at rest, as before quorum returns. */
  put: async ({ key, value }) => {
    const t = performance.now()
    const res = await self.peer.records.put(key, value)
    const ms = performance.now() - t
    await self.peer.records.settled?.()
    return { ms, allMs: performance.now() - t, ...res }
  },
  /** A read as the product reads: the record store's read (it stops at the namespace's
   * quorum; `get` where the store has no `read`). */
  get: async ({ key }) => {
    const records = self.peer.records
    const t = performance.now()
    const got = typeof records.read === 'function' ? await records.read(key) : { best: await records.get(key) }
    return { ms: performance.now() - t, value: got.best?.value, status: got.status, replicas: got.all?.length }
  },
  /** The baseline: libp2p ping round trips (one request/response stream on an open connection). */
  ping: async ({ peerId, addrs, n, warmup }) => {
    const { multiaddr } = await import('@multiformats/multiaddr')
    const to = addrs?.length > 0 ? multiaddr(addrs[0]) : await target(peerId)
    const ms = []
    for (let i = 0; i < warmup + n; i++) {
      const t = performance.now()
      await self.peer.libp2p.services.ping.ping(to)
      if (i >= warmup) ms.push(performance.now() - t)
    }
    return { ms }
  },
  /**
   * One DHT RPC (PING) to `peerId`, three ways: on a new stream each time (what kad-dht
   * does by itself), on one stream kept open, and through kad-dht as this project wires it.
   */
  rpc: async ({ peerId, addrs, protocol, n, warmup }) => {
    const { lpStream } = await import('@libp2p/utils')
    const to = await target(peerId, addrs)
    const libp2p = self.peer.libp2p
    const once = async (stream) => {
      const lp = lpStream(stream)
      await lp.write(DHT_PING)
      await lp.read()
    }
    const time = async (fn) => {
      const ms = []
      for (let i = 0; i < warmup + n; i++) {
        const t = performance.now()
        await fn()
        if (i >= warmup) ms.push(performance.now() - t)
      }
      return ms
    }
    const newStream = await time(async () => {
      const s = await libp2p.dialProtocol(to, protocol)
      await once(s)
      await s.close()
    })
    const kept = await libp2p.dialProtocol(to, protocol)
    const sameStream = await time(async () => { await once(kept) })
    await kept.close()
    const network = libp2p.services.dht.network
    const viaDht = await time(async () => {
      for await (const ev of network.sendRequest(to, { type: 'PING', closer: [], providers: [] }, { signal: AbortSignal.timeout(10_000) })) {
        if (ev.name === 'QUERY_ERROR') throw ev.error
      }
    })
    return { newStream, sameStream, viaDht }
  },
  /** The DHT wiring's counters (absent where the peer has none). */
  dhtStats: async () => {
    try { return { stats: self.peer.dhtStats } } catch { return { stats: undefined } }
  }
})
