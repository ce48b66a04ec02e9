// One peer of the DHT benchmark, in its own process: starts a ChatPeer from the built
// packages and answers put/get requests from scripts/bench-dht.mjs over IPC.
import { ChatPeer } from '@conf-chat/node'

/** @type {ChatPeer | undefined} */
let peer

function send (msg) {
  if (process.connected) process.send(msg)
}

async function stop (code) {
  try {
    await peer?.stop()
  } finally {
    process.exit(code)
  }
}

process.on('message', async (msg) => {
  try {
    switch (msg.type) {
      case 'start': {
        peer = new ChatPeer(msg.init)
        const joined = new Promise(resolve => peer.addEventListener('network:joined', resolve, { once: true }))
        await peer.start()
        send({ type: 'started', peerId: peer.peerId.toString(), addrs: peer.multiaddrs.map(String) })
        if (msg.init.bootstrap?.length > 0) {
          if (!peer.joined) await joined
          send({ type: 'joined' })
        }
        break
      }
      case 'put': {
        const t = performance.now()
        const res = await peer.records.put(msg.key, msg.value)
        send({ type: 'result', id: msg.id, ms: performance.now() - t, ...res })
        break
      }
      case 'get': {
        const t = performance.now()
        const got = await peer.records.getAll(msg.key)
        const ms = performance.now() - t
        send({ type: 'result', id: msg.id, ms, value: got.best?.value, replicas: got.all.length })
        break
      }
      case 'stats': {
        send({ type: 'result', id: msg.id, rss: process.memoryUsage().rss, connections: peer.libp2p.getConnections().length })
        break
      }
      case 'stop':
        await stop(0)
        break
    }
  } catch (err) {
    send({ type: 'error', id: msg.id, message: String(err?.stack ?? err) })
  }
})

// the parent went away: do not linger
process.on('disconnect', () => { void stop(0) })
process.on('SIGTERM', () => { void stop(0) })
