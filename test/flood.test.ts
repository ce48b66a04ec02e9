/**
 * Floods from accounts anyone can make, on real nodes (scaled down: a cap of 5 requests
 * where the product keeps 100). Fake accounts each ask the victim to be friends, with the
 * longest note: the requests past the cap are refused for now (their senders keep them),
 * so the victim's private state stays small enough to be written, and a real friendship
 * made after the flood is saved to the DHT. A registered account writing straight into a
 * mailbox whose owner does not know it gets only a few friend requests stored, and no
 * direct message; sealed as a stranger's (holders cannot see the kind), a direct message
 * is stored, and dropped by its recipient.
 */
import { describe, it, expect, afterAll } from 'vitest'
import {
  stateKey, openForOwner, privateStateSchema, mailboxSetKey, mailboxItemOf, mailboxWriterOf, createEnvelope, decodeEnvelope,
  decodeWriterListItem, isWriterListId, isSealedEnvelopeItem, sealStrangerEnvelope, keyIdOf, mailboxPairKeyId, MAX_FRIEND_NOTE_CHARS, STRANGER_LIMITS, FRIEND_REQUEST_KIND, DM_KIND, type SealedPayload, type SetItem
} from '@conf-chat/protocol'
import type { ChatNode } from '@conf-chat/node'
import { startChatNetwork, eventually, type ChatNetwork } from './helpers/chat.js'
import { collect, makeFriends, registerUser, PASSWORD } from './helpers/friends.js'

const CAP = 5
const SPAMMERS = 8

describe('a flood of friend requests', () => {
  let net: ChatNetwork | undefined
  afterAll(async () => { await net?.cleanup() })

  it('keeps the victim\'s private state writable: requests past the cap are refused for now, a real friendship is saved', { timeout: 180_000 }, async () => {
    net = await startChatNetwork(3, { mailboxPollMs: 0, friendRequests: { maxIncoming: CAP, ttlMs: 45 * 86_400_000 } })
    const [victimNode, spamNode, friendNode] = net.nodes as [ChatNode, ChatNode, ChatNode]
    await registerUser(victimNode, 'victim')
    const victim = victimNode.session!.account
    const told = collect(victimNode, 'friend:request')
    const statuses: string[] = []
    for (let i = 0; i < SPAMMERS; i++) {
      await registerUser(spamNode, `spam${i}`)
      statuses.push((await spamNode.addFriend('victim', 'x'.repeat(MAX_FRIEND_NOTE_CHARS))).delivery.status)
      await spamNode.logout()
    }
    // the first CAP were taken live; the rest were refused for now and wait with their senders
    expect(statuses.slice(0, CAP)).toEqual(Array(CAP).fill('delivered'))
    expect(statuses.slice(CAP)).not.toContain('delivered')
    expect((await victimNode.friendRequests()).incoming).toHaveLength(CAP)
    expect(told).toHaveLength(CAP)

    // a real friend, after the flood: the victim asks, the friend accepts
    await registerUser(friendNode, 'realfriend')
    await victimNode.addFriend('realfriend')
    await eventually(async () => (await friendNode.friendRequests()).incoming.some(r => r.username === 'victim'))
    await friendNode.acceptFriend('victim')
    await eventually(async () => (await victimNode.friends()).some(f => f.username === 'realfriend'))
    expect(await victimNode.flush()).toBe(true)
    // what another peer reads of the victim's private state: the friend, and no more than the cap of requests
    const stored = await friendNode.peer.records.get<SealedPayload>(stateKey(victim.keyId))
    const state = openForOwner(stored!.payload.sealed, victim.keys, privateStateSchema)
    expect(state.friends.map(f => f.username)).toEqual(['realfriend'])
    expect(state.incoming).toHaveLength(CAP)
    console.log(`victim's private state after ${SPAMMERS} requests with ${MAX_FRIEND_NOTE_CHARS}-character notes (cap ${CAP}): ${stored!.value.length} bytes`)
  })
})

describe('a registered stranger flooding a mailbox', () => {
  let net: ChatNetwork | undefined
  afterAll(async () => { await net?.cleanup() })

  it(`keeps ${STRANGER_LIMITS.items} of its friend requests and none of its direct messages; the victim's friends, old and new, still leave messages`, { timeout: 180_000 }, async () => {
    net = await startChatNetwork(4, { mailboxPollMs: 0 })
    const [victimNode, friendNode, spamNode, newFriendNode] = net.nodes as [ChatNode, ChatNode, ChatNode, ChatNode]
    await registerUser(victimNode, 'victim')
    await registerUser(friendNode, 'oldfriend')
    await makeFriends(victimNode, friendNode)
    const victim = victimNode.session!.account
    const setKey = mailboxSetKey(victim.keyId)
    /** Whether a writer list the victim's mailbox holders hold now (read as its owner) names the friend on `node` (by the key of their pair). */
    const listNames = async (node: ChatNode): Promise<boolean> => {
      const { keyId, keys } = node.session!.account
      const pairKeyId = mailboxPairKeyId(victim.keys, keys.boxPublic, keyId, victim.keyId)
      const lists = (await victimNode.peer.sets.list(setKey, { readAs: victim.keys })).filter(i => isWriterListId(i.id))
      return lists.some(l => decodeWriterListItem(victim.keyId, l).names(pairKeyId))
    }
    await eventually(async () => await listNames(friendNode))

    // the attack: a registered account writes straight into the victim's mailbox, past its own program's checks
    await registerUser(spamNode, 'mallory')
    const mallory = { username: 'mallory', keys: spamNode.session!.account.keys }
    const to = { username: 'victim', keyId: victim.keyId, boxPublic: victim.keys.boxPublic }
    const kept = STRANGER_LIMITS.items
    const requests = Array.from({ length: kept + 5 }, (_, i) => mailboxItemOf(createEnvelope(FRIEND_REQUEST_KIND, { note: `please ${i}` }, mallory, to, Date.now() + i)))
    const dms = Array.from({ length: 10 }, (_, i) => mailboxItemOf(createEnvelope(DM_KIND, { text: `junk ${i}` }, mallory, to, Date.now() + 100 + i)))
    const storedCopies = async (items: SetItem[]): Promise<number[]> => {
      try {
        const { stored } = await spamNode.peer.sets.add(setKey, items)
        return items.map(i => stored[i.id] ?? 0)
      } catch (err: any) {
        return items.map(i => err.stored?.[i.id] ?? 0)
      }
    }
    const requestCopies = await storedCopies(requests)
    const dmCopies = await storedCopies(dms)
    expect(requestCopies.slice(0, kept).every(c => c > 0)).toBe(true)
    expect(requestCopies.slice(kept)).toEqual(Array(5).fill(0))
    expect(dmCopies).toEqual(Array(10).fill(0))
    // what the holders keep of mallory's: friend requests up to the strangers' limit, nothing else
    const held = await victimNode.peer.sets.list(setKey, { readAs: victim.keys })
    const fromMallory = held.filter(i => mailboxWriterOf(i) === keyIdOf(mallory.keys.signPublic))
    expect(fromMallory.map(i => decodeEnvelope(i.data).kind)).toEqual(Array(kept).fill(FRIEND_REQUEST_KIND))
    // sealed as a stranger's, with the work, holders cannot tell a direct message from a
    // request: they take a stranger's share of them, and the victim never shows one
    const sealedDms = await Promise.all(Array.from({ length: 3 }, async (_, i) =>
      (await sealStrangerEnvelope(createEnvelope(DM_KIND, { text: `sealed junk ${i}` }, mallory, to, Date.now() + 200 + i), mallory.keys, victim.keys.boxPublic))!))
    expect((await storedCopies(sealedDms)).every(c => c > 0)).toBe(true)

    // a new friend: the stranger's request is taken, the victim accepts, and the holders learn of it
    await registerUser(newFriendNode, 'newfriend')
    await makeFriends(newFriendNode, victimNode)
    await eventually(async () => await listNames(newFriendNode))
    // both friends leave messages while the victim is away; the victim reads them at login
    await victimNode.logout()
    await eventually(async () => (await friendNode.presenceOf('victim'))?.online === false)
    expect((await friendNode.sendMessage('victim', 'from an old friend')).status).toBe('queued')
    expect((await newFriendNode.sendMessage('victim', 'from a new friend')).status).toBe('queued')
    // friends' messages wait sealed: holders see neither who sent them nor their kind
    const sealedIds = new Set(sealedDms.map(i => i.id))
    const waiting = (await victimNode.peer.sets.list(setKey, { readAs: victim.keys }))
      .filter(i => !isWriterListId(i.id) && mailboxWriterOf(i) !== keyIdOf(mallory.keys.signPublic) && !sealedIds.has(i.id))
    expect(waiting.map(isSealedEnvelopeItem)).toEqual([true, true])
    const offline = collect(victimNode, 'messages:offline')
    await victimNode.login('victim', PASSWORD)
    await eventually(() => offline.flatMap(e => e.messages.map(m => m.text)).length >= 2)
    expect(offline.flatMap(e => e.messages.map(m => m.text)).sort()).toEqual(['from a new friend', 'from an old friend'])
    // the sealed direct messages were dropped at that read, and removed from the mailbox
    await eventually(async () => (await victimNode.peer.sets.list(setKey, { readAs: victim.keys })).every(i => !sealedIds.has(i.id)))
  })
})

describe('a private state the network will not take', () => {
  let net: ChatNetwork | undefined
  afterAll(async () => { await net?.cleanup() })

  it('is told to the user after 3 failed writes in a row, with the reason, and told again once saved', { timeout: 60_000 }, async () => {
    net = await startChatNetwork(2, { mailboxPollMs: 0, stateRetryMs: 100 })
    const [node, other] = net.nodes as [ChatNode, ChatNode]
    await registerUser(other, 'someone')
    await registerUser(node, 'unsaved')
    const keyId = node.session!.account.keyId
    const unsaved = collect(node, 'state:unsaved')
    const saved = collect(node, 'state:saved')
    const records = node.peer.records
    const put = records.put.bind(records)
    let failing = true
    records.put = async (...args: Parameters<typeof put>) => {
      if (failing && args[0] === stateKey(keyId)) throw new Error('no peer answered')
      return await put(...args)
    }
    try {
      const asking = node.addFriend('someone')
      await eventually(() => unsaved.length > 0)
      expect(unsaved[0]).toEqual({ failures: 3, reason: 'no peer answered' })
      expect(saved).toEqual([])
      failing = false
      await asking
      await eventually(() => saved.length > 0)
      expect(saved[0]!.failures).toBeGreaterThanOrEqual(3)
    } finally {
      records.put = put
    }
  })
})
