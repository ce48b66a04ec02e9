/**
 * Names against peers that lie, on real nodes: attacker peers near `/cc-user/alice`
 * serve a record of the name signed by the attacker's own key, outnumbering the honest
 * holders. No reader may pick the attacker's claim by counting replicas: the name reads
 * as contested (a clear error), nobody logs in with the attacker's password, and a
 * friend request never goes to the attacker's key.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { userKey, fingerprintOf, generateAccountKeys, createSignedRecord, encodeSignedRecord, type AccountPayload } from '@conf-chat/protocol'
import { fromString as bytesFromString } from 'uint8arrays'
import type { ChatNode } from '@conf-chat/node'
import { storeUnchecked } from './helpers/records.js'
import { startChatNetwork, eventually, type ChatNetwork } from './helpers/chat.js'
import { registerUser, makeFriends, collect, PASSWORD } from './helpers/friends.js'

const ATTACKER_PASSWORD = 'the attacker knows this one'

/** What an attacker's own peer does with its store: hold `value` under `key`, whatever was there. */
const holdAsAttacker = storeUnchecked

describe('names against a Sybil majority', () => {
  let net: ChatNetwork
  let elsewhere: ChatNetwork | undefined
  let honest: ChatNode[]
  let attackers: ChatNode[]
  beforeAll(async () => {
    net = await startChatNetwork(7, { mailboxPollMs: 0 })
    honest = net.nodes.slice(0, 2)
    attackers = net.nodes.slice(2)
  })
  afterAll(async () => {
    await elsewhere?.cleanup()
    await net?.cleanup()
  })

  it('five attacker peers holding their own claim of alice against three honest holders: contested, never a login with their password', async () => {
    const [n0, n1] = honest as [ChatNode, ChatNode]
    await registerUser(n0, 'alice')
    const aliceKeyId = n0.session!.account.keyId
    await n0.logout()
    await registerUser(n1, 'bob')
    // the attacker registers "alice" on a network of its own, then serves that record from its five peers here
    elsewhere = await startChatNetwork(1)
    const forger = elsewhere.nodes[0]!
    await forger.register({ username: 'alice', password: ATTACKER_PASSWORD, fullName: 'ALICE' })
    const forgedKeyId = forger.session!.account.keyId
    const forged = await forger.peer.records.getLocal(userKey('alice'))
    for (const a of attackers) await holdAsAttacker(a.peer, userKey('alice'), forged!.value)

    const contested = {
      name: 'ContestedNameError',
      fingerprints: expect.toSatisfy((f: string[]) => f.length === 2 && f.includes(fingerprintOf(aliceKeyId)) && f.includes(fingerprintOf(forgedKeyId)))
    }
    // from an honest peer, with the attacker's password: refused, not "logged in as alice"
    await expect(n0.login('alice', ATTACKER_PASSWORD)).rejects.toMatchObject(contested)
    expect(n0.session).toBeUndefined()
    // bob's request goes to nobody rather than to the attacker's key
    await expect(n1.addFriend('alice')).rejects.toMatchObject(contested)
    expect((await n1.friendRequests()).outgoing).toEqual([])
    // the real alice is told why she cannot log in now (not "wrong password")
    await expect(n0.login('alice', PASSWORD)).rejects.toMatchObject(contested)
  })
})

describe('names cost work', () => {
  let net: ChatNetwork | undefined
  afterAll(async () => { await net?.cleanup() })

  it('a squatter\'s claim without its proof of work (a junk record, no KDF work) is stored by no holder; the real user then registers the name', async () => {
    net = await startChatNetwork(3, { mailboxPollMs: 0 })
    const [userNode, reader] = net.nodes as [ChatNode, ChatNode]
    // a client of the DHT, as the squatter's script was: it stores nothing for others
    const squatterNode = await net.addNode({ clientMode: true })
    const squatter = generateAccountKeys()
    const key = userKey('newbie')
    const junk = {
      type: 'account', username: 'newbie', fullName: 'squatted', boxPublic: squatter.boxPublic,
      passwordHash: '$2b$04$' + 'j'.repeat(53),
      secretKeys: { kdf: 'scrypt', N: 2, r: 1, p: 1, salt: new Uint8Array(8), nonce: new Uint8Array(24), ciphertext: new Uint8Array(16) },
      createdAt: Date.now(), updatedAt: Date.now()
    }
    const value = encodeSignedRecord(createSignedRecord(key, 1, junk, squatter))
    // the squatter's own store takes anything (else kad-dht's put stops at it); then it offers the claim to the peers closest to the name
    await storeUnchecked(squatterNode.peer, key, value)
    const answers = { stored: 0, refused: 0 }
    for await (const event of squatterNode.peer.libp2p.services.dht.put(bytesFromString(key), value)) {
      if (event.name === 'PEER_RESPONSE') answers.stored++
      if (event.name === 'QUERY_ERROR') answers.refused++
    }
    // every other holder refused it
    for (const node of [net.supernode, userNode.peer, reader.peer]) expect(await node.records.getLocal(key)).toBeUndefined()
    expect(answers.refused).toBeGreaterThan(0)
    // the name reads as free elsewhere, and the real user gets it
    await userNode.register({ username: 'newbie', password: PASSWORD, fullName: 'New Bie' })
    const record = await eventually(async () => await reader.peer.records.get<AccountPayload>(key))
    expect(record.payload.fullName).toBe('New Bie')
    expect(record.payload.work).toEqual(expect.any(Number))
  })
})

describe('keys pinned at first contact', () => {
  let net: ChatNetwork | undefined
  let elsewhere: ChatNetwork | undefined
  afterAll(async () => {
    await elsewhere?.cleanup()
    await net?.cleanup()
  })

  it('once every replica of alice holds an attacker\'s claim, bob (who knew alice) sends that key nothing: his friend-add and its request are refused with both fingerprints', { timeout: 120_000 }, async () => {
    net = await startChatNetwork(4, { mailboxPollMs: 0 })
    const [n0, n1, n2, n3] = net.nodes as [ChatNode, ChatNode, ChatNode, ChatNode]
    await registerUser(n0, 'alice')
    const aliceKeyId = n0.session!.account.keyId
    await registerUser(n1, 'bob')
    await makeFriends(n1, n0)
    // the friendship ends; bob still knows alice's key
    await n1.removeFriend('alice')
    await n0.logout()
    await n1.logout()
    // the attacker's claim of alice replaces every replica: a lookup sees no other claim, so no contest
    elsewhere = await startChatNetwork(1)
    const forger = elsewhere.nodes[0]!
    await forger.register({ username: 'alice', password: ATTACKER_PASSWORD, fullName: 'ALICE' })
    const forgedKeyId = forger.session!.account.keyId
    const forged = await forger.peer.records.getLocal(userKey('alice'))
    for (const peer of [net.supernode, ...net.nodes.map(n => n.peer)]) await storeUnchecked(peer, userKey('alice'), forged!.value)

    // bob logs in on a peer that never read alice's record: his private state remembers her key
    await n3.login('bob', PASSWORD)
    const changed = { pinned: fingerprintOf(aliceKeyId), found: fingerprintOf(forgedKeyId) }
    await expect(n3.addFriend('alice')).rejects.toMatchObject({ name: 'KeyChangedError', ...changed })
    expect((await n3.friendRequests()).outgoing).toEqual([])
    // the attacker, logged in as alice here, asks bob: refused, and bob is told with both fingerprints
    const told = collect(n3, 'friend:key-changed')
    await n2.login('alice', ATTACKER_PASSWORD)
    const sent = await n2.addFriend('bob')
    expect(sent.delivery.status).not.toBe('delivered')
    await eventually(() => told.length > 0)
    expect(told[0]).toEqual({ username: 'alice', ...changed })
    expect((await n3.friendRequests()).incoming).toEqual([])
  })
})
