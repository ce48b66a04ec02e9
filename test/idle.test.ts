/**
 * What an idle logged-in peer still does, on real nodes on loopback, with the product's
 * presence TTL (30 min): a friend whose peer goes away without a word is shown offline
 * when its connection closes, long before the record lapses; a message that lands in the
 * mailbox while its user is online is shown by the periodic read, without a check; a peer
 * that lost every connection tells its friends again once it is back.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { createEnvelope, sealEnvelope, mailboxSetKey, DM_KIND } from '@conf-chat/protocol'
import { DEFAULT_PRESENCE_TTL_MS, DEFAULT_PRESENCE_REFRESH_MS, type ChatNode } from '@conf-chat/node'
import { startChatNetwork, eventually, type ChatNetwork } from './helpers/chat.js'
import { collect, makeFriends, registerUser } from './helpers/friends.js'

/** The product's presence timing (the FAST test settings shorten it to seconds). */
const PRODUCT_PRESENCE = { presenceTtlMs: DEFAULT_PRESENCE_TTL_MS, presenceRefreshMs: DEFAULT_PRESENCE_REFRESH_MS }
/** A mailbox read every few seconds stands for the product's 5 minutes. */
const MAILBOX_POLL_MS = 3_000

describe('idle logged-in peers', () => {
  let net: ChatNetwork
  let alice: ChatNode, bob: ChatNode, carol: ChatNode
  beforeAll(async () => {
    net = await startChatNetwork(4, { ...PRODUCT_PRESENCE, mailboxPollMs: MAILBOX_POLL_MS })
    ;[alice, bob, carol] = net.nodes as [ChatNode, ChatNode, ChatNode]
    await registerUser(alice, 'alice')
    await registerUser(bob, 'bob')
    await registerUser(carol, 'carol')
    await makeFriends(alice, bob)
    await makeFriends(alice, carol)
  }, 120_000)
  afterAll(async () => { await net?.cleanup() })

  it('shows a message left in the mailbox of an online user without a check, by the periodic read', async () => {
    const shown = collect(alice, 'messages:offline')
    // as when bob's live send failed on his side: the envelope goes straight to alice's mailbox
    const toAlice = await bob.profile('alice')
    const envelope = createEnvelope(DM_KIND, { text: 'left while you were online' }, { username: 'bob', keys: bob.session!.account.keys }, toAlice)
    // sealed, as bob's outbox stores it for a friend
    await net.nodes[3]!.peer.sets.add(mailboxSetKey(alice.whoami().keyId), [sealEnvelope(envelope, bob.session!.account.keys, toAlice.boxPublic)!])
    const batch = await eventually(() => shown.find(b => b.messages.some(m => m.id === envelope.id)), 60_000)
    expect(batch.messages.find(m => m.id === envelope.id)).toMatchObject({ from: 'bob', text: 'left while you were online' })
  })

  it('shows a friend offline once their peer is gone without a logout, long before the presence record lapses', async () => {
    const presence = collect(alice, 'presence')
    // alice knows carol online, at carol's peer
    await eventually(async () => (await alice.friends()).find(f => f.username === 'carol')?.online === true)
    await carol.peer.stop() // no logout, no notice, no offline record: as after kill -9
    await eventually(() => presence.some(p => p.username === 'carol' && !p.online), 30_000)
    const friends = await alice.friends()
    expect(friends.find(f => f.username === 'carol')?.online).toBe(false)
    expect(friends.find(f => f.username === 'bob')?.online).toBe(true)
  })

  it('tells friends again that it is online once it joined again after losing every connection', async () => {
    const presence = collect(alice, 'presence')
    const rejoined = new Promise<void>(resolve => { bob.peer.addEventListener('network:joined', () => { resolve() }, { once: true }) })
    // every connection closes at once, as when a cable is pulled and plugged in again: friends may have taken bob for gone
    await Promise.all(bob.peer.libp2p.getConnections().map(async c => { await c.close() }))
    await rejoined
    await eventually(() => presence.some(p => p.username === 'bob' && p.online), 30_000)
  })
})
