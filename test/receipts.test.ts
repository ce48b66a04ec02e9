/**
 * The states of direct messages between real nodes on loopback: sending, delivered on
 * the ack, queued in the mailbox, delivered when the recipient's peer reads it there
 * (another peer of the recipient's), read when the recipient opens the conversation;
 * read receipts switched off; a receipt from someone who is not a friend refused.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { createEnvelope, RECEIPT_KIND } from '@conf-chat/protocol'
import type { ChatNode } from '@conf-chat/node'
import { eventually, type ChatNetwork } from './helpers/chat.js'
import { aliceBobAndCarol, collect, makeFriends, PASSWORD } from './helpers/friends.js'
import { internalsOf } from './helpers/internals.js'

describe('message states and receipts', () => {
  let net: ChatNetwork
  let n0: ChatNode, n1: ChatNode, n2: ChatNode, n3: ChatNode
  beforeAll(async () => {
    net = await aliceBobAndCarol()
    ;[n0, n1, n2, n3] = net.nodes as [ChatNode, ChatNode, ChatNode, ChatNode]
  })
  afterAll(async () => { await net?.cleanup() })

  const stateOf = async (node: ChatNode, friend: string, id: string): Promise<string | undefined> =>
    (await node.history(friend)).find(m => m.id === id)?.state

  it('a live message is sending, then delivered on the ack, then read once bob opens the conversation', async () => {
    const states = collect(n0, 'message:state')
    const sent = await n0.sendMessage('bob', 'did you read this?')
    expect(states.filter(s => s.id === sent.id).map(s => s.state)).toEqual(['sending', 'delivered'])
    expect(await stateOf(n0, 'bob', sent.id)).toBe('delivered')
    expect(await n1.markRead('alice')).toBe(1)
    await eventually(() => states.some(s => s.id === sent.id && s.state === 'read'))
    expect(states.at(-1)).toEqual({ id: sent.id, to: 'bob', state: 'read' })
    expect(await stateOf(n0, 'bob', sent.id)).toBe('read')
    // told once: opening it again names nothing
    expect(await n1.markRead('alice')).toBe(0)
  })

  it('a message to an offline friend waits in the mailbox, is delivered when they log in on another peer, and read when they open it there', async () => {
    await n1.logout()
    const states = collect(n0, 'message:state')
    const sent = await n0.sendMessage('bob', 'for when you are back')
    expect(sent).toMatchObject({ status: 'queued', where: 'mailbox' })
    expect(await stateOf(n0, 'bob', sent.id)).toBe('queued')
    const offline = collect(n3, 'messages:offline')
    await n3.login('bob', PASSWORD)
    await eventually(() => offline.some(o => o.messages.some(m => m.id === sent.id)))
    // bob's peer read it from the mailbox: its receipt says delivered
    await eventually(() => states.some(s => s.id === sent.id && s.state === 'delivered'))
    expect(states.filter(s => s.id === sent.id).map(s => s.state)).toEqual(['sending', 'queued', 'delivered'])
    expect(await n3.markRead('alice')).toBe(1)
    await eventually(() => states.some(s => s.id === sent.id && s.state === 'read'))
    expect(await stateOf(n0, 'bob', sent.id)).toBe('read')
  })

  it('with read receipts off, opening the conversation tells nothing: the message stays delivered', async () => {
    n3.readReceipts = false
    try {
      const states = collect(n0, 'message:state')
      const sent = await n0.sendMessage('bob', 'private reading')
      expect(sent.status).toBe('delivered')
      expect(await n3.markRead('alice')).toBe(0)
      // switched on again later, nothing old is told
      n3.readReceipts = true
      expect(await n3.markRead('alice')).toBe(0)
      // a message bob sends after it arrives; no receipt went out before it
      const atAlice = collect(n0, 'message')
      await n3.sendMessage('alice', 'ok')
      await eventually(() => atAlice.length > 0)
      expect(states.filter(s => s.id === sent.id).map(s => s.state)).toEqual(['sending', 'delivered'])
      expect(await stateOf(n0, 'bob', sent.id)).toBe('delivered')
    } finally {
      n3.readReceipts = true
    }
  })

  it('refuses a receipt from someone who is not a friend, and one that names a message not sent to its sender', async () => {
    const states = collect(n0, 'message:state')
    const refused = collect(n0, 'envelope:refused')
    const sent = await n0.sendMessage('bob', 'only bob may say he read this')
    const alice = await n2.profile('alice')
    const where = (await n2.presenceOf('alice'))!
    const fromCarol = createEnvelope(RECEIPT_KIND, { state: 'read', ids: [sent.id] }, { username: 'carol', keys: n2.session!.account.keys }, alice)
    expect(await internalsOf(n2).messenger.send(where.peerId, where.addrs, fromCarol)).toMatchObject({ delivered: false, code: 'not-a-friend' })
    expect(refused).toEqual([expect.objectContaining({ id: fromCarol.id, from: 'carol', code: 'not-a-friend' })])
    // bob, a friend, naming an id alice never sent him: taken (acked) and changes nothing
    const bobKeys = n3.session!.account.keys
    const made = createEnvelope(RECEIPT_KIND, { state: 'read', ids: ['mzzzzzzzz-0000000000000000'] }, { username: 'bob', keys: bobKeys }, alice)
    expect(await internalsOf(n3).messenger.send(where.peerId, where.addrs, made)).toEqual({ delivered: true })
    expect(states.filter(s => s.id === sent.id).map(s => s.state)).toEqual(['sending', 'delivered'])
    expect(states.some(s => s.id === 'mzzzzzzzz-0000000000000000')).toBe(false)
  })

  it('a conference message moves per member: delivered on each ack, read when each member opens the conference, also a member who is not a friend', async () => {
    // carol becomes alice's friend (not bob's); alice's conference has bob (on the fourth peer now) and carol
    await makeFriends(n0, n2)
    const invited = collect(n2, 'conference:invited')
    const created = await n0.createConference('trip', ['bob', 'carol'])
    await eventually(() => invited.length > 0)
    const states = collect(n3, 'message:state')
    const atCarol = collect(n2, 'conference:message')
    const sent = await n3.sendConferenceMessage(created.conference.id, 'who reads this?')
    await eventually(() => atCarol.length > 0)
    const copies = (): Array<[string, string]> => states.filter(s => s.mid === sent.id).map(s => [s.to, s.state])
    expect(copies().filter(([, state]) => state === 'delivered').map(([to]) => to).sort()).toEqual(['alice', 'carol'])
    expect(states.filter(s => s.mid === sent.id).every(s => s.conference === created.conference.id)).toBe(true)
    // carol, who is not bob's friend, opens the conference: her receipt reaches bob, under his copy to her
    expect(await n2.markConferenceRead(created.conference.id)).toBe(1)
    await eventually(() => copies().some(([to, state]) => to === 'carol' && state === 'read'))
    expect(copies().some(([to, state]) => to === 'alice' && state === 'read')).toBe(false)
    expect(await n0.markConferenceRead(created.conference.id)).toBe(1)
    await eventually(() => copies().some(([to, state]) => to === 'alice' && state === 'read'))
  })
})
