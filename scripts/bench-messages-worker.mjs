// One peer of scripts/bench-messages.mjs, in a process of its own: a plain DHT peer
// (supernode, holders) or a ChatNode (a user); see scripts/lib/bench-worker.mjs. The
// baselines run between the same two processes: a raw TCP echo (node:net) and JSON
// objects over TCP, on one connection or on a new connection per message (the simple
// home-node design).
import { createServer, connect } from 'node:net'
import { createEnvelope, DM_KIND } from '@conf-chat/protocol'
import { self, serve, startPeer } from './lib/bench-worker.mjs'
import { userCommands, watchUser } from './lib/user-worker.mjs'

/** Live messages shown to this user (offline ones are counted by user-worker.mjs's loginAndWait). */
const received = { live: 0 }
const servers = []

function countArrivals (node) {
  watchUser(node)
  node.addEventListener('message', () => { received.live++ })
}

/** Live round trips through the whole user path: sendMessage() until the recipient's ack. */
async function rttMessages ({ to, n, warmup }) {
  const ms = []
  const statuses = {}
  for (let i = 0; i < warmup + n; i++) {
    const t = performance.now()
    const r = await self.node.sendMessage(to, `round trip ${i} ${'x'.repeat(16)}`)
    const dt = performance.now() - t
    statuses[r.status] = (statuses[r.status] ?? 0) + 1
    if (i >= warmup) ms.push(dt)
  }
  return { ms, statuses }
}

/** Round trips of the chat protocol alone: a made envelope, sent and acknowledged. */
async function rttEnvelopes ({ to, n, warmup }) {
  const node = self.node
  const profile = await node.profile(to)
  const where = await node.presenceOf(to)
  const me = node.session.account
  const ms = []
  let failed = 0
  for (let i = 0; i < warmup + n; i++) {
    const env = createEnvelope(DM_KIND, { text: `protocol ${i}` }, { username: me.username, keys: me.keys }, profile)
    const t = performance.now()
    const r = await node.parts.messenger.send(where.peerId, where.addrs, env) // the chat protocol alone, below the ChatNode interface
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
      const r = await self.node.sendMessage(to, `one way ${i} ${'y'.repeat(32)}`)
      if (r.status === 'delivered') delivered++
    }
  }
  await Promise.all(Array.from({ length: window }, lane))
  return { ms: performance.now() - t, delivered }
}

/**
 * One-way envelopes of the chat protocol alone, `window` in flight: made envelopes (made
 * before the clock starts), sent and acknowledged, below the outbox and the history.
 */
async function throughputEnvelopes ({ to, n, window }) {
  const node = self.node
  const profile = await node.profile(to)
  const where = await node.presenceOf(to)
  const me = node.session.account
  const envelopes = Array.from({ length: n }, (_, i) => createEnvelope(DM_KIND, { text: `one way ${i} ${'y'.repeat(32)}` }, { username: me.username, keys: me.keys }, profile))
  let next = 0
  let delivered = 0
  const t = performance.now()
  const lane = async () => {
    while (next < n) {
      const r = await node.parts.messenger.send(where.peerId, where.addrs, envelopes[next++])
      if (r.delivered) delivered++
    }
  }
  await Promise.all(Array.from({ length: window }, lane))
  return { ms: performance.now() - t, delivered }
}

async function listen (server) {
  servers.push(server)
  await new Promise(resolve => server.listen(0, '127.0.0.1', resolve))
  return { port: server.address().port }
}

/** Baseline server: echoes raw bytes. */
async function tcpEchoServer () {
  return await listen(createServer(socket => {
    socket.setNoDelay(true)
    socket.on('data', d => socket.write(d))
    socket.on('error', () => {})
  }))
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

/** Split a socket's bytes into lines; `onLine` gets each (without the newline). */
function readLines (socket, onLine) {
  let buffered = ''
  socket.setEncoding('utf8')
  socket.on('data', chunk => {
    buffered += chunk
    let nl
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl)
      buffered = buffered.slice(nl + 1)
      onLine(line)
    }
  })
}

/**
 * Baseline server of the simple home-node design: newline-delimited JSON objects in, one
 * JSON reply per object out (the message parsed, an id and a time stamp back). The client
 * chooses one connection per message or one for all.
 */
async function jsonServer () {
  let seq = 0
  return await listen(createServer(socket => {
    socket.setNoDelay(true)
    socket.on('error', () => {})
    socket.on('end', () => socket.end())
    readLines(socket, line => {
      const msg = JSON.parse(line)
      socket.write(JSON.stringify({ ok: true, id: ++seq, re: msg.seq, at: Date.now() }) + '\n')
    })
  }))
}

const jsonMessage = i => ({ type: 'dm', from: 'alice', to: 'bob', seq: i, sentAt: Date.now(), text: `one way ${i} ${'y'.repeat(32)}` })

/** One exchange of the connection-per-message design: connect, send one JSON object, read one JSON reply, close. */
function exchangeOnNewConnection (port, msg) {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    socket.setNoDelay(true)
    let reply
    socket.once('error', reject)
    socket.once('connect', () => { socket.write(JSON.stringify(msg) + '\n') })
    readLines(socket, line => {
      reply = JSON.parse(line)
      resolve({ reply, closed: new Promise(resolve => { socket.once('close', resolve); socket.end() }) })
    })
  })
}

/** Connection-per-message round trips: from connect() until the reply is parsed (the close is not timed, but awaited). */
async function connPerMessageRtt ({ port, n, warmup }) {
  const ms = []
  for (let i = 0; i < warmup + n; i++) {
    const t = performance.now()
    const { closed } = await exchangeOnNewConnection(port, jsonMessage(i))
    const dt = performance.now() - t
    await closed
    if (i >= warmup) ms.push(dt)
  }
  return { ms }
}

/**
 * JSON messages per second, each waiting for its JSON reply, `window` in flight: on one
 * persistent connection (replies come back in order), or on a new connection each.
 */
async function jsonThroughput ({ port, n, window, perMessage }) {
  let next = 0
  let replies = 0
  let lane
  let socket
  if (perMessage) {
    lane = async () => {
      while (next < n) {
        const { closed } = await exchangeOnNewConnection(port, jsonMessage(next++))
        replies++
        await closed
      }
    }
  } else {
    socket = connect(port, '127.0.0.1')
    socket.setNoDelay(true)
    await new Promise((resolve, reject) => { socket.once('connect', resolve); socket.once('error', reject) })
    const waiting = []
    readLines(socket, line => { JSON.parse(line); waiting.shift()() })
    lane = async () => {
      while (next < n) {
        const msg = jsonMessage(next++)
        await new Promise(resolve => { waiting.push(resolve); socket.write(JSON.stringify(msg) + '\n') })
        replies++
      }
    }
  }
  const t = performance.now()
  await Promise.all(Array.from({ length: window }, lane))
  const ms = performance.now() - t
  socket?.destroy()
  return { ms, replies }
}

serve({
  start: msg => startPeer(msg, { joinTimeoutMs: 60_000, setup: countArrivals }),
  received: async () => ({ ...received }),
  rttMessages,
  rttEnvelopes,
  throughput,
  throughputEnvelopes,
  sendMany: userCommands.sendMany,
  loginAndWait: userCommands.loginAndWait,
  tcpEchoServer,
  tcpRtt,
  jsonServer,
  connPerMessageRtt,
  jsonThroughput
}, { cleanup: () => { for (const s of servers) s.close() } })
