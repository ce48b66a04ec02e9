/**
 * Direct messages between real nodes on loopback: live both ways with acks, refusal of
 * non-friends, offline delivery at login on another peer (once, in order), presence
 * notices, and history after a roaming login.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import {
  createEnvelope, sealEnvelope, mailboxSetKey, conversationId, historyKey, stateKey, openForOwner, privateStateSchema,
  DM_KIND, MAX_RECORD_BYTES, type SealedPayload
} from '@conf-chat/protocol'
import type { ChatNode } from '@conf-chat/node'
import { eventually, type ChatNetwork } from './helpers/chat.js'
import { aliceBobAndCarol, collect, PASSWORD } from './helpers/friends.js'
import { internalsOf } from './helpers/internals.js'

describe('direct messages', () => {
  let net: ChatNetwork
  let n0: ChatNode, n1: ChatNode, n2: ChatNode, n3: ChatNode
  beforeAll(async () => {
    net = await aliceBobAndCarol()
    ;[n0, n1, n2, n3] = net.nodes as [ChatNode, ChatNode, ChatNode, ChatNode]
  })
  afterAll(async () => { await net?.cleanup() })

  it('delivers live messages both ways, acknowledged, each shown once', async () => {
    const atBob = collect(n1, 'message')
    const atAlice = collect(n0, 'message')
    const sent = await n0.sendMessage('bob', 'hello bob')
    expect(sent).toMatchObject({ status: 'delivered', where: 'live' })
    // delivered means acknowledged: the recipient already emitted it
    expect(atBob).toEqual([expect.objectContaining({ id: sent.id, from: 'alice', to: 'bob', text: 'hello bob', live: true, direction: 'in' })])
    const reply = await n1.sendMessage('alice', 'hi alice')
    expect(reply.status).toBe('delivered')
    expect(atAlice.map(m => m.text)).toEqual(['hi alice'])
    expect(atBob[0]!.sentAt).toBeLessThanOrEqual(atAlice[0]!.sentAt)
    expect(await n0.queued()).toEqual([])
  })

  it('many messages sent at once go in flight together on one stream: each acked, shown once, in the order sent', async () => {
    const atBob = collect(n1, 'message')
    const texts = Array.from({ length: 80 }, (_, i) => `burst ${String(i).padStart(2, '0')}`)
    // in order of the calls: each send seals and persists before the next call starts its own
    const sends = texts.map(async text => await n0.sendMessage('bob', text))
    const results = await Promise.all(sends)
    expect(results.map(r => r.status)).toEqual(texts.map(() => 'delivered'))
    expect(results.every(r => r.where === 'live')).toBe(true)
    expect(new Set(results.map(r => r.id)).size).toBe(texts.length)
    // delivered means acknowledged: each was shown before its ack
    expect(atBob.map(m => m.id).sort()).toEqual(results.map(r => r.id).sort())
    expect(atBob.map(m => m.text)).toEqual(texts)
    expect(await n0.queued()).toEqual([])
  })

  it("checks a friend's live message against the keys it keeps, so the ack never waits on the DHT", async () => {
    // bob's peer forgets alice's cached profile and cannot read any user record now
    const internals = internalsOf(n1)
    const profile = internals.accounts.profile
    let reads = 0
    internals.profiles.forget('alice')
    internals.accounts.profile = async () => { reads++; throw new Error('the DHT is unreachable') }
    try {
      const atBob = collect(n1, 'message')
      const sent = await n0.sendMessage('bob', 'no lookup needed')
      expect(sent).toMatchObject({ status: 'delivered', where: 'live' })
      expect(atBob.map(m => m.text)).toEqual(['no lookup needed'])
      expect(reads).toBe(0)
    } finally {
      internals.accounts.profile = profile
    }
  })

  it('refuses a message to someone who is not a friend, and sends nothing', async () => {
    await expect(n0.sendMessage('carol', 'psst')).rejects.toMatchObject({ name: 'NotFriendError', message: 'not a friend: carol' })
    await expect(n0.sendMessage('nobody-here', 'psst')).rejects.toMatchObject({ name: 'NotFriendError' })
    await expect(n0.sendMessage('bob', '   ')).rejects.toMatchObject({ name: 'InvalidInputError' })
    await expect(n0.sendMessage('bob', 'x'.repeat(4001))).rejects.toMatchObject({ name: 'InvalidInputError' })
    expect(await n0.queued()).toEqual([])
  })

  it('drops a message from a non-friend at the receiver, with a reason', async () => {
    const refused = collect(n1, 'envelope:refused')
    const atBob = collect(n1, 'message')
    const carol = n2.session!.account
    const bob = await n2.profile('bob')
    const envelope = createEnvelope(DM_KIND, { text: 'let me in' }, { username: 'carol', keys: carol.keys }, bob)
    const presence = (await n2.presenceOf('bob'))!
    const result = await internalsOf(n2).messenger.send(presence.peerId, presence.addrs, envelope)
    expect(result).toEqual({ delivered: false, code: 'not-a-friend', final: true, reason: 'not a friend: carol' })
    expect(refused).toEqual([expect.objectContaining({ id: envelope.id, from: 'carol', live: true, reason: 'not a friend: carol' })])
    expect(atBob).toEqual([])
  })

  it('drops a live envelope with a forged sender or a tampered body', async () => {
    const refused = collect(n1, 'envelope:refused')
    const atBob = collect(n1, 'message')
    const bob = await n2.profile('bob')
    const where = (await n2.presenceOf('bob'))!
    // carol signs with her own key but claims to be alice, bob's friend
    const forged = createEnvelope(DM_KIND, { text: 'it is me, alice' }, { username: 'alice', keys: n2.session!.account.keys }, bob)
    expect(await internalsOf(n2).messenger.send(where.peerId, where.addrs, forged))
      .toEqual({ delivered: false, code: 'bad-signature', final: true, reason: 'forged sender: alice does not own the signing key' })
    // alice's genuine envelope with one bit of the sealed body flipped on the way
    const genuine = createEnvelope(DM_KIND, { text: 'pay 10' }, { username: 'alice', keys: n0.session!.account.keys }, bob)
    const tampered = { ...genuine, body: Uint8Array.from(genuine.body, (b, i) => i === 50 ? b ^ 1 : b) }
    // (the receiver logs "bad envelope signature"; its ack cannot name an id it could not verify)
    expect(await internalsOf(n2).messenger.send(where.peerId, where.addrs, tampered)).toMatchObject({ delivered: false })
    // the genuine one still goes through: the refusals were about the changes
    expect(await internalsOf(n2).messenger.send(where.peerId, where.addrs, genuine)).toEqual({ delivered: true })
    expect(atBob.map(m => m.text)).toEqual(['pay 10'])
    expect(refused).toEqual([expect.objectContaining({ id: forged.id, from: 'alice', live: true })])
  })

  it('tells friends at once when a friend logs out and in', async () => {
    const presence = collect(n0, 'presence')
    await n1.logout()
    await eventually(() => presence.some(p => p.username === 'bob' && !p.online))
    expect((await n0.friends()).find(f => f.username === 'bob')?.online).toBe(false)
    await n1.login('bob', PASSWORD)
    await eventually(() => presence.some(p => p.username === 'bob' && p.online))
    expect(await n0.onlineFriends()).toEqual([expect.objectContaining({ username: 'bob', online: true })])
  })

  it('shows a message once when it came both live and from the mailbox (a lost ack), on this peer or another', async () => {
    const bob = await n0.profile('bob')
    const alice = { username: 'alice', keys: n0.session!.account.keys }
    const where = (await n0.presenceOf('bob'))!
    const atBob = collect(n1, 'message')
    // delivered live, and also stored in the mailbox, as a sender does when the ack is lost
    const twice = async (text: string): Promise<string> => {
      const env = createEnvelope(DM_KIND, { text }, alice, bob)
      expect(await internalsOf(n0).messenger.send(where.peerId, where.addrs, env)).toEqual({ delivered: true })
      // sealed, as alice's outbox stores it for a friend
      await n0.peer.sets.add(mailboxSetKey(bob.keyId), [sealEnvelope(env, alice.keys, bob.boxPublic)!])
      return env.id
    }
    await twice('same peer')
    expect(await n1.checkMailbox()).toEqual([])
    const other = await twice('other peer')
    expect(atBob.map(m => m.text)).toEqual(['same peer', 'other peer'])
    await n1.logout()
    const offline = collect(n3, 'messages:offline')
    await n3.login('bob', PASSWORD)
    // the login's mailbox read is done once a second read returns
    expect(await n3.checkMailbox()).toEqual([])
    expect(offline).toEqual([])
    expect((await n3.history('alice')).filter(m => m.id === other)).toHaveLength(1)
    await n3.logout()
    await n1.login('bob', PASSWORD)
  })

  it('queues messages for an offline friend and shows them once, in order, at login on another peer', async () => {
    await n1.logout()
    const texts = ['one', 'two', 'three', 'four']
    const ids: string[] = []
    for (const text of texts) {
      const r = await n0.sendMessage('bob', text)
      expect(r).toMatchObject({ status: 'queued', where: 'mailbox' })
      ids.push(r.id)
    }
    const offline = collect(n3, 'messages:offline')
    const live = collect(n3, 'message')
    await n3.login('bob', PASSWORD)
    await eventually(() => offline.length > 0)
    expect(offline).toHaveLength(1)
    expect(offline[0]!.messages.map(m => m.text)).toEqual(texts)
    expect(offline[0]!.messages.map(m => m.id)).toEqual(ids)
    expect(offline[0]!.messages.every(m => m.from === 'alice' && !m.live)).toBe(true)
    // delivered items were removed from the holders: a later check and another login show nothing
    expect(await n3.checkMailbox()).toEqual([])
    await n3.logout()
    const again = collect(n2, 'messages:offline')
    await n2.logout()
    await n2.login('bob', PASSWORD)
    expect(await n2.checkMailbox()).toEqual([])
    expect(again).toEqual([])
    expect(live).toEqual([])
  })

  it('a login on another peer while the old session reads its mailbox: each message shown once, on one of the two', async () => {
    // bob is on n2; five messages wait in his mailbox
    const bob = await n0.profile('bob')
    const alice = { username: 'alice', keys: n0.session!.account.keys }
    const ids: string[] = []
    for (let i = 0; i < 5; i++) {
      const env = createEnvelope(DM_KIND, { text: `handover ${i}` }, alice, bob)
      await n0.peer.sets.add(mailboxSetKey(bob.keyId), [sealEnvelope(env, alice.keys, bob.boxPublic)!])
      ids.push(env.id)
    }
    // n2's removal of what it showed is slow: still under way when bob logs in on n3
    const sets = n2.peer.sets
    const remove = sets.remove.bind(sets)
    const takenOver = new Promise<void>(resolve => { n2.addEventListener('session:ended', () => { resolve() }, { once: true }) })
    sets.remove = async (...args: Parameters<typeof remove>) => { await takenOver; return await remove(...args) }
    try {
      const shown = new Map<string, number>()
      const count = (evt: CustomEvent<{ messages: Array<{ id: string }> }>): void => {
        for (const m of evt.detail.messages) shown.set(m.id, (shown.get(m.id) ?? 0) + 1)
      }
      n2.addEventListener('messages:offline', count)
      n3.addEventListener('messages:offline', count)
      let login: Promise<unknown> | undefined
      n2.addEventListener('messages:offline', () => { login ??= n3.login('bob', PASSWORD) }, { once: true })
      await n2.checkMailbox()
      await login
      // the new session's reads come after its login's read
      expect(await n3.checkMailbox()).toEqual([])
      expect([...shown.keys()].sort()).toEqual([...ids].sort())
      expect([...shown.values()].every(n => n === 1)).toBe(true)
      n2.removeEventListener('messages:offline', count)
      n3.removeEventListener('messages:offline', count)
    } finally {
      sets.remove = remove
    }
    // back as before: bob on n2
    await n3.logout()
    await n2.login('bob', PASSWORD)
  })

  it('a message shown live by the old session and sent again live to the new one (its ack came late) is shown once', async () => {
    // bob is on n2
    const bob = await n0.profile('bob')
    const alice = { username: 'alice', keys: n0.session!.account.keys }
    const where = (await n0.presenceOf('bob'))!
    const atN2 = collect(n2, 'message')
    const env = createEnvelope(DM_KIND, { text: 'late ack' }, alice, bob)
    expect(await internalsOf(n0).messenger.send(where.peerId, where.addrs, env)).toEqual({ delivered: true })
    expect(atN2.map(m => m.id)).toEqual([env.id])
    // bob logs in on n3; alice's outbox, its ack lost, sends the same envelope there
    const atN3 = collect(n3, 'message')
    await n3.login('bob', PASSWORD)
    const n3Addrs = n3.peer.multiaddrs.map(a => a.toString())
    expect(await internalsOf(n0).messenger.send(n3.peer.peerId.toString(), n3Addrs, env)).toEqual({ delivered: true })
    expect(atN3).toEqual([])
    expect((await n3.history('alice')).filter(m => m.id === env.id)).toHaveLength(1)
    await n3.logout()
    await n2.login('bob', PASSWORD)
  })

  it('shows the whole conversation, both directions, after logging in on another peer', async () => {
    // bob is on n2 now; alice moves from n0 to n3
    await n2.sendMessage('alice', 'back online')
    await n0.logout()
    await n3.login('alice', PASSWORD)
    const all = await n3.history('bob')
    // the burst test's 80 messages are all there (sent in the same milliseconds: history
    // orders those by id, not by the order of the calls); the rest, one by one
    const burst = all.filter(m => m.text.startsWith('burst '))
    expect(burst.map(m => m.text).sort()).toEqual(Array.from({ length: 80 }, (_, i) => `burst ${String(i).padStart(2, '0')}`))
    const history = all.filter(m => !m.text.startsWith('burst '))
    expect(history.map(m => [m.direction, m.from, m.text])).toEqual([
      ['out', 'alice', 'hello bob'],
      ['in', 'bob', 'hi alice'],
      ['out', 'alice', 'no lookup needed'],
      ['out', 'alice', 'one'],
      ['out', 'alice', 'two'],
      ['out', 'alice', 'three'],
      ['out', 'alice', 'four'],
      ['in', 'bob', 'back online']
    ])
    for (let i = 1; i < all.length; i++) expect(all[i]!.sentAt).toBeGreaterThanOrEqual(all[i - 1]!.sentAt)
    // bob's side, on the peer he moved to, has the same conversation mirrored
    // (bob also has the envelopes of alice's that carol, the lost-ack and the handover tests sent by hand)
    const bobs = (await n2.history('alice')).filter(m => !['pay 10', 'same peer', 'other peer', 'late ack'].includes(m.text) && !m.text.startsWith('burst ') && !m.text.startsWith('handover '))
    expect(bobs.map(m => [m.direction, m.text])).toEqual(history.map(m => [m.direction === 'in' ? 'out' : 'in', m.text]))
  })

  it('pages a long conversation in the DHT, each page far under the record limit, readable from any peer', async () => {
    // alice on n3, bob on n2: 24 messages of 4,000 characters do not fit one page
    const long = (i: number): string => `${i}:`.padEnd(4000, String.fromCharCode(97 + i % 26))
    for (let i = 0; i < 24; i++) expect((await n3.sendMessage('bob', long(i))).status).toBe('delivered')
    await n3.flush()
    const account = n3.session!.account
    const conv = conversationId(account.keys, (await n3.profile('bob')).keyId)
    const state = (await n3.peer.records.get<SealedPayload>(stateKey(account.keyId)))!
    const pages = openForOwner(state.payload.sealed, account.keys, privateStateSchema).history[conv]!.pages
    expect(pages).toBeGreaterThanOrEqual(3)
    for (let i = 0; i < pages; i++) {
      const page = await n3.peer.records.get(historyKey(account.keyId, conv, i))
      expect(page).toBeDefined()
      expect(page!.value.length).toBeLessThan(MAX_RECORD_BYTES / 2)
    }
    await n3.logout()
    await n0.login('alice', PASSWORD)
    const texts = (await n0.history('bob')).map(m => m.text)
    expect(texts.slice(-24)).toEqual(Array.from({ length: 24 }, (_, i) => long(i)))
  })
})
