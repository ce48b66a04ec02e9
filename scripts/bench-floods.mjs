#!/usr/bin/env node
// Floods against one holder, sent as a hostile peer sends them (PUT_VALUE and set ADD
// frames straight to it), and what the holder holds after each (a mailbox flood twice:
// without and with its owner's writer list; then strangers' sealed items into the mailbox
// with the list, under one key and under a fresh key each): the bytes it keeps for
// others (DHT records and set items, as its datastore counts them) and how many of the
// flood's records or items it took, and why it refused the rest. One process: a
// supernode, the holder (its storage budget set by --storage), the attacker's peer and a
// few more peers, on 127.0.0.1. Names need no proof of work here (CONF_CHAT_NAME_WORK_BITS=0:
// the work is not what is measured). Prints a table, writes JSON under results/.
//
//   npm run bench:floods -- [--records 1000] [--record-kib 120] [--envelopes 10000] [--entries 1000] [--storage 64] [--peers 4]
import { mkdtemp, rm, writeFile, mkdir } from 'node:fs/promises'
import { tmpdir, loadavg } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { RESULTS, fmt, machineInfo, loadString } from './lib/bench.mjs'

process.env.CONF_CHAT_NAME_WORK_BITS = '0'
const { values: flags } = parseArgs({
  options: {
    records: { type: 'string', default: '1000' },
    'record-kib': { type: 'string', default: '120' },
    envelopes: { type: 'string', default: '10000' },
    entries: { type: 'string', default: '1000' },
    storage: { type: 'string', default: '64' },
    peers: { type: 'string', default: '4' },
    out: { type: 'string', default: RESULTS },
    help: { type: 'boolean', default: false }
  }
})
if (flags.help) {
  console.log('usage: node scripts/bench-floods.mjs [--records 1000] [--record-kib 120] [--envelopes 10000] [--entries 1000] [--storage 64 (MiB)] [--peers 4] [--out results/]')
  process.exit(0)
}
const RECORDS = Number(flags.records)
const RECORD_BYTES = Number(flags['record-kib']) * 1024
const ENVELOPES = Number(flags.envelopes)
const ENTRIES = Number(flags.entries)
const STORAGE = Number(flags.storage) * 1024 * 1024
const PEERS = Number(flags.peers)

const {
  generateAccountKeys, keyIdOf, stateKey, userKey, mailboxSetKey, directorySetKey, directoryShardOf, createDirectoryItem,
  createSignedRecord, encodeSignedRecord, createEnvelope, mailboxItemOf, encodeSetMessage, decodeSetResponse,
  createWriterListItem, sealStrangerEnvelope, SET_PROTOCOL, MAX_SET_FRAME_BYTES, DM_KIND, FRIEND_REQUEST_KIND
} = await import('@conf-chat/protocol')
const { ChatPeer, DHT_PROTOCOL } = await import('@conf-chat/node/network')
const { Libp2pRecord } = await import('@libp2p/record')
const { lpStream } = await import('@libp2p/utils')
const { fromString: bytesFromString, concat } = await import('uint8arrays')

const MiB = 1024 * 1024
const signed = (key, payload, keys) => encodeSignedRecord(createSignedRecord(key, 1, payload, keys))

/** One kad-dht PUT_VALUE (type 0, key, record) to `to`: 'stored' if echoed, 'refused' if the stream was reset. */
async function sendPut (from, to, key, value) {
  const varint = n => { const out = []; for (; n > 0x7f; n >>>= 7) out.push((n & 0x7f) | 0x80); out.push(n); return Uint8Array.from(out) }
  const field = (tag, bytes) => concat([Uint8Array.of(tag), varint(bytes.length), bytes])
  const keyBytes = bytesFromString(key)
  const message = concat([Uint8Array.of(0x08, 0x00), field(0x12, keyBytes), field(0x1a, new Libp2pRecord(keyBytes, value, new Date()).serialize())])
  const signal = AbortSignal.timeout(20_000)
  const stream = await from.libp2p.dialProtocol(to, DHT_PROTOCOL, { signal })
  const lp = lpStream(stream, { maxDataLength: 4 * MiB })
  await lp.write(message, { signal })
  try {
    await lp.read({ signal })
  } catch {
    return 'refused'
  }
  await stream.close().catch(() => {})
  return 'stored'
}

/** One set ADD frame of `items` to `to`: the holder's answer. */
async function sendAdd (from, to, setKey, items) {
  const signal = AbortSignal.timeout(60_000)
  const stream = await from.libp2p.dialProtocol(to, SET_PROTOCOL, { signal })
  const lp = lpStream(stream, { maxDataLength: MAX_SET_FRAME_BYTES })
  await lp.write(encodeSetMessage({ type: 'add', setKey, items }), { signal })
  const res = decodeSetResponse((await lp.read({ signal })).subarray())
  await stream.close().catch(() => {})
  return res
}

/** Items in ADD frames of at most ~1 MiB each; counts what the holder accepted and refused, by code. */
async function flood (from, to, setKey, items) {
  const counts = { accepted: 0, refused: {} }
  let frame = []
  let bytes = 0
  const send = async () => {
    if (frame.length === 0) return
    const res = await sendAdd(from, to, setKey, frame)
    if (res.type === 'added') {
      counts.accepted += res.accepted.length
      for (const r of res.rejected) counts.refused[r.code] = (counts.refused[r.code] ?? 0) + 1
    } else {
      counts.refused[res.code] = (counts.refused[res.code] ?? 0) + frame.length
    }
    frame = []
    bytes = 0
  }
  for (const item of items) {
    if (bytes + item.data.length > MiB) await send()
    frame.push(item)
    bytes += item.data.length
  }
  await send()
  return counts
}

const dirs = []
const peers = []
async function start (init = {}) {
  const dataDir = await mkdtemp(join(tmpdir(), 'conf-chat-floods-'))
  dirs.push(dataDir)
  const peer = new ChatPeer({ dataDir, host: '127.0.0.1', port: 0, setMaintenanceIntervalMs: 0, ...init })
  peers.push(peer)
  await peer.start()
  if (init.bootstrap != null) await peer.waitJoined({ signal: AbortSignal.timeout(20_000) })
  return peer
}

async function main () {
  console.log(`bench-floods: a holder with a storage budget of ${STORAGE / MiB} MiB, ${PEERS} other peers`)
  const supernode = await start()
  const bootstrap = [supernode.multiaddrs[0].toString()]
  const holder = await start({ bootstrap, storageBudgetBytes: STORAGE })
  const attacker = await start({ bootstrap })
  for (let i = 0; i < PEERS; i++) await start({ bootstrap })
  const held = () => holder.storage.heldBytes
  const rows = []
  const row = async (what, sent, fn) => {
    const before = held()
    const t = Date.now()
    const result = await fn()
    // an eviction started by the last write ends before the figure is read: back under the budget
    for (const end = Date.now() + 30_000; held() > STORAGE && Date.now() < end;) await new Promise(resolve => setTimeout(resolve, 50))
    rows.push({ what, sent, ...result, heldBefore: before, heldAfter: held(), ms: Date.now() - t })
  }

  // 1. records of ~RECORD_BYTES under fresh keys (each key's own, so each passes every validator)
  await row(`${RECORDS} records of ${RECORD_BYTES / 1024} KiB under fresh keys`, RECORDS, async () => {
    const answers = { stored: 0, refused: 0 }
    for (let i = 0; i < RECORDS; i++) {
      const keys = generateAccountKeys()
      const key = stateKey(keyIdOf(keys.signPublic))
      const value = signed(key, { sealed: new Uint8Array(RECORD_BYTES - 300).fill(i % 251), updatedAt: Date.now() }, keys)
      answers[await sendPut(attacker, holder.peerId, key, value)]++
    }
    return { accepted: answers.stored, refused: { 'refused (any reason)': answers.refused } }
  })

  // 2. a registered sender floods one user's mailbox
  const victim = generateAccountKeys()
  const sender = { username: 'flooder', keys: generateAccountKeys() }
  const account = {
    type: 'account', username: sender.username, fullName: 'Flooder', boxPublic: sender.keys.boxPublic, passwordHash: '$2b$04$' + 'a'.repeat(53),
    secretKeys: { kdf: 'scrypt', N: 1024, r: 8, p: 1, salt: new Uint8Array(16), nonce: new Uint8Array(24), ciphertext: new Uint8Array(80) },
    work: 0, createdAt: Date.now(), updatedAt: Date.now()
  }
  await attacker.records.put(userKey(sender.username), signed(userKey(sender.username), account, sender.keys))
  const to = { username: 'victim', keyId: keyIdOf(victim.signPublic), boxPublic: victim.boxPublic }
  await row(`${ENVELOPES} envelopes of 1 KiB from one registered sender into one mailbox`, ENVELOPES, async () =>
    await flood(attacker, holder.peerId, mailboxSetKey(to.keyId), Array.from({ length: ENVELOPES }, (_, i) =>
      mailboxItemOf(createEnvelope(DM_KIND, { text: `${i} ${'x'.repeat(900)}` }, sender, to)))))

  // 2b. the same sender into the mailbox of a user who keeps a writer list (naming a friend, not the sender):
  // half friend requests, half direct messages
  const listed = generateAccountKeys()
  const listedTo = { username: 'listed', keyId: keyIdOf(listed.signPublic), boxPublic: listed.boxPublic }
  const listKey = mailboxSetKey(listedTo.keyId)
  await flood(attacker, holder.peerId, listKey, [createWriterListItem(listed, [keyIdOf(generateAccountKeys().signPublic)])])
  await row(`${ENVELOPES} envelopes of 1 KiB, the same sender, a mailbox with a writer list`, ENVELOPES, async () =>
    await flood(attacker, holder.peerId, listKey, Array.from({ length: ENVELOPES }, (_, i) =>
      mailboxItemOf(createEnvelope(i % 2 === 0 ? FRIEND_REQUEST_KIND : DM_KIND, i % 2 === 0 ? { note: `${i} ${'x'.repeat(150)}` } : { text: `${i} ${'x'.repeat(900)}` }, sender, listedTo)))))

  // 2c. strangers' sealed items into that mailbox (holders cannot see sender or kind; each key's work is a
  // name's cost, none here): all under one key, then each under a fresh key
  const sealedItems = async (fresh) => await Promise.all(Array.from({ length: ENVELOPES / 10 }, async (_, i) => {
    const from = fresh ? { username: `s${i}`, keys: generateAccountKeys() } : sender
    return await sealStrangerEnvelope(createEnvelope(FRIEND_REQUEST_KIND, { note: `${i} ${'x'.repeat(150)}` }, from, listedTo), from.keys, listedTo.boxPublic)
  }))
  await row(`${ENVELOPES / 10} strangers' sealed items, one key, the same mailbox`, ENVELOPES / 10, async () =>
    await flood(attacker, holder.peerId, listKey, await sealedItems(false)))
  await row(`${ENVELOPES / 10} strangers' sealed items, a fresh key each, the same mailbox`, ENVELOPES / 10, async () =>
    await flood(attacker, holder.peerId, listKey, await sealedItems(true)))

  // 3. directory entries for names nobody registered, all in one shard
  const shard = directoryShardOf('a')
  const names = []
  for (let i = 0; names.length < ENTRIES; i++) if (directoryShardOf(`fake${i}`) === shard) names.push(`fake${i}`)
  await row(`${ENTRIES} directory entries of names nobody registered`, ENTRIES, async () =>
    await flood(attacker, holder.peerId, directorySetKey(shard), names.map(n => createDirectoryItem({ username: n, fullName: n }, generateAccountKeys()))))

  console.log(`\n${'flood'.padEnd(66)} ${'taken'.padStart(6)}  refused (by code)${' '.repeat(22)} held before -> after (MiB)     s`)
  for (const r of rows) {
    const refused = Object.entries(r.refused).map(([c, n]) => `${c} ${n}`).join(', ') || '-'
    console.log(`${r.what.padEnd(66)} ${String(r.accepted).padStart(6)}  ${refused.padEnd(38)} ${fmt(r.heldBefore / MiB, 1).padStart(6)} -> ${fmt(r.heldAfter / MiB, 1).padStart(6)}   ${fmt(r.ms / 1000, 1).padStart(5)}`)
  }
  const load = loadavg()
  console.log(`storage budget ${STORAGE / MiB} MiB (evicts down to 90 %); machine: ${machineInfo().node}, load average ${loadString(load)}`)
  await mkdir(flags.out, { recursive: true })
  const file = join(flags.out, `bench-floods-${new Date().toISOString().replace(/[:.]/g, '-')}.json`)
  await writeFile(file, JSON.stringify({ storageBytes: STORAGE, peers: PEERS, rows, machine: machineInfo(), load }, null, 2))
  console.log(`wrote ${file}`)
}

try {
  await main()
} finally {
  await Promise.allSettled(peers.map(async p => await p.stop()))
  await Promise.allSettled(dirs.map(async d => await rm(d, { recursive: true, force: true })))
}
