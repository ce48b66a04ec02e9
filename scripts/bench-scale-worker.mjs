// One process of scripts/bench-scale.mjs: many plain DHT peers (ChatPeer) sharing the
// process (`startPeers`, then put/get timed here with kad-dht's query events counted),
// the supernode (the common `start`, role 'peer'), or one user's ChatNode (`start`,
// role 'node', with the user commands of scripts/lib/user-worker.mjs).
// See scripts/lib/bench-worker.mjs for the IPC loop.
import { join } from 'node:path'
import { ChatPeer } from '@conf-chat/node/network'
import { self, serve, startPeer } from './lib/bench-worker.mjs'
import { userCommands, watchUser } from './lib/user-worker.mjs'
import { sumTraces, traceLookups } from './lib/lookup-trace.mjs'

/** This process's plain peers (startPeers), each with its lookup tracer. */
const peers = []
const MiB = 2 ** 20
const rssMiB = () => process.memoryUsage().rss / MiB

/** Start one peer and wait until it joined; its times from the start call. */
async function startOne (dataDir, bootstrap, joinTimeoutMs) {
  const t = performance.now()
  const peer = new ChatPeer({ dataDir, host: '127.0.0.1', port: 0, bootstrap })
  const entry = { peer, tracer: undefined }
  peers.push(entry)
  await peer.start()
  const startedMs = performance.now() - t
  entry.tracer = traceLookups(peer.libp2p.services.dht, id => peer.libp2p.getConnections(id).some(c => c.status === 'open'))
  let joinMs = null
  // a peer that has not joined in time is counted, not fatal: it stays and may join later
  if (bootstrap.length > 0) {
    try {
      await peer.waitJoined({ signal: AbortSignal.timeout(joinTimeoutMs) })
      joinMs = performance.now() - t
    } catch {}
  }
  return { peerId: peer.peerId.toString(), addrs: peer.multiaddrs.map(String), startedMs, joinMs }
}

/**
 * Start `count` peers under `dir`, `batch` at a time, each waiting until it joined
 * through `bootstrap` (the next batch starts when the last one has joined: the network
 * grows as fast as it takes joiners in, with no fixed sleeps). RSS is taken before the
 * first peer (the modules loaded), after it, and after all.
 */
async function startPeers ({ dir, count, batch, bootstrap, joinTimeoutMs }) {
  const rssBase = rssMiB()
  // the first peer alone, to tell its cost from an extra peer's
  const started = [await startOne(join(dir, 'peer-0'), bootstrap, joinTimeoutMs)]
  const rssFirst = rssMiB()
  for (let i = 1; i < count; i += batch) {
    const n = Math.min(batch, count - i)
    started.push(...await Promise.all(Array.from({ length: n }, (_, j) =>
      startOne(join(dir, `peer-${i + j}`), bootstrap, joinTimeoutMs))))
  }
  return { peers: started, rssBaseMiB: rssBase, rssFirstMiB: rssFirst, rssAllMiB: rssMiB() }
}

/** Put `value` under `key` from peer `index`: ms, replicas, and the lookup's RPCs and rounds. */
async function put ({ index, key, value }) {
  const { peer, tracer } = peers[index]
  tracer.take()
  const t = performance.now()
  const res = await peer.records.put(key, value)
  const ms = performance.now() - t
  // the put returned at its write quorum: its lookup's trace is whole, and the next
  // request runs on a network at rest, once the rest of it (the other holders) ended
  await peer.records.settled?.()
  return { ms, replicas: res.replicas, refused: res.refused, trace: sumTraces(tracer.take()) }
}

/** Read `key` from peer `index` as the product reads (the store's read: it stops at the namespace's quorum). */
async function get ({ index, key }) {
  const { peer, tracer } = peers[index]
  const records = peer.records
  tracer.take()
  const t = performance.now()
  let got
  try {
    got = typeof records.read === 'function' ? await records.read(key) : { status: undefined, best: await records.get(key) }
  } catch (err) {
    got = { status: `error: ${err.message}` }
  }
  const ms = performance.now() - t
  return { ms, value: got.best?.value, status: got.status, records: got.all?.length, trace: sumTraces(tracer.take()) }
}

/** RSS, and per peer: connections and routing-table size. */
async function peerStats () {
  return {
    rss: process.memoryUsage().rss,
    peers: peers.map(({ peer }) => ({
      connections: peer.libp2p.getConnections().length,
      routingTable: peer.libp2p.services.dht.routingTable?.size ?? null
    }))
  }
}

serve({
  start: msg => startPeer(msg, { joinTimeoutMs: 120_000, setup: msg.role === 'node' ? watchUser : undefined }),
  startPeers,
  put,
  get,
  peerStats,
  ...userCommands
}, {
  cleanup: async () => { await Promise.allSettled(peers.map(({ peer }) => peer.stop())) }
})
