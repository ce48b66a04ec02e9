// The worker side of the benchmarks (see ./bench.mjs): one peer in a process of its own,
// a plain DHT peer (ChatPeer: supernode, holders) or a user's ChatNode, built packages
// from dist/. Commands arrive over IPC as { id, type, ... } and are answered with
// { id, type: 'ok' | 'error', ... }; timing loops run in the worker, so IPC never sits
// inside a measured interval.
import { createChatNode } from '@conf-chat/node'
import { ChatPeer } from '@conf-chat/node/network'

/** This process's peer, and its ChatNode when it runs a user's node. */
export const self = { peer: undefined, node: undefined }

export const reply = (msg) => { try { process.send?.(msg) } catch { /* parent gone */ } }

/** The machine's shared wall clock in ms (to compare times taken in different processes). */
export const wallNow = () => performance.timeOrigin + performance.now()

export const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

/**
 * Start the peer: role 'node' makes a ChatNode (`setup(node)` runs before it starts, to
 * add listeners), any other role a ChatPeer. With bootstrap addresses, waits until it
 * joined (up to `joinTimeoutMs`). Answers its id, addresses, and ms to started and joined.
 */
export async function startPeer ({ init, role }, { joinTimeoutMs = 120_000, setup } = {}) {
  const t = performance.now()
  if (role === 'node') {
    self.node = createChatNode(init)
    setup?.(self.node)
    await self.node.start()
    self.peer = self.node.peer
  } else {
    self.peer = new ChatPeer(init)
    await self.peer.start()
  }
  const startedMs = performance.now() - t
  if (init.bootstrap?.length > 0) await self.peer.waitJoined({ signal: AbortSignal.timeout(joinTimeoutMs) })
  return { peerId: self.peer.peerId.toString(), addrs: self.peer.multiaddrs.map(String), startedMs, joinedMs: performance.now() - t }
}

/** Commands every worker has; a worker's own commands come on top (and may replace these). */
const common = {
  start: msg => startPeer(msg),
  /** A ChatNode method, its result through JSON. */
  call: async ({ method, args }) => ({ result: JSON.parse(JSON.stringify((await self.node[method](...args)) ?? null)) }),
  stats: async () => ({ rss: process.memoryUsage().rss, connections: self.peer?.libp2p.getConnections().length ?? 0 })
}

let stopping
/** Stop the peer (a logged-in node logs out), run `cleanup`, exit 0. */
function stopAndExit (cleanup) {
  stopping ??= (async () => {
    try { await cleanup?.() } catch { /* best effort */ }
    await (self.node ?? self.peer)?.stop().catch(() => {})
    process.exit(0)
  })()
  return stopping
}

/**
 * Answer commands from the parent over IPC until told to stop (or the parent goes away,
 * or SIGTERM). `cleanup` runs before the peer stops (close servers and the like).
 */
export function serve (commands, { cleanup } = {}) {
  const all = { ...common, ...commands }
  process.on('message', msg => {
    if (msg?.type === 'stop') { void stopAndExit(cleanup); return }
    const command = all[msg?.type]
    if (command == null) { reply({ id: msg?.id, type: 'error', message: `unknown command ${msg?.type}` }); return }
    Promise.resolve().then(() => command(msg)).then(
      result => { reply({ ...result, id: msg.id, type: 'ok' }) },
      err => { reply({ id: msg.id, type: 'error', message: String(err?.message ?? err) }) }
    )
  })
  // the parent went away: do not linger
  process.on('disconnect', () => { void stopAndExit(cleanup) })
  process.on('SIGTERM', () => { void stopAndExit(cleanup) })
  // a Ctrl+C in the terminal reaches the whole process group: the parent stops us
  process.on('SIGINT', () => {})
}
