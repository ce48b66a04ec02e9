/**
 * A ChatNode in a process of its own, for tests that kill a peer (kill -9) and start it
 * again, or that need many peers on both cores. Runs the built packages (dist/). The
 * parent calls ChatNode methods over IPC: { id, method, args } -> { id, ok, result | error }
 * (plus `waitJoined`, which answers with the peer's addresses once it has joined); every
 * ChatNode event is sent as { event, detail }. Settings come as JSON in CHAT_WORKER_INIT.
 */
import { createChatNode } from '@conf-chat/node'

const EVENTS = ['message', 'messages:offline', 'message:status', 'presence', 'envelope:refused',
  'friend:request', 'friend:accepted', 'friend:rejected', 'friend:removed', 'session:started', 'session:ended']

const send = (msg) => { try { process.send?.(msg) } catch { /* parent gone */ } }

const node = createChatNode(JSON.parse(process.env.CHAT_WORKER_INIT ?? '{}'))
for (const type of EVENTS) node.addEventListener(type, evt => { send({ event: type, detail: evt.detail }) })

process.on('message', (msg) => {
  const { id, method, args = [] } = msg ?? {}
  const run = async () => {
    if (method === 'stop') { await node.stop(); return undefined }
    if (method === 'waitJoined') {
      await node.peer.waitJoined({ signal: AbortSignal.timeout(args[0] ?? 60_000) })
      return node.peer.multiaddrs.map(String)
    }
    if (typeof node[method] !== 'function') throw new Error(`no method ${method}`)
    return await node[method](...args)
  }
  run().then(
    result => { send({ id, ok: true, result: result === undefined ? null : JSON.parse(JSON.stringify(result)) }) },
    err => { send({ id, ok: false, error: { name: err?.name, message: err?.message } }) }
  )
})
process.on('disconnect', () => { node.stop().finally(() => process.exit(0)) })

await node.start()
send({ ready: true, peerId: node.peer.peerId.toString(), addrs: node.peer.multiaddrs.map(String) })
