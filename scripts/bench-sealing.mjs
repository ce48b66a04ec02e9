#!/usr/bin/env node
// What sealed sender costs, item by item, over the built protocol package (no network):
// making an envelope; sealing it into the recipient's mailbox under the pair key, under
// a conference owner's writer key, and as a stranger's (with a stranger's work: a name's
// cost, at the network's CONF_CHAT_NAME_WORK_BITS, 7 unless set); a holder's checks of
// each (the item's signature, and for a stranger's the work); the recipient opening it;
// and the bytes of each form next to the envelope as it is; and the primitives under all
// of them (crypto.ts: a signature and its check, a sealed box and its opening, a pair's
// shared seed, a secretbox). Prints a table, writes JSON under results/.
//
//   npm run bench:sealing -- [--items 2000] [--strangers 10]
import { mkdir, writeFile } from 'node:fs/promises'
import { loadavg } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { RESULTS, fmt, stats, machineInfo, loadString } from './lib/bench.mjs'

const { values: flags } = parseArgs({
  options: {
    items: { type: 'string', default: '2000' },
    strangers: { type: 'string', default: '10' },
    out: { type: 'string', default: RESULTS },
    help: { type: 'boolean', default: false }
  }
})
if (flags.help) {
  console.log('usage: node scripts/bench-sealing.mjs [--items 2000 (per timed step)] [--strangers 10 (stranger\'s items: each does the work)] [--out results/]')
  process.exit(0)
}
const ITEMS = Number(flags.items)
const STRANGERS = Number(flags.strangers)

const {
  generateAccountKeys, keyIdOf, createEnvelope, mailboxItemOf, mailboxSetKey, sealEnvelope, sealStrangerEnvelope, conferenceWriterSeed,
  validateMailboxSetItem, decodeSealedEnvelopeItem, openSealedEnvelope, checkStrangerItemWork, DM_KIND, FRIEND_REQUEST_KIND, NAME_WORK_BITS,
  sign, verify, sealTo, openSealed, sharedSeed, secretbox
} = await import('@conf-chat/protocol')

const alice = generateAccountKeys()
const bob = generateAccountKeys()
const carol = generateAccountKeys()
const bobId = keyIdOf(bob.signPublic)
const setKey = mailboxSetKey(bobId)
const to = { username: 'bob', keyId: bobId, boxPublic: bob.boxPublic }
const text = 'x'.repeat(120)
const envelopes = Array.from({ length: ITEMS }, (_, i) => createEnvelope(DM_KIND, { text }, { username: 'alice', keys: alice }, to, 1_000 + i))
// carol owns a conference with alice and bob: alice holds carol's writer seed into bob's mailbox
const seed = conferenceWriterSeed(carol, bob.boxPublic, keyIdOf(carol.signPublic), bobId)

/** Microseconds per item of `fn` over `inputs` (one pass, after a warm-up of 50). */
function perItem (inputs, fn) {
  for (const x of inputs.slice(0, 50)) fn(x)
  const t = performance.now()
  const out = inputs.map(fn)
  return { us: (performance.now() - t) * 1000 / inputs.length, out }
}

const rows = []
const row = (what, us, bytes) => { rows.push({ what, us, bytes }) }

const made = perItem(envelopes.map((_, i) => i), i => createEnvelope(DM_KIND, { text }, { username: 'alice', keys: alice }, to, 1_000 + i))
row('make an envelope (sealed to the recipient, signed by the sender)', made.us, mailboxItemOf(envelopes[0]).data.length)
const pair = perItem(envelopes, e => sealEnvelope(e, alice, bob.boxPublic))
row('seal it into the mailbox under the pair key', pair.us, pair.out[0].data.length)
const owner = perItem(envelopes, e => sealEnvelope(e, alice, bob.boxPublic, seed))
row('seal it under a conference owner\'s writer key', owner.us, owner.out[0].data.length)
row('holder: check an open envelope', perItem(envelopes.map(mailboxItemOf), item => validateMailboxSetItem(setKey, item)).us, undefined)
row('holder: check a sealed item (pair or owner key)', perItem(pair.out, item => validateMailboxSetItem(setKey, item)).us, undefined)
row('recipient: open a sealed item (the inner signature only)', perItem(pair.out, item => openSealedEnvelope(decodeSealedEnvelopeItem(bobId, item, { signature: false }), bob)).us, undefined)

// the primitives, each over 200 bytes (about one direct message's envelope)
const message = new Uint8Array(200).fill(7)
const many = Array.from({ length: ITEMS }, () => message)
const signatures = perItem(many, m => sign(m, alice.signSecret))
row('primitive: Ed25519 signature', signatures.us, signatures.out[0].length)
row('primitive: Ed25519 signature check', perItem(signatures.out, sig => verify(sig, message, alice.signPublic)).us, undefined)
const boxes = perItem(many, m => sealTo(m, bob.boxPublic))
row('primitive: sealed box (crypto_box_seal)', boxes.us, boxes.out[0].length)
row('primitive: open a sealed box', perItem(boxes.out, box => openSealed(box, bob)).us, undefined)
row('primitive: a pair\'s shared seed (X25519, keyed BLAKE2b)', perItem(many, m => sharedSeed(alice, bob.boxPublic, m)).us, undefined)
row('primitive: secretbox (XSalsa20-Poly1305)', perItem(many, m => secretbox(m, new Uint8Array(24), new Uint8Array(32))).us, undefined)

// a stranger's: every item a new sender (its own pair key), so each does the work
const sealMs = []
const checkMs = []
let strangerBytes
for (let i = 0; i < STRANGERS; i++) {
  const sender = generateAccountKeys()
  const request = createEnvelope(FRIEND_REQUEST_KIND, { note: 'we met at the conference' }, { username: `sam${i}`, keys: sender }, to)
  let t = performance.now()
  const item = await sealStrangerEnvelope(request, sender, bob.boxPublic)
  sealMs.push(performance.now() - t)
  strangerBytes = item.data.length
  t = performance.now()
  validateMailboxSetItem(setKey, item)
  await checkStrangerItemWork(bobId, item)
  checkMs.push(performance.now() - t)
}
const seal = stats(sealMs, 1)
const check = stats(checkMs, 2)

console.log(`\n${'step (one 120-character direct message, unless said)'.padEnd(68)} ${'µs'.padStart(9)} ${'bytes'.padStart(7)}`)
for (const r of rows) console.log(`${r.what.padEnd(68)} ${fmt(r.us, 0).padStart(9)} ${(r.bytes == null ? '' : String(r.bytes)).padStart(7)}`)
console.log(`${'seal a friend request as a stranger\'s (the work: median, p95, max ms)'.padEnd(68)} ${`${fmt(seal.median, 0)}, ${fmt(seal.p95, 0)}, ${fmt(seal.max, 0)}`.padStart(9)} ${String(strangerBytes).padStart(7)}`)
console.log(`${'holder: check a stranger\'s item, with its work (median, max ms)'.padEnd(68)} ${`${fmt(check.median, 1)}, ${fmt(check.max, 1)}`.padStart(9)}`)
const load = loadavg()
console.log(`${ITEMS} items a step, ${STRANGERS} strangers at ${NAME_WORK_BITS} bits of work; machine: ${machineInfo().node}, load average ${loadString(load)}`)
await mkdir(flags.out, { recursive: true })
const file = join(flags.out, `bench-sealing-${new Date().toISOString().replace(/[:.]/g, '-')}.json`)
await writeFile(file, JSON.stringify({ items: ITEMS, strangers: STRANGERS, workBits: NAME_WORK_BITS, rows, strangerSealMs: seal, strangerCheckMs: check, strangerBytes, machine: machineInfo(), load }, null, 2))
console.log(`wrote ${file}`)
