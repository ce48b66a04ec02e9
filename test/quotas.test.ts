/**
 * Quotas where a stranger can write, on real peers on loopback, attacked as a hostile
 * peer would: PUT_VALUE and set ADD frames sent by hand straight to one chosen store.
 *
 * Scaled down: 6 peers, where only the 2 closest to a key may store under it (the
 * product: 20 for records, twice the replica count for sets).
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { createHash } from 'node:crypto'
import { fromString as bytesFromString } from 'uint8arrays'
import {
  generateAccountKeys, keyIdOf, presenceKey, userKey, mailboxSetKey, encodeSetMessage, createEnvelope, mailboxItemOf, createReadAuth, createRemoveAuth,
  type AccountKeys, type SetItem
} from '@conf-chat/protocol'
import type { ChatPeer } from '@conf-chat/node/network'
import { startNetwork, type TestNetwork } from './helpers/network.js'
import { eventually } from './helpers/chat.js'
import { sendPut, presence, signed, storeUnchecked } from './helpers/records.js'
import { accountOf, testRules, signedItem, rawRequest } from './helpers/sets.js'

const RANK = 2

const kadId = (bytes: Uint8Array): Buffer => createHash('sha256').update(bytes).digest()

/** How many of `peers` are closer to `key` than `peer` (XOR of SHA-256 ids, as kad-dht measures). */
function closerThan (peer: ChatPeer, key: string, peers: ChatPeer[]): number {
  const target = kadId(bytesFromString(key))
  const distance = (p: ChatPeer): Buffer => Buffer.from(kadId(p.peerId.toMultihash().bytes).map((b, i) => b ^ target[i]!))
  const own = distance(peer)
  return peers.filter(p => p !== peer && Buffer.compare(distance(p), own) < 0).length
}

describe(`holders store only under keys they are among the ${RANK} closest to`, () => {
  let net: TestNetwork
  let stores: ChatPeer[]
  /** Each store's neighbour sends to it (a peer cannot dial itself). */
  const senderFor = (i: number): ChatPeer => stores[(i + 1) % stores.length]!
  const responsible = (key: string): boolean[] => stores.map(s => closerThan(s, key, stores) < RANK)

  beforeAll(async () => {
    net = await startNetwork(5, {
      recordResponsibleRank: RANK, setResponsibleRank: RANK, republishIntervalMs: 0, setMaintenanceIntervalMs: 0, setNamespaces: { 'cc-test': testRules }
    })
    stores = [net.supernode, ...net.peers]
  }, 90_000)
  afterAll(async () => { await net?.cleanup() }, 60_000)

  it('a record sent straight to each store is kept by the closest only; every other store refuses it', async () => {
    const owner = generateAccountKeys()
    const key = presenceKey(keyIdOf(owner.signPublic))
    const value = signed(key, 1, presence('someone'), owner)
    const answers = []
    for (const [i, store] of stores.entries()) answers.push(await sendPut(senderFor(i).libp2p, store.peerId, key, value))
    const expected = responsible(key).map(r => r ? 'stored' : 'refused')
    expect(expected.filter(a => a === 'stored')).toHaveLength(RANK)
    expect(answers).toEqual(expected)
    const held = await Promise.all(stores.map(async s => (await s.records.storedValue(key)) != null))
    expect(held).toEqual(responsible(key))
  })

  it('a set item sent straight to each holder is stored by the closest only; the others refuse with not-responsible', async () => {
    const owner = generateAccountKeys()
    const setKey = `/cc-test/${keyIdOf(owner.signPublic)}`
    const item = signedItem(owner, setKey, 'hello')
    const frame = encodeSetMessage({ type: 'add', setKey, items: [item] })
    const answers = []
    for (const [i, store] of stores.entries()) answers.push(await rawRequest(senderFor(i), store.peerId, frame))
    expect(answers).toEqual(responsible(setKey).map(r => r
      ? { type: 'added', accepted: [item.id], rejected: [] }
      : expect.objectContaining({ type: 'error', code: 'not-responsible' })))
  })

  it('an honest writer far from the key still gets its record and its items onto the closest peers', async () => {
    const owner = generateAccountKeys()
    const key = presenceKey(keyIdOf(owner.signPublic))
    const far = stores[responsible(key).indexOf(false)]!
    expect((await far.records.put(key, signed(key, 1, presence('someone'), owner))).replicas).toBeGreaterThanOrEqual(1)
    // its own copy it keeps (a peer may hold what it wrote itself); of the others, the closest only
    const held = await Promise.all(stores.map(async s => (await s.records.storedValue(key)) != null))
    expect(held.filter((h, i) => h && stores[i] !== far && !responsible(key)[i])).toEqual([])
    const setKey = `/cc-test/${keyIdOf(owner.signPublic)}`
    const writer = stores[responsible(setKey).indexOf(false)]!
    const { stored } = await writer.sets.add(setKey, [signedItem(owner, setKey, 'from afar')])
    expect(Object.values(stored)[0]).toBeGreaterThanOrEqual(1)
  })

  it('a record dies where its owner signed it would: no store serves, republishes or takes it after that', async () => {
    const owner = generateAccountKeys()
    const key = presenceKey(keyIdOf(owner.signPublic))
    const value = signed(key, 1, presence('someone', { expiresAt: Date.now() + 1_500 }), owner)
    const store = stores[responsible(key).indexOf(true)]!
    expect(await sendPut(senderFor(stores.indexOf(store)).libp2p, store.peerId, key, value)).toBe('stored')
    await eventually(async () => (await store.records.storedValue(key)) == null)
    for (const s of stores) await s.records.republish()
    expect(await Promise.all(stores.map(async s => await s.records.storedValue(key)))).toEqual(stores.map(() => undefined))
    expect(await sendPut(senderFor(stores.indexOf(store)).libp2p, store.peerId, key, value)).toBe('refused')
  })

  it('only the owner of a mailbox, and its holders, read it: a stranger gets unauthorized, a signature is good on one holder once asked', async () => {
    const owner = generateAccountKeys()
    const setKey = mailboxSetKey(keyIdOf(owner.signPublic))
    const [holder, coHolder] = stores.filter((_, i) => responsible(setKey)[i]) as [ChatPeer, ChatPeer]
    const stranger = stores[responsible(setKey).indexOf(false)]!
    // a registered writer leaves one envelope
    const writer = { username: 'writer', keys: generateAccountKeys() }
    await stranger.records.put(userKey('writer'), signed(userKey('writer'), 1, accountOf('writer', writer.keys), writer.keys))
    const envelope = createEnvelope('dm', { text: 'for the owner only' }, writer, { username: 'owner', keyId: keyIdOf(owner.signPublic), boxPublic: owner.boxPublic })
    await stranger.sets.add(setKey, [mailboxItemOf(envelope)])
    // what it shows (sender, kind, time) the stranger cannot list, nor get by id
    for (const req of [{ type: 'list', setKey }, { type: 'list', setKey, idsOnly: true }, { type: 'get', setKey, ids: [envelope.id] }] as const) {
      expect(await rawRequest(stranger, holder.peerId, encodeSetMessage(req))).toMatchObject({ type: 'error', code: 'unauthorized' })
    }
    // another holder of the set lists it (to hand it on) without a signature
    expect(await rawRequest(coHolder, holder.peerId, encodeSetMessage({ type: 'list', setKey, idsOnly: true }))).toEqual({ type: 'ids', ids: [envelope.id] })
    // the owner, from the stranger's peer: each holder gives a nonce, the owner signs it
    expect((await stranger.sets.list(setKey, { readAs: owner })).map(i => i.id)).toEqual([envelope.id])
    // someone else's signature, and the owner's signature for one holder shown to another, are refused
    await expect(stranger.sets.list(setKey, { readAs: generateAccountKeys() })).rejects.toMatchObject({ name: 'SetReadError' })
    const challenge = await rawRequest(stranger, holder.peerId, encodeSetMessage({ type: 'challenge', setKey })) as { nonce: Uint8Array }
    const forHolder = createReadAuth(setKey, holder.peerId.toString(), challenge.nonce, owner)
    expect(await rawRequest(stranger, holder.peerId, encodeSetMessage({ type: 'list', setKey, idsOnly: true, auth: forHolder }))).toEqual({ type: 'ids', ids: [envelope.id] })
    expect(await rawRequest(stranger, coHolder.peerId, encodeSetMessage({ type: 'list', setKey, idsOnly: true, auth: forHolder }))).toMatchObject({ type: 'error', code: 'unauthorized' })
  })

  it('a holder new to a mailbox takes its removals before it serves it: a replayed delivered envelope does not come back', async () => {
    const owner = generateAccountKeys()
    const setKey = mailboxSetKey(keyIdOf(owner.signPublic))
    const [first, second] = stores.filter((_, i) => responsible(setKey)[i]) as [ChatPeer, ChatPeer]
    const attacker = stores[responsible(setKey).indexOf(false)]!
    const writer = { username: 'writer2', keys: generateAccountKeys() }
    await attacker.records.put(userKey('writer2'), signed(userKey('writer2'), 1, accountOf('writer2', writer.keys), writer.keys))
    const envelope = createEnvelope('dm', { text: 'delivered long ago' }, writer, { username: 'owner', keyId: keyIdOf(owner.signPublic), boxPublic: owner.boxPublic })
    const item = mailboxItemOf(envelope)
    // the envelope reached one holder, and its owner read it and removed it there
    expect(await rawRequest(attacker, first.peerId, encodeSetMessage({ type: 'add', setKey, items: [item] }))).toMatchObject({ accepted: [item.id] })
    const auth = createRemoveAuth(setKey, [item.id], owner)
    expect(await rawRequest(attacker, first.peerId, encodeSetMessage({ type: 'remove', setKey, ids: [item.id], auth }))).toEqual({ type: 'removed', removed: 1 })
    // the attacker replays it to the other holder, which never had the set
    expect(await rawRequest(attacker, second.peerId, encodeSetMessage({ type: 'add', setKey, items: [item] }))).toMatchObject({ accepted: [item.id] })
    // the owner reads that holder: it took the removal from the first before answering
    const challenge = await rawRequest(attacker, second.peerId, encodeSetMessage({ type: 'challenge', setKey })) as { nonce: Uint8Array }
    const read = createReadAuth(setKey, second.peerId.toString(), challenge.nonce, owner)
    expect(await rawRequest(attacker, second.peerId, encodeSetMessage({ type: 'list', setKey, idsOnly: true, auth: read }))).toEqual({ type: 'ids', ids: [] })
    expect(await second.sets.localItems(setKey)).toEqual([])
  })

  it('republishing hands a record on to the closest peers and deletes the copy of a store that is not close to it', async () => {
    const owner = generateAccountKeys()
    const key = presenceKey(keyIdOf(owner.signPublic))
    const value = signed(key, 1, presence('someone'), owner)
    const farIndex = responsible(key).indexOf(false)
    const far = stores[farIndex]!
    // a copy on a store that was close once (or took it before this check existed)
    await storeUnchecked(far, key, value)
    expect(await far.records.storedValue(key)).toBeDefined()
    await far.records.republish()
    expect(await far.records.storedValue(key)).toBeUndefined()
    const held = await Promise.all(stores.map(async s => (await s.records.storedValue(key)) != null))
    expect(held).toEqual(responsible(key))
  })
})

describe('limits per writer and per set, and the storage budget of a peer', () => {
  const WRITER_ITEMS = 5
  const SET_BYTES = 100 * 1024
  const BUDGET = 400 * 1024
  let net: TestNetwork
  let writer: ChatPeer

  /** Register `username` to `keys` (its account record in the DHT). */
  async function register (username: string, keys: AccountKeys): Promise<void> {
    await writer.records.put(userKey(username), signed(userKey(username), 1, accountOf(username, keys), keys))
  }

  /** An envelope from `from` to the owner of `to`, as a mailbox item. */
  function envelopeItem (from: { username: string, keys: AccountKeys }, to: AccountKeys, text: string): SetItem {
    const envelope = createEnvelope('dm', { text }, from, { username: 'victim', keyId: keyIdOf(to.signPublic), boxPublic: to.boxPublic })
    return mailboxItemOf(envelope)
  }

  beforeAll(async () => {
    net = await startNetwork(3, {
      setReplicas: 2, setMaintenanceIntervalMs: 0, republishIntervalMs: 0, writerLimits: { items: WRITER_ITEMS, bytes: 1024 * 1024 }, maxBytesPerSet: SET_BYTES, setNamespaces: { 'cc-test': testRules }
    })
    writer = net.peers[0]!
  }, 90_000)
  afterAll(async () => { await net?.cleanup() }, 60_000)

  it('a registered writer flooding a mailbox gets its share only (rate-limited); a friend still leaves a message', async () => {
    const victim = generateAccountKeys()
    const spammer = { username: 'spammer', keys: generateAccountKeys() }
    const friend = { username: 'friend', keys: generateAccountKeys() }
    await register(spammer.username, spammer.keys)
    await register(friend.username, friend.keys)
    const mailbox = mailboxSetKey(keyIdOf(victim.signPublic))
    const flood = Array.from({ length: WRITER_ITEMS + 5 }, (_, i) => envelopeItem(spammer, victim, `junk ${i}`))
    const err = await writer.sets.add(mailbox, flood).then(() => undefined, (e: unknown) => e)
    expect(err).toMatchObject({ name: 'SetWriteError', code: 'rate-limited' })
    const stored = (err as { stored: Record<string, number> }).stored
    expect(Object.values(stored).filter(n => n > 0)).toHaveLength(WRITER_ITEMS)
    const message = envelopeItem(friend, victim, 'are you there?')
    expect((await writer.sets.add(mailbox, [message])).stored[message.id]).toBe(2)
    expect(await net.peers[1]!.sets.list(mailbox, { readAs: victim })).toHaveLength(WRITER_ITEMS + 1)
  })

  it('a peer sending items from ever new unregistered names makes a holder read at most 120 names a minute', async () => {
    const victim = generateAccountKeys()
    const mailbox = mailboxSetKey(keyIdOf(victim.signPublic))
    // a peer that has sent no items yet
    const sender = net.peers[2]!
    const holder = (await sender.sets.findHolders(mailbox)).find(p => !p.equals(sender.peerId))!
    const junk = Array.from({ length: 125 }, (_, i) => envelopeItem({ username: `unregistered${i}`, keys: generateAccountKeys() }, victim, 'junk'))
    const res = await rawRequest(sender, holder, encodeSetMessage({ type: 'add', setKey: mailbox, items: junk }))
    expect(res).toMatchObject({ type: 'added', accepted: [] })
    const codes = (res as { rejected: Array<{ code: string }> }).rejected.map(r => r.code)
    // each of the first 120 cost the holder a read of the name (not registered: refused for now); the rest no read
    expect(codes.filter(c => c === 'not-ready')).toHaveLength(120)
    expect(codes.filter(c => c === 'rate-limited')).toHaveLength(5)
  })

  it('a set takes no more bytes than its limit: the holders refuse the rest as full', async () => {
    const owner = generateAccountKeys()
    const setKey = `/cc-test/${keyIdOf(owner.signPublic)}`
    const big = (i: number): SetItem => signedItem(owner, setKey, String(i).repeat(30 * 1024))
    const items = [big(1), big(2), big(3), big(4)]
    const err = await writer.sets.add(setKey, items).then(() => undefined, (e: unknown) => e)
    expect(err).toMatchObject({ name: 'SetWriteError', code: 'full' })
    expect((err as { stored: Record<string, number> }).stored).toEqual({ [items[0]!.id]: 2, [items[1]!.id]: 2, [items[2]!.id]: 2, [items[3]!.id]: 0 })
  })

  it('a peer past its storage budget deletes what it holds for others, oldest first, records and items alike', async () => {
    const target = await net.addPeer({ storageBudgetBytes: BUDGET, setResponsibleRank: 10, setNamespaces: { 'cc-test': testRules } })
    await net.settled()
    const sender = net.peers[1]!
    // the oldest thing it holds: a record
    const owner = generateAccountKeys()
    const recordKey = presenceKey(keyIdOf(owner.signPublic))
    expect(await sendPut(sender.libp2p, target.peerId, recordKey, signed(recordKey, 1, presence('owner'), owner))).toBe('stored')
    // then items, written one after the other into sets of fresh keys (each under the set limit)
    const written: Array<{ setKey: string, item: SetItem }> = []
    for (let i = 0; i < 20; i++) {
      const keys = generateAccountKeys()
      const setKey = `/cc-test/${keyIdOf(keys.signPublic)}`
      const item = signedItem(keys, setKey, 'x'.repeat(40 * 1024), { now: Date.now() + i })
      expect(await rawRequest(sender, target.peerId, encodeSetMessage({ type: 'add', setKey, items: [item] }))).toMatchObject({ accepted: [item.id] })
      written.push({ setKey, item })
    }
    // 20 x 40 KiB is twice the budget: the peer is back under it
    await eventually(() => target.storage.heldBytes <= BUDGET)
    expect(await target.records.storedValue(recordKey)).toBeUndefined()
    const kept = await Promise.all(written.map(async ({ setKey, item }) => (await target.sets.localItems(setKey)).some(i => i.id === item.id)))
    // whatever it kept is the newest: no item is kept while an older one is gone
    expect(kept.indexOf(true)).toBeGreaterThan(0)
    expect(kept.slice(kept.indexOf(true)).every(k => k)).toBe(true)
    console.log(`storage budget ${BUDGET} bytes: after 20 items of 40 KiB and a record, ${target.storage.heldBytes} bytes held, ${kept.filter(k => k).length} items kept`)
  })
})
