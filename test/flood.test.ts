/**
 * Floods from accounts anyone can make, on real nodes (scaled down: a cap of 5 requests
 * where the product keeps 100). Fake accounts each ask the victim to be friends, with the
 * longest note: the requests past the cap are refused for now (their senders keep them),
 * so the victim's private state stays small enough to be written, and a real friendship
 * made after the flood is saved to the DHT.
 */
import { describe, it, expect, afterAll } from 'vitest'
import { stateKey, openForOwner, privateStateSchema, MAX_FRIEND_NOTE_CHARS, type SealedPayload } from '@conf-chat/protocol'
import type { ChatNode } from '@conf-chat/node'
import { startChatNetwork, eventually, type ChatNetwork } from './helpers/chat.js'
import { collect, registerUser } from './helpers/friends.js'

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
