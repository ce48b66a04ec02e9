// One peer of the accounts benchmark, in its own process: a supernode (ChatPeer) or a
// ChatNode, answering requests from scripts/bench-accounts.mjs over IPC.
import { ChatNode, ChatPeer } from '@conf-chat/node'

let peer
let node

const send = msg => { if (process.connected) process.send(msg) }

process.on('message', async (msg) => {
  try {
    switch (msg.type) {
      case 'start': {
        if (msg.role === 'supernode') {
          peer = new ChatPeer(msg.init)
          await peer.start()
        } else {
          node = new ChatNode(msg.init)
          await node.start()
          peer = node.peer
          await peer.waitJoined({ signal: AbortSignal.timeout(60_000) })
        }
        send({ type: 'result', id: msg.id, addrs: peer.multiaddrs.map(String) })
        break
      }
      case 'register': {
        await node.register(msg.input)
        send({ type: 'result', id: msg.id })
        break
      }
      case 'login': {
        const t = performance.now()
        const { timings } = await node.login(msg.username, msg.password)
        send({ type: 'result', id: msg.id, totalMs: performance.now() - t, ...timings })
        break
      }
      case 'logout': {
        await node.logout()
        send({ type: 'result', id: msg.id, at: Date.now() })
        break
      }
      case 'wait-offline': {
        // poll the presence record until it says offline; report when it first did
        for (;;) {
          const p = await node.presenceOf(msg.username)
          if (p != null && !p.online) break
          await new Promise(resolve => setTimeout(resolve, 20))
        }
        send({ type: 'result', id: msg.id, at: Date.now() })
        break
      }
      case 'stop':
        await (node ?? peer)?.stop()
        process.exit(0)
    }
  } catch (err) {
    send({ type: 'result', id: msg.id, error: String(err?.stack ?? err) })
  }
})
process.on('disconnect', () => { (node ?? peer)?.stop().finally(() => process.exit(0)) })
