/**
 * The friend flow across peers, with one side offline at each step: requests, accepts,
 * rejects and removals reach an offline user through the mailbox, friends and requests
 * follow the account to other peers, and both sides end up agreeing.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import {
  stateKey, openForOwner, privateStateSchema, mailboxSetKey, mailboxWriterOf, mailboxPairKeyId, isSealedStrangerItem, FRIEND_REQUEST_KIND, type SealedPayload
} from '@conf-chat/protocol'
import type { ChatNode } from '@conf-chat/node'
import { startChatNetwork, eventually, type ChatNetwork } from './helpers/chat.js'
import { collect, registerUser, PASSWORD } from './helpers/friends.js'

const names = (list: Array<{ username: string }>): string[] => list.map(e => e.username).sort()

describe('friends', () => {
  let net: ChatNetwork
  let n0: ChatNode, n1: ChatNode, n2: ChatNode, n3: ChatNode
  /** bob's account, to read his mailbox as its owner. */
  let bob: NonNullable<ChatNode['session']>['account']
  beforeAll(async () => {
    net = await startChatNetwork(4, { mailboxPollMs: 0 })
    ;[n0, n1, n2, n3] = net.nodes as [ChatNode, ChatNode, ChatNode, ChatNode]
    await registerUser(n1, 'bob')
    bob = n1.session!.account
    await n1.logout()
    await registerUser(n3, 'carol')
    await n3.logout()
    await registerUser(n0, 'alice')
  })
  afterAll(async () => { await net?.cleanup() })

  it('refuses what makes no sense, with clear errors', async () => {
    await expect(n0.addFriend('alice')).rejects.toMatchObject({ name: 'SelfFriendError' })
    await expect(n0.addFriend('nobody-at-all')).rejects.toMatchObject({ name: 'UnknownUserError', message: 'unknown user: nobody-at-all' })
    await expect(n0.acceptFriend('bob')).rejects.toMatchObject({ name: 'NoFriendRequestError', message: 'no friend request from bob' })
    await expect(n0.rejectFriend('bob')).rejects.toMatchObject({ name: 'NoFriendRequestError' })
    await expect(n0.removeFriend('bob')).rejects.toMatchObject({ name: 'NotFriendError', message: 'not a friend: bob' })
    await expect(n0.addFriend('Not A Name')).rejects.toMatchObject({ name: 'InvalidInputError' })
    await expect(n0.addFriend('bob', 'x'.repeat(201))).rejects.toMatchObject({ name: 'InvalidInputError', message: expect.stringMatching(/note too long/) })
    expect(await n0.friendRequests()).toEqual({ incoming: [], outgoing: [] })
    // nobody logged in on n2
    await expect(n2.addFriend('bob')).rejects.toMatchObject({ name: 'NotLoggedInError' })
    await expect(n2.friends()).rejects.toMatchObject({ name: 'NotLoggedInError' })
  })

  it('request to an offline user → seen at their login on another peer → accepted while the requester is offline', async () => {
    // 1. bob is offline: the request goes to his mailbox
    const sent = await n0.addFriend('bob', 'we met at the conference')
    expect(sent).toMatchObject({ username: 'bob', action: 'requested', delivery: { status: 'queued', where: 'mailbox' } })
    expect((await n0.friendRequests()).outgoing).toEqual([expect.objectContaining({ username: 'bob', note: 'we met at the conference' })])
    // it waits sealed, as a stranger's: holders see neither who asked nor that it is a request
    const held = (await n0.peer.sets.list(mailboxSetKey(bob.keyId), { readAs: bob.keys })).filter(i => i.id === sent.delivery.id)
    expect(held).toHaveLength(1)
    expect(isSealedStrangerItem(held[0]!)).toBe(true)
    // its pseudonym is the pair key, which bob derives once he knows alice (not her key)
    const alice = n0.session!.account
    expect(mailboxWriterOf(held[0]!)).toBe(mailboxPairKeyId(bob.keys, alice.keys.boxPublic, alice.keyId, bob.keyId))
    for (const secret of [n0.session!.account.keys.signPublic, Buffer.from('alice'), Buffer.from(FRIEND_REQUEST_KIND), Buffer.from('we met')]) {
      expect(Buffer.from(held[0]!.data).includes(Buffer.from(secret))).toBe(false)
    }

    // 2. bob logs in (not where he registered) and finds it
    const requests = collect(n2, 'friend:request')
    await n2.login('bob', PASSWORD)
    await eventually(() => requests.length > 0)
    expect(requests).toEqual([expect.objectContaining({ username: 'alice', note: 'we met at the conference' })])
    expect((await n2.friendRequests()).incoming).toEqual([expect.objectContaining({ username: 'alice', note: 'we met at the conference' })])

    // 3. alice goes offline; bob accepts: the accept waits in her mailbox
    await n0.logout()
    const accepted = await n2.acceptFriend('alice')
    expect(accepted).toMatchObject({ action: 'accepted', delivery: { status: 'queued', where: 'mailbox' } })
    expect(await n2.friends()).toEqual([expect.objectContaining({ username: 'alice', online: false })])
    expect(await n2.friendRequests()).toEqual({ incoming: [], outgoing: [] })

    // 4. alice logs in on yet another peer: the accept makes bob her friend; bob hears she is online
    const acceptedAtAlice = collect(n1, 'friend:accepted')
    const presenceAtBob = collect(n2, 'presence')
    await n1.login('alice', PASSWORD)
    await eventually(() => acceptedAtAlice.length > 0)
    expect(acceptedAtAlice).toEqual([{ username: 'bob' }])
    expect(await n1.friends()).toEqual([expect.objectContaining({ username: 'bob', online: true, note: 'we met at the conference' })])
    expect(await n1.friendRequests()).toEqual({ incoming: [], outgoing: [] })
    await eventually(() => presenceAtBob.some(p => p.username === 'alice' && p.online))
    expect(await n2.onlineFriends()).toEqual([expect.objectContaining({ username: 'alice', online: true })])
  })

  it('a request made while both are online follows the account to another peer', async () => {
    // carol (offline so far) logs in and asks bob, who is online: delivered live
    const atBob = collect(n2, 'friend:request')
    await n3.login('carol', PASSWORD)
    const sent = await n3.addFriend('bob', 'hi from carol')
    expect(sent.delivery).toMatchObject({ status: 'delivered', where: 'live' })
    await eventually(() => atBob.length > 0)
    // bob moves to another peer before answering: the request is part of his account
    await n2.logout()
    await n0.login('bob', PASSWORD)
    expect((await n0.friendRequests()).incoming).toEqual([expect.objectContaining({ username: 'carol', note: 'hi from carol' })])
  })

  it('a reject reaches the requester after they went offline', async () => {
    await n3.logout()
    const rejected = await n0.rejectFriend('carol')
    expect(rejected).toMatchObject({ action: 'rejected', delivery: { status: 'queued', where: 'mailbox' } })
    expect((await n0.friendRequests()).incoming).toEqual([])
    const atCarol = collect(n2, 'friend:rejected')
    await n2.login('carol', PASSWORD)
    await eventually(() => atCarol.length > 0)
    expect(atCarol).toEqual([{ username: 'bob' }])
    expect(await n2.friendRequests()).toEqual({ incoming: [], outgoing: [] })
    expect(await n2.friends()).toEqual([])
  })

  it('two users asking each other become friends once, whoever was offline', async () => {
    // carol asks alice while she is offline, then goes offline herself
    await n1.logout()
    const toAlice = await n2.addFriend('alice')
    expect(toAlice.delivery.status).toBe('queued')
    await n2.logout()
    await n1.login('alice', PASSWORD)
    // the request arrived from the mailbox at login: adding carol accepts it (carol offline: mailbox)
    await eventually(async () => (await n1.friendRequests()).incoming.some(r => r.username === 'carol'))
    const back = await n1.addFriend('carol')
    expect(back.action).toBe('accepted')
    await n3.login('carol', PASSWORD)
    await eventually(async () => names(await n3.friends()).includes('alice'))
    expect(names(await n1.friends())).toEqual(['bob', 'carol'])
    expect(await n3.friendRequests()).toEqual({ incoming: [], outgoing: [] })
  })

  it('a removal reaches the removed friend offline, and both sides agree', async () => {
    // bob (n0) removes alice while she is offline
    await n1.logout()
    const removed = await n0.removeFriend('alice')
    expect(removed).toMatchObject({ action: 'removed', delivery: { status: 'queued', where: 'mailbox' } })
    expect(names(await n0.friends())).toEqual([])
    await expect(n0.sendMessage('alice', 'still there?')).rejects.toMatchObject({ name: 'NotFriendError' })
    const atAlice = collect(n2, 'friend:removed')
    await n2.login('alice', PASSWORD)
    await eventually(() => atAlice.length > 0)
    expect(atAlice).toEqual([{ username: 'bob' }])
    expect(names(await n2.friends())).toEqual(['carol'])
    await expect(n2.sendMessage('bob', 'why?')).rejects.toMatchObject({ name: 'NotFriendError', message: 'not a friend: bob' })
    // the account's state is the same from any peer
    await n2.logout()
    await n1.login('alice', PASSWORD)
    expect(names(await n1.friends())).toEqual(['carol'])
  })

  it("a live request is acked once stored on the receiver's peer, while its private state cannot be written; kept there and applied again at the next login", async () => {
    await n3.logout()
    await registerUser(n3, 'erin')
    await registerUser(n2, 'dave')
    const erin = n3.session!.account
    // erin's peer cannot write her private state: each write waits, then fails
    const records = n3.peer.records
    const put = records.put.bind(records)
    let release = (): void => {}
    const held = new Promise<void>(resolve => { release = resolve })
    let stalled = 0
    records.put = async (...args: Parameters<typeof put>) => {
      if (args[0] !== stateKey(erin.keyId)) return await put(...args)
      stalled++
      await held
      throw new Error('the DHT is unreachable')
    }
    try {
      const asked = collect(n3, 'friend:request')
      const sent = await n2.addFriend('erin', 'from dave')
      // acknowledged live, not left to the mailbox after an ack that waited on the DHT
      expect(sent.delivery).toMatchObject({ status: 'delivered', where: 'live' })
      expect(asked).toEqual([expect.objectContaining({ username: 'dave', note: 'from dave' })])
      expect((await n3.friendRequests()).incoming.map(r => r.username)).toEqual(['dave'])
      // the write of the request is under way, stalled
      await eventually(() => stalled > 0)
      // the write fails; erin logs out without it (dave's outbox is done with the request)
      release()
      await n3.logout()
      expect(await n2.queued()).toEqual([])
    } finally {
      records.put = put
    }
    // her next login here applies the kept request again, and writes it this time
    await n3.login('erin', PASSWORD)
    expect((await n3.friendRequests()).incoming.map(r => r.username)).toEqual(['dave'])
    expect(await n3.flush()).toBe(true)
    const found = await n0.peer.records.get<SealedPayload>(stateKey(erin.keyId))
    expect(openForOwner(found!.payload.sealed, erin.keys, privateStateSchema).incoming.map(r => r.username)).toEqual(['dave'])
    await n3.acceptFriend('dave')
    await eventually(async () => names(await n2.friends()).includes('erin'))
  })
})
