#!/usr/bin/env node
// Direct-message figures between peer PROCESSES on loopback (each peer a child process
// running scripts/bench-messages-worker.mjs, built packages from dist/):
//   1. live round trip, send to acknowledgement: sendMessage() (the user's path: outbox,
//      history, seal, sign, stream, the recipient's checks, ack) and the chat protocol
//      alone (a made envelope), next to two baselines measured in the same run between
//      the same two processes: a raw node:net round trip (64 B on one open connection)
//      and a connection-per-message JSON exchange (connect, send one JSON object, read
//      one JSON reply, close: how a simple home-node design does it);
//   2. one-way messages per second in one conversation (each acknowledged), one at a
//      time and with --windows in flight (sendMessage, and the chat protocol alone with
//      made envelopes), next to JSON messages with a JSON reply on one TCP connection and
//      on a new connection each (one at a time and --window in flight);
//   3. time from login until N (1,000) queued offline messages are all shown, next to
//      the login alone.
// Prints a table and writes JSON under results/.
//
//   npm run build && node scripts/bench-messages.mjs [--rtt 500] [--oneway 2000] [--windows 1,16,64] [--offline 1000]
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { BenchRun, RESULTS, ROOT, fmt, profileMark, sleep, stats } from './lib/bench.mjs'

const { values: flags } = parseArgs({
  options: {
    rtt: { type: 'string', default: '500' },
    warmup: { type: 'string', default: '50' },
    oneway: { type: 'string', default: '2000' },
    window: { type: 'string', default: '16' },
    windows: { type: 'string', default: '1,16,64' },
    offline: { type: 'string', default: '1000' },
    holders: { type: 'string', default: '3' },
    out: { type: 'string', default: RESULTS },
    help: { type: 'boolean', default: false }
  }
})
if (flags.help) {
  console.log('usage: node scripts/bench-messages.mjs [--rtt 500] [--warmup 50] [--oneway 2000] [--window 16] [--windows 1,16,64] [--offline 1000] [--holders 3] [--out results/]')
  process.exit(0)
}
const RTT = Number(flags.rtt)
const WARMUP = Number(flags.warmup)
const ONEWAY = Number(flags.oneway)
const WINDOW = Number(flags.window)
const WINDOWS = flags.windows.split(',').map(Number).filter(w => w >= 1)
const OFFLINE = Number(flags.offline)
const HOLDERS = Number(flags.holders)
const PASSWORD = 'bench violet kettle'

const run = new BenchRun('messages', { workerScript: join(ROOT, 'scripts', 'bench-messages-worker.mjs') })
const startWorker = async (name, role, init) => await run.startWorker(name, role, init)

async function main () {
  console.log(`bench-messages: supernode + ${HOLDERS} DHT peers + 2 users, each a process; ${RTT} round trips, ${ONEWAY} one-way, ${OFFLINE} offline`)
  const supernode = await startWorker('supernode', 'peer', {})
  const bootstrap = [supernode.info.addrs[0]]
  await Promise.all(Array.from({ length: HOLDERS }, (_, i) => startWorker(`peer-${i}`, 'peer', { bootstrap })))
  // default settings (bcrypt, Argon2id, presence, timeouts): the figures are the product's
  const { w: alice } = await startWorker('alice', 'node', { bootstrap })
  const { w: bob } = await startWorker('bob', 'node', { bootstrap })
  await alice.call('register', { username: 'alice', password: PASSWORD, fullName: 'Alice' })
  await bob.call('register', { username: 'bob', password: PASSWORD, fullName: 'Bob' })
  await alice.call('addFriend', 'bob')
  for (let i = 0; i < 100 && (await bob.call('friendRequests')).incoming.length === 0; i++) await sleep(100)
  await bob.call('acceptFriend', 'alice')
  for (let i = 0; i < 100 && (await alice.call('friends')).length === 0; i++) await sleep(100)

  // 1. round trips between the same two processes: the baselines (raw TCP, JSON with a
  //    connection per message), then the chat protocol, then sendMessage
  const { port: echoPort } = await bob.request('tcpEchoServer')
  const { port: jsonPort } = await bob.request('jsonServer')
  const tcp = await alice.request('tcpRtt', { port: echoPort, n: RTT, warmup: WARMUP, size: 64 })
  const perMessage = await alice.request('connPerMessageRtt', { port: jsonPort, n: RTT, warmup: WARMUP })
  profileMark('round trips start', [alice, bob])
  const protocol = await alice.request('rttEnvelopes', { to: 'bob', n: RTT, warmup: WARMUP })
  profileMark('round trips, protocol done', [alice, bob])
  const messages = await alice.request('rttMessages', { to: 'bob', n: RTT, warmup: WARMUP })
  profileMark('round trips end', [alice, bob])

  // 2. one way, one conversation: one at a time, then WINDOW in flight; the same for the baselines
  const SEQ = Math.min(ONEWAY, 1000)
  const before = await bob.request('received')
  const seq = await alice.request('throughput', { to: 'bob', n: SEQ, window: 1 })
  const win = await alice.request('throughput', { to: 'bob', n: ONEWAY, window: WINDOW })
  const after = await bob.request('received')
  const shownAtBob = after.live - before.live
  // every window of --windows: sendMessage, then the chat protocol alone
  const byWindow = {}
  for (const w of WINDOWS) {
    const n = w === 1 ? SEQ : ONEWAY
    const m = await alice.request('throughput', { to: 'bob', n, window: w })
    const p = await alice.request('throughputEnvelopes', { to: 'bob', n, window: w })
    byWindow[w] = { sendMessage: { messages: n, ms: Math.round(m.ms), perSecond: Math.round(n / m.ms * 1000), delivered: m.delivered }, chatProtocol: { messages: n, ms: Math.round(p.ms), perSecond: Math.round(n / p.ms * 1000), delivered: p.delivered } }
  }
  // warm the baselines' code paths (the chat path was warmed by the round trips above)
  for (const perMessage of [false, true]) await alice.request('jsonThroughput', { port: jsonPort, n: Math.max(WARMUP, 1), window: WINDOW, perMessage })
  const jsonOne = {
    sequential: await alice.request('jsonThroughput', { port: jsonPort, n: SEQ, window: 1, perMessage: false }),
    windowed: await alice.request('jsonThroughput', { port: jsonPort, n: ONEWAY, window: WINDOW, perMessage: false })
  }
  const jsonPer = {
    sequential: await alice.request('jsonThroughput', { port: jsonPort, n: SEQ, window: 1, perMessage: true }),
    windowed: await alice.request('jsonThroughput', { port: jsonPort, n: ONEWAY, window: WINDOW, perMessage: true })
  }

  // 3. offline: bob away, alice queues OFFLINE messages, bob logs in
  let queued = { ms: NaN, statuses: {} }
  let offline = { loginMs: NaN, shownMs: NaN, shown: 0 }
  if (OFFLINE > 0) {
    await bob.call('logout')
    queued = await alice.request('sendMany', { to: 'bob', n: OFFLINE, concurrency: 50 })
    profileMark('offline login', [bob])
    offline = await bob.request('loginAndWait', { username: 'bob', password: PASSWORD, expected: OFFLINE, timeoutMs: 300_000 })
    profileMark('offline all shown', [bob])
  }

  const rss = await Promise.all(run.workers.map(w => w.request('stats')))
  const perSecond = (n, ms) => Math.round(n / ms * 1000)
  const rate = (n, r, extra = {}) => ({ messages: n, ms: Math.round(r.ms), perSecond: perSecond(n, r.ms), ...extra })
  const result = {
    setup: { holders: HOLDERS, rtt: RTT, warmup: WARMUP, oneway: ONEWAY, window: WINDOW, windows: WINDOWS, offline: OFFLINE },
    rttMs: {
      tcp: stats(tcp.ms),
      jsonConnectionPerMessage: stats(perMessage.ms),
      chatProtocol: { ...stats(protocol.ms), failed: protocol.failed },
      sendMessage: { ...stats(messages.ms), statuses: messages.statuses }
    },
    oneWay: {
      sequential: rate(SEQ, seq, { delivered: seq.delivered }),
      windowed: rate(ONEWAY, win, { window: WINDOW, delivered: win.delivered }),
      shownAtRecipient: shownAtBob,
      byWindow,
      baselines: {
        jsonOneConnection: { sequential: rate(SEQ, jsonOne.sequential, { replies: jsonOne.sequential.replies }), windowed: rate(ONEWAY, jsonOne.windowed, { window: WINDOW, replies: jsonOne.windowed.replies }) },
        jsonConnectionPerMessage: { sequential: rate(SEQ, jsonPer.sequential, { replies: jsonPer.sequential.replies }), windowed: rate(ONEWAY, jsonPer.windowed, { window: WINDOW, replies: jsonPer.windowed.replies }) }
      }
    },
    offline: {
      messages: OFFLINE,
      queueMs: Math.round(queued.ms),
      queuedPerSecond: perSecond(OFFLINE, queued.ms),
      statuses: queued.statuses,
      loginMs: Math.round(offline.loginMs),
      loginToAllShownMs: offline.shownMs == null ? null : Math.round(offline.shownMs),
      /** from the moment login() resolved */
      loggedInToAllShownMs: offline.shownMs == null ? null : Math.round(offline.shownMs - offline.loginMs),
      shown: offline.shown
    },
    rssMiB: Object.fromEntries(run.workers.map((w, i) => [w.name, Math.round(rss[i].rss / 2 ** 20)]))
  }

  const d = 3
  const row = (name, s) => `${name.padEnd(40)} ${String(s.n).padStart(5)} ${fmt(s.median, d).padStart(9)} ${fmt(s.p95, d).padStart(9)} ${fmt(s.p99, d).padStart(9)} ${fmt(s.mean, d).padStart(9)} ${fmt(s.min, d).padStart(9)} ${fmt(s.max, d).padStart(9)}`
  console.log('')
  console.log(`${'round trip (ms)'.padEnd(40)} ${'n'.padStart(5)} ${'median'.padStart(9)} ${'p95'.padStart(9)} ${'p99'.padStart(9)} ${'mean'.padStart(9)} ${'min'.padStart(9)} ${'max'.padStart(9)}`)
  console.log(row('baseline: raw TCP, 64 B (node:net)', result.rttMs.tcp))
  console.log(row('baseline: JSON, connection per message', result.rttMs.jsonConnectionPerMessage))
  console.log(row('chat protocol, envelope -> ack', result.rttMs.chatProtocol))
  console.log(row('sendMessage -> delivered (ack)', result.rttMs.sendMessage))
  console.log('')
  const o = result.oneWay
  console.log(`${'one way, one conversation (msg/s)'.padEnd(40)} ${'1 at a time'.padStart(12)} ${`${WINDOW} in flight`.padStart(12)}`)
  const orow = (name, r) => console.log(`${name.padEnd(40)} ${String(r.sequential.perSecond).padStart(12)} ${String(r.windowed.perSecond).padStart(12)}`)
  orow('sendMessage -> delivered (ack)', o)
  orow('baseline: JSON + reply, one connection', o.baselines.jsonOneConnection)
  orow('baseline: JSON, connection per message', o.baselines.jsonConnectionPerMessage)
  console.log(`(${shownAtBob} shown at bob)`)
  console.log('')
  console.log(`${'one way, one conversation (msg/s)'.padEnd(40)} ${WINDOWS.map(w => `${w} in flight`.padStart(12)).join(' ')}`)
  console.log(`${'sendMessage -> delivered (ack)'.padEnd(40)} ${WINDOWS.map(w => String(byWindow[w].sendMessage.perSecond).padStart(12)).join(' ')}`)
  console.log(`${'chat protocol, envelope -> ack'.padEnd(40)} ${WINDOWS.map(w => String(byWindow[w].chatProtocol.perSecond).padStart(12)).join(' ')}`)
  const undelivered = WINDOWS.flatMap(w => [byWindow[w].sendMessage.messages - byWindow[w].sendMessage.delivered, byWindow[w].chatProtocol.messages - byWindow[w].chatProtocol.delivered]).reduce((a, b) => a + b, 0)
  if (undelivered > 0) console.log(`(${undelivered} of the windowed sends were not delivered live)`)
  console.log('')
  console.log(`offline: ${OFFLINE} queued in ${(queued.ms / 1000).toFixed(1)} s (${result.offline.queuedPerSecond}/s, ${JSON.stringify(queued.statuses)})`)
  console.log(`offline: login ${result.offline.loginMs} ms; login -> ${result.offline.loginToAllShownMs != null ? `all ${offline.shown} shown ${result.offline.loginToAllShownMs} ms (${result.offline.loggedInToAllShownMs} ms after the login resolved)` : `only ${offline.shown} of ${OFFLINE} shown in 300 s`}`)
  console.log(run.machineLine())
  const file = await run.writeResult(flags.out, result)
  console.log(`\nwrote ${file}`)
  let code = 0
  if (offline.shown < OFFLINE) { console.error(`only ${offline.shown} of ${OFFLINE} offline messages shown`); code = 1 }
  if (protocol.failed > 0 || (messages.statuses.delivered ?? 0) < WARMUP + RTT) { console.error('some live round trips were not delivered'); code = 1 }
  return code
}

await run.run(main)
