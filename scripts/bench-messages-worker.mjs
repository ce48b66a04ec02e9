// One peer of scripts/bench-messages.mjs, in a process of its own: a plain DHT peer
// (supernode, holders) or a ChatNode (a user). Commands arrive over IPC as
// { id, type, ... } and are answered with { id, type: 'ok' | 'error', ... }; timing loops
// run here, so IPC never sits inside a measured interval.
import { createServer, connect } from 'node:net'
import { ChatNode, ChatPeer } from '@conf-chat/node'
import { createEnvelope, DM_KIND } from '@conf-chat/protocol'

let peer
let node
const received = { live: 0, lastLiveAt: 0, offline: 0, lastOfflineAt: 0 }
let tcpServer

const reply = (msg) => { try { process.send?.(msg) } catch { /* parent gone */ } }

async function start ({ init, role }) {
  if (role === 'node') {
    node = new ChatNode(init)
    node.addEventListener('message', () => { received.live++; received.lastLiveAt = performance.now() })
    node.addEventListener('messages:offline', evt => { received.offline += evt.detail.messages.length; received.lastOfflineAt = performance.now() })
    await node.start()
    peer = node.peer
  } else {
    peer = new ChatPeer(init)
    await peer.start()
  }
  if (init.bootstrap?.length > 0) {
    await peer.waitJoined({ signal: AbortSignal.timeout(60_000) })
  }
  return { peerId: peer.peerId.toString(), addrs: peer.multiaddrs.map(String) }
}

/** Live round trips through the whole user path: sendMessage() until the recipient's ack. */
async function rttMessages ({ to, n, warmup }) {
  const ms = []
  const statuses = {}
  for (let i = 0; i < warmup + n; i++) {
    const t = performance.now()
    const r = await node.sendMessage(to, `round trip ${i} ${'x'.repeat(16)}`)
    const dt = performance.now() - t
    statuses[r.status] = (statuses[r.status] ?? 0) + 1
    if (i >= warmup) ms.push(dt)
  }
  return { ms, statuses }
}

/** Round trips of the chat protocol alone: a made envelope, sent and acknowledged. */
async function rttEnvelopes ({ to, n, warmup }) {
  const profile = await node.profile(to)
  const where = await node.presenceOf(to)
  const me = node.session.account
  const ms = []
  let failed = 0
  for (let i = 0; i < warmup + n; i++) {
    const env = createEnvelope(DM_KIND, { text: `protocol ${i}` }, { username: me.username, keys: me.keys }, profile)
    const t = performance.now()
    const r = await node.messenger.send(where.peerId, where.addrs, env)
    const dt = performance.now() - t
    if (!r.delivered) failed++
    if (i >= warmup) ms.push(dt)
  }
  return { ms, failed }
}

/** One-way messages in one conversation: `window` sendMessage() calls in flight at a time. */
async function throughput ({ to, n, window }) {
  let next = 0
  let delivered = 0
  const t = performance.now()
  const lane = async () => {
    while (next < n) {
      const i = next++
      const r = await node.sendMessage(to, `one way ${i} ${'y'.repeat(32)}`)
      if (r.status === 'delivered') delivered++
    }
  }
  await Promise.all(Array.from({ length: window }, lane))
  return { ms: performance.now() - t, delivered }
}

/** Queue `n` messages for an offline recipient, `concurrency` at a time. */
async function sendMany ({ to, n, concurrency }) {
  let next = 0
  const statuses = {}
  const t = performance.now()
  const lane = async () => {
    while (next < n) {
      const i = next++
      const r = await node.sendMessage(to, `offline ${String(i).padStart(4, '0')} ${'z'.repeat(32)}`)
      statuses[`${r.status}/${r.where ?? ''}`] = (statuses[`${r.status}/${r.where ?? ''}`] ?? 0) + 1
    }
  }
  await Promise.all(Array.from({ length: concurrency }, lane))
  return { ms: performance.now() - t, statuses }
}

/** Log in and wait until `expected` offline messages were shown. */
async function loginAndWait ({ username, password, expected, timeoutMs }) {
  received.offline = 0
  const t = performance.now()
  await node.login(username, password)
  const loginMs = performance.now() - t
  const deadline = Date.now() + timeoutMs
  while (received.offline < expected && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 5))
  return { loginMs, shownMs: received.lastOfflineAt - t, shown: received.offline }
}

async function tcpEchoServer () {
  tcpServer = createServer(socket => { socket.on('data', d => socket.write(d)); socket.on('error', () => {}) })
  await new Promise(resolve => tcpServer.listen(0, '127.0.0.1', resolve))
  return { port: tcpServer.address().port }
}

/** Raw TCP round trips (node:net): write `size` bytes, wait for them to come back. */
async function tcpRtt ({ port, n, warmup, size }) {
  const socket = connect(port, '127.0.0.1')
  socket.setNoDelay(true)
  await new Promise((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject) })
  const payload = Buffer.alloc(size, 7)
  const ms = []
  for (let i = 0; i < warmup + n; i++) {
    const t = performance.now()
    await new Promise(resolve => {
      let got = 0
      const onData = d => { got += d.length; if (got >= size) { socket.off('data', onData); resolve() } }
      socket.on('data', onData)
      socket.write(payload)
    })
    if (i >= warmup) ms.push(performance.now() - t)
  }
  socket.destroy()
  return { ms }
}

const commands = {
  start,
  call: async ({ method, args }) => ({ result: JSON.parse(JSON.stringify((await node[method](...args)) ?? null)) }),
  received: async () => ({ ...received }),
  rttMessages,
  rttEnvelopes,
  throughput,
  sendMany,
  loginAndWait,
  tcpEchoServer,
  tcpRtt,
  stats: async () => ({ rss: process.memoryUsage().rss })
}

process.on('message', msg => {
  if (msg?.type === 'stop') {
    void (async () => {
      tcpServer?.close()
      await (node ?? peer)?.stop().catch(() => {})
      process.exit(0)
    })()
    return
  }
  const command = commands[msg?.type]
  if (command == null) { reply({ id: msg?.id, type: 'error', message: `unknown command ${msg?.type}` }); return }
  command(msg).then(
    result => { reply({ id: msg.id, type: 'ok', ...result }) },
    err => { reply({ id: msg.id, type: 'error', message: String(err?.message ?? err) }) }
  )
})
process.on('disconnect', () => { void (node ?? peer)?.stop().finally(() => process.exit(0)) })
