/**
 * Offline delivery through mailboxes, on real nodes on loopback: concurrent senders,
 * forged and tampered envelopes, holder loss, what a holder can read, records expiring
 * while the recipient is away, and a sender killed with -9 while its message waits.
 */
import { describe, it, expect, beforeAll, afterAll, inject } from 'vitest'
import { join } from 'node:path'
import { readdir, readFile, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { LevelDatastore } from 'datastore-level'
import * as cborg from 'cborg'
import {
  createEnvelope, mailboxItemOf, generateAccountKeys, mailboxSetKey, presenceKey, mailboxSetRules, isSealedEnvelopeItem, isSealedStrangerItem, isWriterListId, mailboxWriterOf, sealEnvelope,
  encodeSetMessage, DM_KIND, MAILBOX_SET_NAMESPACE, type Envelope, type SetNamespaceRules
} from '@conf-chat/protocol'
import { createChatNode, type ChatNode, type ChatNodeInit } from '@conf-chat/node'
import { ChatPeer } from '@conf-chat/node/network'
import { startChatNetwork, eventually, FAST, type ChatNetwork } from './helpers/chat.js'
import { tempDir, addrOf } from './helpers/network.js'
import { collect, makeFriends, registerUser, PASSWORD } from './helpers/friends.js'
import { ChatWorker } from './helpers/worker.js'
import { rawRequest } from './helpers/sets.js'

const byTimeThenId = (a: { sentAt: number, id: string }, b: { sentAt: number, id: string }): number =>
  a.sentAt - b.sentAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)

/** Every file under `dir`, recursively. */
async function filesUnder (dir: string): Promise<string[]> {
  const out: string[] = []
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) out.push(...await filesUnder(path))
    else out.push(path)
  }
  return out
}

/** Every key and value of a (closed) LevelDB datastore, as one buffer each. */
async function datastoreContents (path: string): Promise<Buffer[]> {
  const ds = new LevelDatastore(path)
  await ds.open()
  const out: Buffer[] = []
  try {
    for await (const { key, value } of ds.query({})) out.push(Buffer.from(key.toString()), Buffer.from(value))
  } finally {
    await ds.close()
  }
  return out
}

describe('mailboxes', () => {
  let net: ChatNetwork
  let home: ChatNode
  const senders: ChatNode[] = []
  let spare: ChatNode
  let bobKeyId: string

  beforeAll(async () => {
    // no maintenance: the holder-loss test must see the original holders only
    // presence is not under test here: slow refreshes leave the two cores to the mailboxes
    net = await startChatNetwork(7, { mailboxPollMs: 0, setMaintenanceIntervalMs: 0, presenceTtlMs: 15_000, presenceRefreshMs: 5_000 })
    home = net.nodes[0]!
    spare = net.nodes[6]!
    await registerUser(home, 'bob')
    bobKeyId = home.whoami().keyId
    for (let i = 1; i <= 5; i++) {
      const node = net.nodes[i]!
      await registerUser(node, `sender${i}`)
      await makeFriends(node, home)
      senders.push(node)
    }
    await home.logout()
  }, 180_000)
  afterAll(async () => { await net?.cleanup() })

  it('keeps every message of 50 senders writing at the same moment, and shows each once, in order', async () => {
    const bob = await spare.profile('bob')
    const writes: Array<Promise<{ id: string, status: string, where?: string }>> = []
    for (let i = 0; i < 10; i++) {
      for (const s of senders) writes.push(s.sendMessage('bob', `message ${i} from ${s.whoami().username}`))
    }
    // at the same moment, 50 more writers with keys of their own, through every peer: names
    // nobody registered, so no holder takes their envelopes (a flood costs a registration each)
    const strangers = Array.from({ length: 50 }, (_, i) => createEnvelope(DM_KIND, { text: `stranger ${i}` }, { username: `stranger${i}`, keys: generateAccountKeys() }, bob))
    const strangerWrites = Promise.allSettled(strangers.map(async (e, i) => await net.nodes[i % net.nodes.length]!.peer.sets.add(mailboxSetKey(bob.keyId), [mailboxItemOf(e)])))
    const results = await Promise.all(writes)
    const strangerResults = await strangerWrites
    expect(strangerResults.every(r => r.status === 'rejected' || Object.values(r.value.stored).every(n => n === 0))).toBe(true)
    expect(results.every(r => r.status === 'queued' && r.where === 'mailbox')).toBe(true)
    // nothing overwritten: the union of the holders has all 50 of the users, and none of the strangers'
    const held = new Set((await spare.peer.sets.list(mailboxSetKey(bob.keyId))).map(i => i.id))
    for (const id of results.map(r => r.id)) expect(held.has(id)).toBe(true)
    for (const e of strangers) expect(held.has(e.id)).toBe(false)
    const offline = collect(spare, 'messages:offline')
    const refused = collect(spare, 'envelope:refused')
    await spare.login('bob', PASSWORD)
    await eventually(() => offline.length > 0)
    expect(refused).toEqual([])
    const shown = offline.flatMap(o => o.messages)
    expect(shown).toHaveLength(50)
    expect(new Set(shown.map(m => m.id))).toEqual(new Set(results.map(r => r.id)))
    expect([...shown].sort(byTimeThenId)).toEqual(shown)
    expect(new Set(shown.map(m => m.text)).size).toBe(50)
    expect(await spare.checkMailbox()).toEqual([])
    await spare.logout()
  })

  it('looks the mailbox\'s holders up while the password is checked, and reads the mailbox while the session starts', async () => {
    // the DHT queries of this peer, its mailbox reads, and when the login's presence went out
    const dht = spare.peer.libp2p.services.dht
    const records = spare.peer.records
    const sets = spare.peer.sets
    const events: string[] = []
    const mailboxKey = mailboxSetKey(bobKeyId)
    const closest = dht.getClosestPeers.bind(dht)
    const put = records.put.bind(records)
    const list = sets.list.bind(sets)
    dht.getClosestPeers = (key, options) => {
      if (new TextDecoder().decode(key) === mailboxKey) events.push('mailbox lookup')
      return closest(key, options)
    }
    records.put = async (key, value, options) => {
      if (key === presenceKey(bobKeyId)) events.push('presence')
      return await put(key, value, options)
    }
    sets.list = async (key, options) => {
      if (key === mailboxKey) events.push('mailbox read')
      return await list(key, options)
    }
    // what had happened when the login's read showed its messages
    let atShow: string[] = []
    const onShown = (): void => { atShow = [...events] }
    spare.addEventListener('messages:offline', onShown)
    try {
      const shown = collect(spare, 'messages:offline')
      const bob = await senders[0]!.profile('bob')
      const from = { username: senders[0]!.whoami().username, keys: senders[0]!.session!.account.keys }
      const waiting = createEnvelope(DM_KIND, { text: 'read while the login ran' }, from, bob)
      await senders[0]!.peer.sets.add(mailboxKey, [sealEnvelope(waiting, from.keys, bob.boxPublic)!])
      await spare.login('bob', PASSWORD)
      // the holders were looked up before the session started, and the mailbox read before its presence went out
      expect(events.slice(0, 3), events.join(', ')).toEqual(['mailbox lookup', 'mailbox read', 'presence'])
      await eventually(() => shown.some(b => b.messages.some(m => m.id === waiting.id)))
      // the login's read took what was read ahead, and it and the writer list the session
      // stored made no lookup of their own (presence refreshes aside)
      expect(atShow.filter(e => e !== 'presence')).toEqual(['mailbox lookup', 'mailbox read'])
      // a read asked for now (after the login's, and its removal of what it showed) reads again
      const reads = events.filter(e => e === 'mailbox read').length
      expect(await spare.checkMailbox()).toEqual([])
      expect(events.filter(e => e === 'mailbox read').length).toBe(reads + 1)
    } finally {
      spare.removeEventListener('messages:offline', onShown)
      dht.getClosestPeers = closest
      records.put = put
      sets.list = list
      await spare.logout()
    }
  })

  it('fetches an envelope it leaves in the mailbox (a kind it does not know) once, not again at every read', async () => {
    const sender = senders[3]!
    const bob = await sender.profile('bob')
    const from = { username: sender.whoami().username, keys: sender.session!.account.keys }
    const later = Array.from({ length: 10 }, (_, i) => createEnvelope('kind-from-later', { i, pad: 'x'.repeat(30_000) }, from, bob))
    // sealed, as a friend's program seals them (bob's list names the pair's key, not the sender's)
    await sender.peer.sets.add(mailboxSetKey(bob.keyId), later.map(e => sealEnvelope(e, from.keys, bob.boxPublic)!))
    /** Items every holder has sent to readers so far. */
    const served = (): number => [net.supernode, ...net.nodes.map(n => n.peer)].reduce((n, p) => n + p.sets.stats.itemsServed, 0)
    await spare.login('bob', PASSWORD)
    // the read at login (the check waits for it) fetched them, and left them for a newer peer;
    // reads after it list the ids, and fetch none of them (a full listing: 10 items from each holder)
    expect(await spare.checkMailbox()).toEqual([])
    const before = served()
    expect(await spare.checkMailbox()).toEqual([])
    expect(await spare.checkMailbox()).toEqual([])
    expect(served() - before).toBe(0)
    await spare.logout()
    const held = new Set((await spare.peer.sets.list(mailboxSetKey(bob.keyId))).map(i => i.id))
    expect(later.every(e => held.has(e.id))).toBe(true)
  })

  it('drops a forged sender and a tampered envelope, and shows the rest', async () => {
    const attacker = senders[4]!
    const bob = await attacker.profile('bob')
    const mailbox = mailboxSetKey(bob.keyId)
    // signed by sender5 but claiming to be sender1 (a friend of bob's): sender1 is registered to
    // another key, so no holder takes it
    const forged = createEnvelope(DM_KIND, { text: 'forged: send me your password' }, { username: 'sender1', keys: attacker.session!.account.keys }, bob)
    await expect(attacker.peer.sets.add(mailbox, [mailboxItemOf(forged)])).rejects.toMatchObject({ name: 'SetWriteError' })
    for (const node of [net.supernode, ...net.nodes.map(n => n.peer)]) {
      expect((await node.sets.localItems(mailbox)).some(i => i.id === forged.id)).toBe(false)
    }
    // a genuine envelope of sender5 with one bit of the sealed body flipped
    const genuine = createEnvelope(DM_KIND, { text: 'original text' }, { username: 'sender5', keys: attacker.session!.account.keys }, bob)
    const tampered: Envelope = { ...genuine, body: Uint8Array.from(genuine.body, (b, i) => i === 40 ? b ^ 1 : b) }
    const item = mailboxItemOf(tampered)
    await expect(attacker.peer.sets.add(mailbox, [item])).rejects.toMatchObject({ name: 'InvalidSetItemError' })
    // with the check switched off on the attacker's side, holders that check refuse it
    attacker.peer.sets.registerNamespace(MAILBOX_SET_NAMESPACE, mailboxSetRules())
    await attacker.peer.sets.add(mailbox, [item]).catch(() => {})
    for (const node of net.nodes.filter(n => n !== attacker)) {
      expect((await node.peer.sets.localItems(mailbox)).some(i => i.id === tampered.id)).toBe(false)
    }
    const real = await senders[0]!.sendMessage('bob', 'the real sender1')
    const offline = collect(spare, 'messages:offline')
    const refused = collect(spare, 'envelope:refused')
    await spare.login('bob', PASSWORD)
    await eventually(() => offline.length > 0)
    expect(offline.flatMap(o => o.messages).map(m => [m.id, m.from, m.text])).toEqual([[real.id, 'sender1', 'the real sender1']])
    expect(refused).toEqual([])
    expect((await spare.history('sender1')).map(m => m.text)).not.toContain('forged: send me your password')
    await spare.logout()
  })

  it('shows a message whose id holders answer with something they made up, from the one holder that has the real one', async () => {
    const sender = senders[1]!
    const bob = await sender.profile('bob')
    const mailbox = mailboxSetKey(bob.keyId)
    const from = { username: sender.whoami().username, keys: sender.session!.account.keys }
    const envelope = createEnvelope(DM_KIND, { text: 'the real one' }, from, bob)
    const real = sealEnvelope(envelope, from.keys, bob.boxPublic)!
    // the same sealed envelope, its sealed body changed: it no longer opens, and its pair key's signature is wrong
    const fields = cborg.decode(real.data) as { sealed: Uint8Array }
    const madeUp = { ...real, data: cborg.encode({ ...fields, sealed: Uint8Array.from(fields.sealed, (b, i) => i === 50 ? b ^ 1 : b) }) }
    // the real one on one holder (not the reader's own peer: what a peer holds itself it trusts)
    const servers = [net.supernode, ...net.nodes.filter(n => n !== spare).map(n => n.peer)]
    const add = encodeSetMessage({ type: 'add', setKey: mailbox, items: [real] })
    let honest: ChatPeer | undefined
    for (const peer of servers) {
      if ((await rawRequest(spare.peer, peer.peerId, add)).type === 'added' && (await peer.sets.localItems(mailbox)).some(i => i.id === real.id)) { honest = peer; break }
    }
    expect(honest).toBeDefined()
    // every other holder, its checks switched off, keeps the made-up one under that id
    const saved = new Map<ChatPeer, SetNamespaceRules>()
    try {
      for (const peer of servers.filter(p => p !== honest)) {
        const rules = peer.sets.namespaceRules(MAILBOX_SET_NAMESPACE)!
        saved.set(peer, rules)
        peer.sets.registerNamespace(MAILBOX_SET_NAMESPACE, { ...rules, validateItem: () => {} })
        await rawRequest(spare.peer, peer.peerId, encodeSetMessage({ type: 'add', setKey: mailbox, items: [madeUp] }))
      }
      const liars = servers.filter(p => p !== honest && saved.has(p))
      const lying = await Promise.all(liars.map(async p => (await p.sets.localItems(mailbox)).some(i => i.id === real.id)))
      expect(lying.filter(Boolean).length).toBeGreaterThanOrEqual(2)
      const offline = collect(spare, 'messages:offline')
      const refused = collect(spare, 'envelope:refused')
      await spare.login('bob', PASSWORD)
      await eventually(() => offline.length > 0)
      expect(offline.flatMap(o => o.messages).map(m => [m.id, m.text])).toEqual([[envelope.id, 'the real one']])
      expect(refused).toEqual([])
      await spare.logout()
    } finally {
      for (const [peer, rules] of saved) peer.sets.registerNamespace(MAILBOX_SET_NAMESPACE, rules)
    }
  })

  it('survives the loss of all holders but one, and no holder can read it, or tell who sent it or what it is', async () => {
    const plaintext = 'meet me at the old mill at 7b3f'
    const sent = await senders[0]!.sendMessage('bob', plaintext)
    expect(sent).toMatchObject({ status: 'queued', where: 'mailbox' })
    const setKey = mailboxSetKey(bobKeyId)
    const peers: Array<{ peer: ChatPeer, stop: () => Promise<void>, dataDir: string, node?: ChatNode }> = [
      { peer: net.supernode, stop: async () => { await net.supernode.stop() }, dataDir: net.supernode.init.dataDir },
      ...net.nodes.map(node => ({ peer: node.peer, stop: async () => { await node.stop() }, dataDir: node.peer.init.dataDir, node }))
    ]
    const holders = []
    for (const p of peers) {
      if ((await p.peer.sets.localItems(setKey)).some(i => i.id === sent.id)) holders.push(p)
    }
    expect(holders.length).toBeGreaterThanOrEqual(3)
    // sealed sender: holders keep it under the pair's key, with no sender and no kind to read
    const sender = senders[0]!.session!.account
    for (const h of holders) {
      const item = (await h.peer.sets.localItems(setKey)).find(i => i.id === sent.id)!
      expect(isSealedEnvelopeItem(item)).toBe(true)
      expect(mailboxWriterOf(item)).not.toBe(sender.keyId)
      const held = Buffer.from(item.data)
      expect([held.includes(Buffer.from(sender.keys.signPublic)), held.includes(Buffer.from(sender.username))]).toEqual([false, false])
      expect(Object.keys(cborg.decode(item.data) as object)).not.toContain('kind')
    }
    // keep one holder that is neither the sender's peer nor the one bob logs in on
    const keep = holders.find(h => h.node !== senders[0]) ?? holders[0]!
    const lost = holders.filter(h => h !== keep)
    for (const h of lost) await h.stop()
    for (const h of lost) {
      const contents = await datastoreContents(join(h.dataDir, 'datastore'))
      expect(contents.some(b => b.includes(sent.id)), 'the holder held the envelope').toBe(true)
      expect(contents.some(b => b.includes(plaintext))).toBe(false)
      for (const file of await filesUnder(h.dataDir)) expect((await readFile(file)).includes(plaintext)).toBe(false)
    }
    // bob logs in on a peer that is not the kept holder (a fresh one if every idle peer was a holder)
    const reader = net.nodes.find(n => n.peer.status === 'started' && n !== keep.node && n.session == null) ??
      await net.addNode({}, keep.peer.multiaddrs[0]!.toString())
    const offline = collect(reader!, 'messages:offline')
    await reader!.login('bob', PASSWORD)
    await eventually(() => offline.length > 0)
    expect(offline.flatMap(o => o.messages).map(m => m.text)).toEqual([plaintext])
  })
})

describe('a mailbox without a writer list', () => {
  let net: ChatNetwork
  beforeAll(async () => { net = await startChatNetwork(3, { mailboxPollMs: 0 }) })
  afterAll(async () => { await net?.cleanup() })

  it('takes a friend\'s message sealed as a stranger\'s where no list names the pair, and its owner reads it', async () => {
    const [home, friend] = net.nodes as [ChatNode, ChatNode]
    await registerUser(home, 'listless')
    await registerUser(friend, 'friendly')
    await makeFriends(friend, home)
    const owner = home.session!.account
    const setKey = mailboxSetKey(owner.keyId)
    await home.logout()
    await eventually(async () => (await friend.presenceOf('listless'))?.online === false)
    // an account whose list expired (away for 30 days) or was never stored: no list on any holder
    const lists = (await home.peer.sets.list(setKey, { readAs: owner.keys })).map(i => i.id).filter(isWriterListId)
    expect(lists.length).toBeGreaterThan(0)
    await home.peer.sets.remove(setKey, lists, owner.keys)
    const sent = await friend.sendMessage('listless', 'no list here')
    expect(sent).toMatchObject({ status: 'queued', where: 'mailbox' })
    const held = (await home.peer.sets.list(setKey, { readAs: owner.keys })).filter(i => i.id === sent.id)
    expect(held.length).toBe(1)
    // holders refuse it under the pair key (no list names it) and take it with a stranger's work: never open
    expect(isSealedStrangerItem(held[0]!)).toBe(true)
    expect(mailboxWriterOf(held[0]!)).not.toBe(friend.session!.account.keyId)
    // (the kind as the envelope carries it, key and value: two bytes of 'dm' alone turn up in random ciphertext about once in a hundred runs)
    const kindField = Buffer.concat([cborg.encode('kind'), cborg.encode(DM_KIND)])
    for (const secret of [friend.session!.account.keys.signPublic, Buffer.from('friendly'), kindField, Buffer.from('no list here')]) {
      expect(Buffer.from(held[0]!.data).includes(Buffer.from(secret))).toBe(false)
    }
    const offline = collect(home, 'messages:offline')
    await home.login('listless', PASSWORD)
    await eventually(() => offline.length > 0)
    expect(offline.flatMap(o => o.messages).map(m => m.text)).toEqual(['no list here'])
  })
})

describe('mailboxes with records expiring', () => {
  const RECORD_TTL_MS = 4_000
  let net: ChatNetwork
  beforeAll(async () => {
    // 4 s stands for kad-dht's 48 h: records live only because their holders republish them
    net = await startChatNetwork(3, { mailboxPollMs: 0, recordTtlMs: RECORD_TTL_MS, republishIntervalMs: 1_000, setMaintenanceIntervalMs: 1_000 })
  })
  afterAll(async () => { await net?.cleanup() })

  it('delivers a message after its recipient stayed offline longer than the record expiry', async () => {
    const [a, b, c] = net.nodes as [ChatNode, ChatNode, ChatNode]
    await registerUser(a, 'alice')
    await registerUser(b, 'bob')
    await makeFriends(a, b)
    await b.logout()
    const sent = await a.sendMessage('bob', 'still here after the expiry?')
    expect(sent.status).toBe('queued')
    await a.logout()
    // the expiry is what is tested: bob stays away for two record TTLs
    await new Promise(resolve => setTimeout(resolve, 2 * RECORD_TTL_MS))
    const offline = collect(c, 'messages:offline')
    await c.login('bob', PASSWORD)
    await eventually(() => offline.length > 0)
    expect(offline.flatMap(o => o.messages).map(m => m.text)).toEqual(['still here after the expiry?'])
    expect((await c.friends()).map(f => f.username)).toEqual(['alice'])
  })
})

describe('outbox across a kill -9', () => {
  const dirs: string[] = []
  const stoppables: Array<{ stop: () => Promise<void> }> = []
  const workers: ChatWorker[] = []
  afterAll(async () => {
    await Promise.allSettled(workers.map(async w => { await w.kill() }))
    await Promise.allSettled(stoppables.map(async s => { await s.stop() }))
    await Promise.allSettled(dirs.map(async d => { await rm(d, { recursive: true, force: true }) }))
  })

  const freePort = async (): Promise<number> => await new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port
      server.close(() => { resolve(port) })
    })
  })

  it('delivers a message queued while the mailbox was unreachable, after the sender was killed and restarted', async () => {
    expect(inject('buildError') ?? '', 'the worker runs dist/: tsc -b must pass').toBe('')
    const [sDir, bDir, hDir, wDir] = await Promise.all([tempDir(), tempDir(), tempDir(), tempDir()])
    dirs.push(sDir, bDir, hDir, wDir)
    const port = await freePort()
    const startSupernode = async (): Promise<ChatPeer> => {
      const s = new ChatPeer({ dataDir: sDir, host: '127.0.0.1', port })
      stoppables.push(s)
      await s.start()
      return s
    }
    let supernode = await startSupernode()
    const common: Partial<ChatNodeInit> = {
      host: '127.0.0.1', port: 0, bootstrap: [addrOf(supernode)], ...FAST, mailboxPollMs: 0, outboxRetryMs: 300, outboxRetryMaxMs: 1_000
    }
    const startNode = async (dataDir: string): Promise<ChatNode> => {
      const node = createChatNode({ dataDir, ...common })
      stoppables.push(node)
      await node.start()
      await node.peer.waitJoined({ signal: AbortSignal.timeout(20_000) })
      return node
    }
    let bobNode = await startNode(bDir)
    let helper = await startNode(hDir)
    let sender = await ChatWorker.start({ dataDir: wDir, ...common })
    workers.push(sender)

    await registerUser(bobNode, 'bob')
    await sender.call('register', { username: 'alice', password: PASSWORD, fullName: 'Alice' })
    await sender.call('addFriend', 'bob')
    await eventually(async () => (await bobNode.friendRequests()).incoming.length > 0)
    await bobNode.acceptFriend('alice')
    await eventually(() => sender.events.some(e => e.event === 'friend:accepted'))
    await bobNode.logout()

    // every other peer goes down: bob is offline and his mailbox unreachable
    await Promise.all([bobNode.stop(), helper.stop(), supernode.stop()])
    const queued = await sender.call('sendMessage', 'bob', 'written before the crash')
    expect(queued).toMatchObject({ status: 'queued', where: 'outbox' })
    expect(await sender.call('queued')).toEqual([expect.objectContaining({ id: queued.id, to: 'bob', kind: 'dm' })])
    await sender.kill('SIGKILL')

    // the network comes back, and the sender restarts from its data dir (nobody logs in there)
    supernode = await startSupernode()
    bobNode = await startNode(bDir)
    helper = await startNode(hDir)
    sender = await ChatWorker.start({ dataDir: wDir, ...common })
    workers.push(sender)
    await eventually(async () => (await sender.call<unknown[]>('queued')).length === 0, 40_000, 500)

    const offline = collect(bobNode, 'messages:offline')
    await bobNode.login('bob', PASSWORD)
    await eventually(() => offline.length > 0)
    expect(offline.flatMap(o => o.messages).map(m => [m.id, m.text])).toEqual([[queued.id, 'written before the crash']])
  })
})
