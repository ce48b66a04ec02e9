// One peer of the DHT benchmark (scripts/bench-dht.mjs), in its own process: a ChatPeer
// answering put/get requests (timed here) over IPC; see scripts/lib/bench-worker.mjs.
import { self, serve } from './lib/bench-worker.mjs'

serve({
  put: async ({ key, value }) => {
    const t = performance.now()
    const res = await self.peer.records.put(key, value)
    return { ms: performance.now() - t, ...res }
  },
  get: async ({ key }) => {
    const t = performance.now()
    const got = await self.peer.records.getAll(key)
    return { ms: performance.now() - t, value: got.best?.value, replicas: got.all.length }
  },
  /** The baseline: libp2p ping round trips (one request/response stream on an open connection). */
  ping: async ({ peerId, addrs, n, warmup }) => {
    const { peerIdFromString } = await import('@libp2p/peer-id')
    const { multiaddr } = await import('@multiformats/multiaddr')
    const target = addrs?.length > 0 ? multiaddr(addrs[0]) : peerIdFromString(peerId)
    const ms = []
    for (let i = 0; i < warmup + n; i++) {
      const t = performance.now()
      await self.peer.libp2p.services.ping.ping(target)
      if (i >= warmup) ms.push(performance.now() - t)
    }
    return { ms }
  }
})
