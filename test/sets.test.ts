/**
 * The replicated set store on real peers on loopback: concurrent writers, holder loss,
 * maintenance, signed removal with tombstones, refusal of bad input, item expiry.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import * as cborg from 'cborg'
import { lpStream } from '@libp2p/utils'
import type { PeerId } from '@libp2p/interface'
import {
  SET_PROTOCOL, MAX_SET_ITEM_BYTES, MAX_SET_FRAME_BYTES,
  generateAccountKeys, keyIdOf, createSetItem, createRemoveAuth, encodeSetMessage,
  mailboxSetKey, mailboxSetRules, directorySetKey, createEnvelope, mailboxItemOf, directoryShardOf, createDirectoryItem, decodeDirectoryItem,
  userKey, createSignedRecord, encodeSignedRecord,
  type SetItem
} from '@conf-chat/protocol'
import { createHash } from 'node:crypto'
import { rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { generateKeyPair, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { ChatPeer } from '@conf-chat/node/network'
import { startNetwork, tempDir, type TestNetwork } from './helpers/network.js'
import { accountOf, testRules, signedItem, textOf, rawRequest } from './helpers/sets.js'

/** Wait for a condition, failing after a generous deadline. */
async function until (what: string, condition: () => Promise<boolean>, deadlineMs = 20_000): Promise<void> {
  const end = Date.now() + deadlineMs
  while (!await condition()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 100))
  }
}

describe('replicated sets (R = 3)', () => {
  let net: TestNetwork
  const all = (): ChatPeer[] => [net.supernode, ...net.peers]
  const peerOf = (id: PeerId): ChatPeer => {
    const p = all().find(p => p.peerId.equals(id))
    if (p == null) throw new Error(`no test peer ${id.toString()}`)
    return p
  }
  const live = (): ChatPeer[] => all().filter(p => p.status === 'started')

  const owner = generateAccountKeys()
  const setKey = `/cc-test/${keyIdOf(owner.signPublic)}`
  const written: SetItem[] = []
  let originalHolders: ChatPeer[] = []

  beforeAll(async () => {
    // mailbox removal rules with opaque items: these tests are about holders and removals (envelope checks: mailbox.test.ts)
    net = await startNetwork(7, { setReplicas: 3, setMaintenanceIntervalMs: 0, setNamespaces: { 'cc-test': testRules, 'cc-mailbox': mailboxSetRules({ validateItem: () => {} }) } })
  })
  afterAll(async () => { await net?.cleanup() })

  it('lands every item of 50 concurrent writers; a peer that wrote none lists all 50', async () => {
    const writers = Array.from({ length: 50 }, () => generateAccountKeys())
    const results = await Promise.all(writers.map(async (w, i) => {
      const item = signedItem(w, setKey, `message ${i}`)
      written.push(item)
      return { item, res: await net.peers[i % 5]!.sets.add(setKey, [item]) }
    }))
    for (const { item, res } of results) expect(res.stored[item.id]).toBeGreaterThanOrEqual(1)

    const listed = await net.peers[6]!.sets.list(setKey)
    expect(listed.map(i => i.id)).toEqual(written.map(i => i.id).sort())
    expect(listed.map(textOf).sort()).toEqual(Array.from({ length: 50 }, (_, i) => `message ${i}`).sort())

    // append-only: an item under an id already held is acknowledged but never replaces it
    const clash = signedItem(writers[0]!, setKey, 'overwrite attempt', { id: results[0]!.item.id })
    expect((await net.peers[6]!.sets.add(setKey, [clash])).stored[clash.id]).toBe(3)
    const again = await net.peers[5]!.sets.list(setKey)
    expect(again).toHaveLength(50)
    expect(textOf(again.find(i => i.id === clash.id)!)).toBe('message 0')

    originalHolders = (await net.peers[6]!.sets.findHolders(setKey)).map(peerOf)
    expect(originalHolders).toHaveLength(3)
    for (const h of originalHolders) expect(await h.sets.localItems(setKey)).toHaveLength(50)
  })

  it('asks a holder that did not answer once more, when adding and when listing', async () => {
    const key = `/cc-test/${keyIdOf(generateAccountKeys().signPublic)}`
    const writer = net.peers[0]!
    const holders = (await writer.sets.findHolders(key)).map(peerOf)
    expect(holders).toHaveLength(3)
    // a holder is busy for a moment: it refuses set streams for 200 ms, then serves again
    const busyFor = async (peers: ChatPeer[]): Promise<void> => {
      for (const p of peers) await p.libp2p.unhandle(SET_PROTOCOL)
      setTimeout(() => {
        for (const p of peers) void p.libp2p.handle(SET_PROTOCOL, (p.sets as unknown as { onStream: any }).onStream, { maxInboundStreams: 64, maxOutboundStreams: 64 })
      }, 200)
    }
    const busy = holders.filter(h => h !== writer)
    await busyFor(busy)
    const item = signedItem(generateAccountKeys(), key, 'sent while a holder was busy')
    expect((await writer.sets.add(key, [item])).stored[item.id]).toBe(3)
    for (const h of holders) expect((await h.sets.localItems(key)).map(i => i.id)).toEqual([item.id])
    // every holder busy when a reader asks: it asks again instead of listing nothing
    const reader = live().find(p => !holders.includes(p))!
    await busyFor(holders)
    expect((await reader.sets.list(key)).map(i => i.id)).toEqual([item.id])
  })

  it('still lists every item after 2 of its 3 holders stopped', async () => {
    for (const h of originalHolders.slice(0, 2)) await h.stop()
    const reader = live().find(p => !originalHolders.includes(p))!
    const listed = await reader.sets.list(setKey)
    expect(listed.map(i => i.id)).toEqual(written.map(i => i.id).sort())
  })

  it('maintenance puts the items back on R live holders, so the last original holder may go too', async () => {
    const survivor = originalHolders[2]!
    const report = await survivor.sets.maintain()
    expect(report.sets).toBeGreaterThanOrEqual(1)
    // 50 items to each of the 2 new holders, plus whatever other set the survivor holds (the
    // busy-holder test's set, when the survivor happens to be among its holders): the holders' own copies are checked below
    expect(report.pushedItems).toBeGreaterThanOrEqual(100)

    const others = live().filter(p => p !== survivor)
    const holdersNow = (await others[0]!.sets.findHolders(setKey)).map(peerOf)
    expect(holdersNow).toHaveLength(3)
    expect(holdersNow.every(h => h.status === 'started')).toBe(true)
    for (const h of holdersNow) expect(await h.sets.localItems(setKey)).toHaveLength(50)

    await survivor.stop()
    const listed = await others[0]!.sets.list(setKey)
    expect(listed.map(i => i.id)).toEqual(written.map(i => i.id).sort())
  })

  it('a signed removal deletes from every holder, and a stale holder that comes back does not resurrect the items', async () => {
    const recipient = generateAccountKeys()
    const mailbox = mailboxSetKey(keyIdOf(recipient.signPublic))
    const [writer, reader] = live()
    const items = Array.from({ length: 5 }, (_, i) => createSetItem(new TextEncoder().encode(`sealed envelope ${i}`)))
    const res = await writer!.sets.add(mailbox, items)
    for (const item of items) expect(res.stored[item.id]).toBe(3)

    const holders = (await reader!.sets.findHolders(mailbox)).map(peerOf)
    const stale = holders.find(h => h !== writer && h !== reader)!
    await stale.stop()

    const ids = items.map(i => i.id)
    const removed = await reader!.sets.remove(mailbox, ids, recipient)
    expect(removed.acknowledged).toBeGreaterThanOrEqual(2)
    // a mailbox lets only its owner (and its holders) read it
    expect(await writer!.sets.list(mailbox, { readAs: recipient })).toEqual([])
    const holdersNow = (await reader!.sets.findHolders(mailbox)).map(peerOf)
    expect(holdersNow.length).toBeGreaterThanOrEqual(2)
    for (const h of holdersNow) expect(await h.sets.localItems(mailbox)).toEqual([])

    // the stale holder still has the items on disk and hands its sets on when it is back
    await stale.start()
    await until('the restarted holder to reconnect', async () => stale.libp2p.getConnections().length > 0)
    expect(await stale.sets.localItems(mailbox)).toHaveLength(5)
    const report = await stale.sets.maintain()
    expect(report.pulledRemovals).toBeGreaterThanOrEqual(1)
    expect(await stale.sets.localItems(mailbox)).toEqual([])
    expect(await reader!.sets.list(mailbox, { readAs: recipient })).toEqual([])

    // the holders keep tombstones: pushing the old items again is refused everywhere
    await expect(stale.sets.add(mailbox, items)).rejects.toMatchObject({ name: 'SetWriteError' })
    expect(await reader!.sets.list(mailbox, { readAs: recipient })).toEqual([])
  })

  it('refuses a removal signed by anyone but the mailbox owner', async () => {
    const recipient = generateAccountKeys()
    const intruder = generateAccountKeys()
    const mailbox = mailboxSetKey(keyIdOf(recipient.signPublic))
    const [writer, other] = live()
    const items = [createSetItem(new TextEncoder().encode('for the recipient only'))]
    await writer!.sets.add(mailbox, items)
    const ids = items.map(i => i.id)

    await expect(other!.sets.remove(mailbox, ids, intruder)).rejects.toMatchObject({ name: 'RemoveNotAuthorizedError' })
    const holders = await other!.sets.findHolders(mailbox)
    const remote = holders.filter(h => !h.equals(other!.peerId))
    expect(remote.length).toBeGreaterThan(0)
    for (const h of remote) {
      // holders refuse a hand-made request too: another key, or the owner's signature over other ids
      const wrongKey = await rawRequest(other!, h, encodeSetMessage({ type: 'remove', setKey: mailbox, ids, auth: createRemoveAuth(mailbox, ids, intruder) }))
      expect(wrongKey).toMatchObject({ type: 'error', code: 'unauthorized' })
      const wrongIds = await rawRequest(other!, h, encodeSetMessage({ type: 'remove', setKey: mailbox, ids, auth: createRemoveAuth(mailbox, ['other-id'], recipient) }))
      expect(wrongIds).toMatchObject({ type: 'error', code: 'unauthorized' })
    }
    expect((await other!.sets.list(mailbox, { readAs: recipient })).map(i => i.id)).toEqual(ids)
  })

  it('refuses invalid items and malformed frames, and stores nothing', async () => {
    const setOwner = generateAccountKeys()
    const key = `/cc-test/${keyIdOf(setOwner.signPublic)}`
    const sender = live()[0]!
    const holders = (await sender.sets.findHolders(key)).filter(h => !h.equals(sender.peerId))
    expect(holders.length).toBeGreaterThan(0)

    const good = signedItem(setOwner, key, 'hello')
    const badSig = { ...good, data: cborg.encode({ ...(cborg.decode(good.data) as object), msg: new TextEncoder().encode('tampered') }) }
    const tooBig = { ...createSetItem(new Uint8Array(MAX_SET_ITEM_BYTES + 1)) }
    const expired = signedItem(setOwner, key, 'old', { now: Date.now() - 31 * 24 * 60 * 60 * 1000 })
    const future = signedItem(setOwner, key, 'future', { now: Date.now() + 60 * 60 * 1000 })

    for (const h of holders) {
      const refused = await rawRequest(sender, h, encodeSetMessage({ type: 'add', setKey: key, items: [badSig, expired, future] }))
      expect(refused.type).toBe('added')
      if (refused.type !== 'added') continue
      expect(refused.accepted).toEqual([])
      expect(refused.rejected.map(r => r.reason)).toEqual(['bad item signature', 'expired', 'added in the future'])

      expect(await rawRequest(sender, h, cborg.encode({ type: 'add', setKey: key, items: [tooBig] }))).toMatchObject({ type: 'error', code: 'malformed' })
      expect(await rawRequest(sender, h, encodeSetMessage({ type: 'add', setKey: '/cc-nope/x', items: [good] }))).toMatchObject({ type: 'error', code: 'unknown-namespace' })
      expect(await rawRequest(sender, h, encodeSetMessage({ type: 'add', setKey: '/cc-mailbox/not-a-key-id', items: [good] }))).toMatchObject({ type: 'error', code: 'invalid-key' })
      expect(await rawRequest(sender, h, new Uint8Array([0xff, 0x00, 0x13, 0x37]))).toMatchObject({ type: 'error', code: 'malformed' })
      expect(await rawRequest(sender, h, cborg.encode({ type: 'add', setKey: key, items: [good], extra: 1 }))).toMatchObject({ type: 'error', code: 'malformed' })

      // a length prefix beyond the frame limit: the holder resets the stream instead of buffering it
      const stream = await sender.libp2p.dialProtocol(h, SET_PROTOCOL, { signal: AbortSignal.timeout(10_000) })
      const lp = lpStream(stream, { maxDataLength: 4 * MAX_SET_FRAME_BYTES })
      await lp.write(new Uint8Array(MAX_SET_FRAME_BYTES + 1)).catch(() => {})
      await expect(lp.read({ signal: AbortSignal.timeout(10_000) })).rejects.toThrow()
      stream.abort(new Error('done'))
    }
    for (const h of holders) {
      expect(await peerOf(h).sets.localItems(key)).toEqual([])
      expect(await peerOf(h).sets.heldSets()).not.toContain(key)
    }

    // the client checks before it sends
    await expect(sender.sets.add(key, [badSig])).rejects.toMatchObject({ name: 'InvalidSetItemError' })
    await expect(sender.sets.add(key, [tooBig])).rejects.toMatchObject({ name: 'InvalidSetItemError' })
    await expect(sender.sets.add('/cc-nope/x', [good])).rejects.toMatchObject({ name: 'UnknownSetNamespaceError' })
    await expect(sender.sets.add('no key', [good])).rejects.toMatchObject({ name: 'InvalidSetKeyError' })

    // and the holders still serve after all that
    const res = await sender.sets.add(key, [good])
    expect(res.stored[good.id]).toBe(3)
  })

  it('keeps signed directory entries in their shard; refuses forged and misplaced ones, and names not registered to their signer', async () => {
    const alice = generateAccountKeys()
    const mallory = generateAccountKeys()
    const [writer, reader] = live()
    const shardKey = directorySetKey(directoryShardOf('alice'))
    const entry = createDirectoryItem({ username: 'alice', fullName: 'Alice Liddell' }, alice)
    // before alice is registered, no holder lists her (each reads the name's record first)
    await expect(writer!.sets.add(shardKey, [entry])).rejects.toMatchObject({ name: 'SetWriteError' })
    await writer!.records.put(userKey('alice'), encodeSignedRecord(createSignedRecord(userKey('alice'), 1, accountOf('alice', alice), alice)))
    expect((await writer!.sets.add(shardKey, [entry])).stored[entry.id]).toBe(3)
    // a directory fill: entries for names nobody registered, and for alice's name signed by another key
    for (let i = 0; i < 20; i++) {
      const item = createDirectoryItem({ username: `fake${i}`, fullName: `Fake ${i}` }, mallory)
      await expect(writer!.sets.add(directorySetKey(directoryShardOf(`fake${i}`)), [item])).rejects.toMatchObject({ name: 'SetWriteError' })
    }
    const impostor = createDirectoryItem({ username: 'alice', fullName: 'Alice (really)' }, mallory)
    await expect(writer!.sets.add(shardKey, [impostor])).rejects.toMatchObject({ name: 'SetWriteError' })
    expect((await reader!.sets.list(shardKey)).map(i => i.id)).toEqual([entry.id])

    const listed = await reader!.sets.list(shardKey)
    expect(listed.map(i => decodeDirectoryItem(shardKey, i))).toMatchObject([{ username: 'alice', fullName: 'Alice Liddell' }])

    // misplaced, re-signed by another key under alice's name and keys, or renamed: all refused
    await expect(writer!.sets.add(directorySetKey(String((Number(directoryShardOf('alice')) + 1) % 8)), [entry])).rejects.toMatchObject({ name: 'InvalidSetItemError' })
    const forged = createDirectoryItem({ username: 'alice', fullName: 'Not Alice' }, { ...mallory, signPublic: alice.signPublic })
    await expect(writer!.sets.add(shardKey, [forged])).rejects.toMatchObject({ name: 'InvalidSetItemError' })
    const holder = (await writer!.sets.findHolders(shardKey)).find(h => !h.equals(writer!.peerId))!
    const refused = await rawRequest(writer!, holder, encodeSetMessage({ type: 'add', setKey: shardKey, items: [forged] }))
    expect(refused).toMatchObject({ type: 'added', accepted: [] })

    // only the signer removes its entry
    await expect(reader!.sets.remove(shardKey, [entry.id], mallory)).rejects.toMatchObject({ name: 'RemoveNotAuthorizedError' })
    await reader!.sets.remove(shardKey, [entry.id], alice)
    expect(await writer!.sets.list(shardKey)).toEqual([])
  })
})

describe('set timers: expiry and hand-off', () => {
  let net: TestNetwork
  const SHORT_TTL = 1500
  const all = (): ChatPeer[] => [net.supernode, ...net.peers]
  const holding = async (key: string): Promise<ChatPeer[]> => {
    const live = all().filter(p => p.status === 'started')
    const has = await Promise.all(live.map(async p => (await p.sets.localItems(key)).length > 0))
    return live.filter((_, i) => has[i])
  }
  beforeAll(async () => {
    net = await startNetwork(3, {
      setReplicas: 2,
      setMaintenanceIntervalMs: 250,
      setItemTtlMs: SHORT_TTL,
      // a namespace may set its own item TTL, as the directory does
      setNamespaces: { 'cc-mailbox': mailboxSetRules({ validateItem: () => {} }), 'cc-test': testRules, 'cc-long': { ...testRules, itemTtlMs: 30 * 24 * 60 * 60 * 1000 } }
    })
  })
  afterAll(async () => { await net?.cleanup() })

  it('stops serving items after their TTL and sweeps them from every holder', async () => {
    const owner = generateAccountKeys()
    const key = `/cc-test/${keyIdOf(owner.signPublic)}`
    const [writer, reader] = net.peers
    const item = signedItem(owner, key, 'short-lived')
    expect((await writer!.sets.add(key, [item])).stored[item.id]).toBe(2)
    const heldBy = async (): Promise<number> => (await Promise.all(all().map(async h => (await h.sets.heldSets()).includes(key)))).filter(Boolean).length
    expect(await heldBy()).toBe(2)

    // the TTL is what is tested: let it run out
    await new Promise(resolve => setTimeout(resolve, SHORT_TTL + 100))
    expect(await reader!.sets.list(key)).toEqual([])
    await expect(writer!.sets.add(key, [item])).rejects.toMatchObject({ name: 'InvalidSetItemError' })
    await until('the holders to sweep the expired set', async () => await heldBy() === 0)
  })

  it('hands items on by itself when a holder goes away', async () => {
    const owner = generateAccountKeys()
    const key = `/cc-long/${keyIdOf(owner.signPublic)}`
    const item = signedItem(owner, key, 'keep me')
    expect((await net.peers[0]!.sets.add(key, [item])).stored[item.id]).toBe(2)
    const before = await holding(key)
    expect(before).toHaveLength(2)
    await before[0]!.stop()
    // the remaining holder's maintenance timer finds the new closest peer and gives it the item
    await until('a new holder to receive the item', async () => (await holding(key)).length === 2)
    const after = await holding(key)
    expect(after).toContain(before[1])
    expect(after.some(p => !before.includes(p))).toBe(true)
  })
})

describe('a DHT server that joins', () => {
  let net: TestNetwork
  beforeAll(async () => {
    // no maintenance rounds: only the welcome hands a set on
    net = await startNetwork(4, { setReplicas: 2, setMaintenanceIntervalMs: 0, setWelcomeDelayMs: 200, setNamespaces: { 'cc-test': testRules } })
  })
  afterAll(async () => { await net?.cleanup() })

  it('is handed, within seconds, the sets it is now the closest holder of', async () => {
    // the newcomer's identity first, to pick a set whose closest peer it will be
    const dir = await tempDir()
    net.dirs.push(dir)
    const peerKey = await generateKeyPair('Ed25519')
    await writeFile(join(dir, 'peer-key'), privateKeyToProtobuf(peerKey))
    const kadIdOf = (bytes: Uint8Array): Buffer => createHash('sha256').update(bytes).digest()
    const newcomerId = kadIdOf(peerIdFromPrivateKey(peerKey).toMultihash().bytes)
    const others = [net.supernode, ...net.peers].map(p => kadIdOf(p.peerId.toMultihash().bytes))
    const closer = (target: Buffer, a: Buffer, b: Buffer): boolean => Buffer.compare(a.map((x, i) => x ^ target[i]!), b.map((x, i) => x ^ target[i]!)) < 0
    let setKey = ''
    for (let tries = 0; setKey === '' && tries < 1000; tries++) {
      const candidate = `/cc-test/${keyIdOf(generateAccountKeys().signPublic)}`
      const target = kadIdOf(new TextEncoder().encode(candidate))
      if (others.every(o => closer(target, newcomerId, o))) setKey = candidate
    }
    expect(setKey).not.toBe('')
    const owner = generateAccountKeys()
    const item = signedItem(owner, setKey, 'written before the newcomer came')
    expect((await net.peers[0]!.sets.add(setKey, [item])).stored[item.id]).toBe(2)

    const newcomer = await net.addPeer({ dataDir: dir })
    expect(newcomer.peerId.equals(peerIdFromPrivateKey(peerKey))).toBe(true)
    await until('the newcomer to hold the set', async () => (await newcomer.sets.localItems(setKey)).length === 1)
    expect((await newcomer.sets.localItems(setKey)).map(textOf)).toEqual(['written before the newcomer came'])
  })
})

describe('sets without a network', () => {
  it('report an unreachable network instead of an empty set', async () => {
    const dir = await tempDir()
    const lone = new ChatPeer({ dataDir: dir, clientMode: true, queryTimeoutMs: 500, setMaintenanceIntervalMs: 0 })
    try {
      await lone.start()
      const owner = generateAccountKeys()
      const mailbox = mailboxSetKey(keyIdOf(owner.signPublic))
      await expect(lone.sets.list(mailbox)).rejects.toMatchObject({ name: 'NoSetHoldersError' })
      // by default a mailbox takes only signed envelopes addressed to its owner
      await expect(lone.sets.add(mailbox, [createSetItem(new Uint8Array([1]))])).rejects.toMatchObject({ name: 'InvalidSetItemError' })
      const envelope = createEnvelope('dm', { text: 'hi' }, { username: 'sender', keys: generateAccountKeys() },
        { username: 'owner', keyId: keyIdOf(owner.signPublic), boxPublic: owner.boxPublic })
      await expect(lone.sets.add(mailbox, [mailboxItemOf(envelope)])).rejects.toMatchObject({ name: 'NoSetHoldersError' })
      await expect(lone.sets.remove(mailbox, ['x'], owner)).rejects.toMatchObject({ name: 'NoSetHoldersError' })
    } finally {
      await lone.stop()
      await rm(dir, { recursive: true, force: true })
    }
  })
})
