/**
 * Conference envelopes arriving (`receive`, one handler per kind): invites, updates,
 * messages and leaves, live and from the mailbox, and the refusals a sender is told as
 * codes (not-a-member, not-owner, unknown-conference, not-a-friend).
 */
import { describe, it, expect, beforeEach, vi } from 'vitest'
import {
  createEnvelope, createSignedRecord, encodeSignedRecord, newEnvelopeId,
  CONF_MESSAGE_KIND, CONF_UPDATE_KIND, type ConferencePayload, type VerifiedRecord
} from '@conf-chat/protocol'
import { befriend, context, deliver, world, T0, type TestAccount, type TestUser, type TestWorld } from './fixtures.js'
import type { ConferenceInfo } from '../../../src/chat/conferences/index.js'
import { deferred } from '../friends/fixtures.js'

const refOf = (info: ConferenceInfo): { owner: string, local: string } => {
  const [, , owner, local] = info.key.split('/')
  return { owner: owner!, local: local! }
}

/** A conference message made by hand by `from` for `to`, sent at `at`: what any user can make. */
function message (from: TestAccount, to: TestAccount, info: ConferenceInfo, text: string, at: number): ReturnType<typeof createEnvelope> {
  return createEnvelope(CONF_MESSAGE_KIND, { conf: refOf(info), mid: newEnvelopeId(at), text }, { username: from.username, keys: from.keys }, to, at)
}

describe('conferences: envelopes in', () => {
  let w: TestWorld
  let alice: TestUser, bob: TestUser, carol: TestUser, mallory: TestUser
  let info: ConferenceInfo
  beforeEach(async () => {
    w = world()
    ;[alice, bob, carol, mallory] = ['alice', 'bob', 'carol', 'mallory'].map(n => w.user(n)) as [TestUser, TestUser, TestUser, TestUser]
    befriend(alice, bob)
    befriend(alice, carol)
    info = (await alice.conferences.create('team', ['bob', 'carol'])).conference
  })

  it('an invite puts the conference in the list and tells the user', async () => {
    expect(await bob.conferences.list()).toEqual([])
    expect(await deliver(alice, bob)).toEqual(['ok'])
    expect(bob.emitted('conference:invited')).toEqual([{ by: 'alice', conference: info }])
    expect(await bob.conferences.list()).toEqual([{ ...info, online: 1 }])
    // kept in the private state: it follows bob to any peer
    expect(bob.state.state.conferences).toEqual([expect.objectContaining({ id: info.id, seq: 1 })])
    // the same invite again changes nothing
    expect(await deliver(alice, bob)).toEqual(['ok'])
    expect(bob.emitted('conference:invited')).toHaveLength(1)
  })

  it('refuses an invite from someone who is not a friend (not-a-friend), and lists nothing', async () => {
    bob.friends.entries.delete('alice')
    const [result] = await deliver(alice, bob)
    expect(result).toMatchObject({ name: 'NotFriendError', code: 'not-a-friend' })
    expect(await bob.conferences.list()).toEqual([])
    expect(bob.events).toEqual([])
  })

  it('refuses a membership record sent by a member who is not the owner (not-owner)', async () => {
    expect(await deliver(alice, bob)).toEqual(['ok'])
    const held = w.records.stored.get(info.key) as VerifiedRecord<ConferencePayload>
    // carol passes on the owner's record: still refused, only the owner sends them
    const relayed = createEnvelope(CONF_UPDATE_KIND, { conf: refOf(info), record: held.value }, { username: 'carol', keys: carol.account.keys }, bob.account, T0 + 1)
    await expect(bob.conferences.receive(relayed, context(bob, carol.account))).rejects.toMatchObject({ name: 'NotConferenceOwnerError', code: 'not-owner' })
    // nor can carol make one in alice's name: the envelope's key is hers, not the owner's
    const forgedValue = encodeSignedRecord(createSignedRecord(info.key, 2, { ...held.payload, members: [] }, carol.account.keys))
    const forged = createEnvelope(CONF_UPDATE_KIND, { conf: refOf(info), record: forgedValue }, { username: 'alice', keys: carol.account.keys }, bob.account, T0 + 2)
    await expect(bob.conferences.receive(forged, context(bob, alice.account))).rejects.toMatchObject({ code: 'not-owner' })
    expect((await bob.conferences.list())[0]?.members).toEqual(['alice', 'bob', 'carol'])
  })

  it('refuses a message from a non-member (not-a-member), live and from the mailbox; nothing is shown or kept', async () => {
    expect(await deliver(alice, bob)).toEqual(['ok'])
    const env = message(mallory.account, bob.account, info, 'let me in', T0 + 1)
    const refusal = { name: 'NotConferenceMemberError', code: 'not-a-member', message: `not a member of ${info.id}: mallory` }
    await expect(bob.conferences.receive(env, context(bob, mallory.account, true))).rejects.toMatchObject(refusal)
    await expect(bob.conferences.receive(env, context(bob, mallory.account, false))).rejects.toMatchObject(refusal)
    // a sender not in the view makes bob read the record once (the update adding them may be late), not on every message
    expect(w.records.reads.filter(k => k === info.key)).toHaveLength(1)
    expect(bob.events.map(e => e.type)).toEqual(['conference:invited'])
    expect(bob.history.conversations.size).toBe(0)
  })

  it('a sender not in the view while the record cannot be read: refused as not-ready (passing), never not-a-member', async () => {
    expect(await deliver(alice, bob)).toEqual(['ok'])
    w.records.unknown = true
    const env = message(mallory.account, bob.account, info, 'am I in?', T0 + 1)
    await expect(bob.conferences.receive(env, context(bob, mallory.account, false))).rejects.toMatchObject({ name: 'UnknownRecordError', code: 'not-ready' })
    expect(bob.history.conversations.size).toBe(0)
  })

  it('a read that could not tell is no read: the same sender\'s next message reads the record again', async () => {
    expect(await deliver(alice, bob)).toEqual(['ok'])
    // alice adds mallory; the update has not reached bob, only the record has it
    befriend(alice, mallory)
    await alice.conferences.invite(info.id, ['mallory'])
    w.records.unknown = true
    await expect(bob.conferences.receive(message(mallory.account, bob.account, info, 'first', T0 + 1), context(bob, mallory.account, false)))
      .rejects.toMatchObject({ code: 'not-ready' })
    w.records.unknown = false
    // no time has passed: a throttle that counted the failed read would refuse this as not-a-member without reading
    await bob.conferences.receive(message(mallory.account, bob.account, info, 'second', T0 + 2), context(bob, mallory.account, false))
    // the read found mallory in the record: bob learns of the member and takes the message (from the mailbox: a messages:offline event)
    expect(bob.emitted('conference:joined')).toEqual([expect.objectContaining({ by: 'alice', usernames: ['mallory'] })])
    expect(bob.events.map(e => e.type)).toEqual(['conference:invited', 'conference:joined', 'messages:offline'])
  })

  it('refuses a message for a conference it does not know (unknown-conference)', async () => {
    const other = { ...info, key: `/cc-conf/${mallory.account.keyId}/0123456789abcdef` }
    const env = message(mallory.account, bob.account, other, 'hi', T0 + 1)
    await expect(bob.conferences.receive(env, context(bob, mallory.account))).rejects.toMatchObject({ name: 'UnknownConferenceError', code: 'unknown-conference' })
  })

  it('accepts a member\'s message sent before they left and refuses one sent after', async () => {
    for (const u of [bob, carol]) await deliver(alice, u)
    carol.clock.now = T0 + 50
    await carol.conferences.leave(info.id)
    expect(await deliver(carol, bob)).toEqual(['ok'])
    expect(bob.emitted('conference:left')).toEqual([expect.objectContaining({ username: 'carol' })])
    await bob.conferences.receive(message(carol.account, bob.account, info, 'before', T0 + 49), context(bob, carol.account))
    await expect(bob.conferences.receive(message(carol.account, bob.account, info, 'after', T0 + 50), context(bob, carol.account)))
      .rejects.toMatchObject({ code: 'not-a-member', message: `not a member of ${info.id}: carol` })
    expect(bob.emitted('conference:message').map(m => m.text)).toEqual(['before'])
  })

  it("the owner's ack of a leave waits for no DHT write: the leave is in its view at once, the record written after", async () => {
    for (const u of [bob, carol]) await deliver(alice, u)
    carol.clock.now = T0 + 50
    await carol.conferences.leave(info.id)
    // the DHT's writes stall: the owner's handling (its ack) must not wait for them
    let release = (): void => {}
    w.records.held = new Promise<void>(resolve => { release = resolve })
    expect(await deliver(carol, alice)).toEqual(['ok'])
    expect(alice.emitted('conference:left')).toEqual([expect.objectContaining({ username: 'carol' })])
    expect((await alice.conferences.list())[0]?.members).toEqual(['alice', 'bob'])
    const key = info.key
    expect(w.records.stored.get(key)?.record.seq).toBe(1)
    w.records.held = undefined
    release()
    await vi.waitFor(() => { expect(w.records.stored.get(key)?.record.seq).toBe(2) })
  })

  it('shows a message once when it arrives twice', async () => {
    await deliver(alice, bob)
    const env = message(carol.account, bob.account, info, 'once', T0 + 1)
    await Promise.all([
      bob.conferences.receive(env, context(bob, carol.account, true)),
      bob.conferences.receive(env, context(bob, carol.account, true))
    ])
    await bob.conferences.receive(env, context(bob, carol.account, false))
    expect(bob.emitted('conference:message').map(m => m.text)).toEqual(['once'])
    expect(bob.emitted('messages:offline')).toEqual([])
  })

  it('answers a copy that arrives while the first is handled only once the message is shown, and refuses it when the first fails', async () => {
    await deliver(alice, bob)
    const env = message(carol.account, bob.account, info, 'once', T0 + 1)
    let gate = deferred()
    bob.history.gate = gate.promise
    const first = bob.conferences.receive(env, context(bob, carol.account, false))
    await vi.waitFor(() => { expect(bob.history.appends).toBe(1) })
    // the sender's retry (its ack timed out) while the mailbox copy is being written
    const shownAtAnswer = bob.conferences.receive(env, context(bob, carol.account, true)).then(() => bob.emitted('messages:offline').length)
    // the retry's own work (in memory here) is done within this turn of the event loop
    await new Promise(resolve => setImmediate(resolve))
    gate.resolve()
    await first
    expect(await shownAtAnswer).toBe(1)

    const other = message(carol.account, bob.account, info, 'not kept', T0 + 2)
    gate = deferred()
    bob.history.gate = gate.promise.then(() => { throw new Error('disk full') })
    const copies = [false, true].map(live => bob.conferences.receive(other, context(bob, carol.account, live)).then(() => 'ok', (err: Error) => err.message))
    gate.resolve()
    // neither copy is acked: the sender keeps the message
    expect(await Promise.all(copies)).toEqual(['disk full', 'disk full'])
    expect(bob.emitted('conference:message')).toEqual([])
  })

  it('refuses for now, unshown, a message that arrives while the session ends: the account\'s next peer shows it', async () => {
    await deliver(alice, bob)
    bob.history.closing = true
    const err = await bob.conferences.receive(message(carol.account, bob.account, info, 'during the takeover', T0 + 1), context(bob, carol.account, true)).catch(e => e)
    expect(err).toMatchObject({ code: 'not-logged-in' })
    expect(bob.emitted('conference:message')).toEqual([])
  })

  it('collects mailbox messages in a batch, oldest first; outside a batch each one is told as messages:offline', async () => {
    await deliver(alice, bob)
    bob.conferences.beginBatch()
    const arrivals = [
      message(carol.account, bob.account, info, 'third', T0 + 30),
      message(alice.account, bob.account, info, 'first', T0 + 10),
      message(carol.account, bob.account, info, 'second', T0 + 20)
    ]
    for (const env of arrivals) {
      const from = env.from === 'alice' ? alice.account : carol.account
      await bob.conferences.receive(env, context(bob, from, false))
    }
    expect(bob.emitted('conference:message')).toEqual([])
    expect(bob.emitted('messages:offline')).toEqual([])
    const batch = bob.conferences.endBatch()
    expect(batch.map(m => [m.text, m.from, m.live])).toEqual([['first', 'alice', false], ['second', 'carol', false], ['third', 'carol', false]])
    expect(batch.every(m => m.conference.id === info.id && m.conference.name === 'team')).toBe(true)
    // kept as unshown, with their conference, until the read shows them
    expect([...bob.history.unshown.values()]).toEqual(batch.map(() => ({ conference: { id: info.id, name: 'team' } })))
    expect(bob.conferences.endBatch()).toEqual([])

    await bob.conferences.receive(message(carol.account, bob.account, info, 'later', T0 + 40), context(bob, carol.account, false))
    expect(bob.emitted('messages:offline')).toEqual([{ messages: [expect.objectContaining({ text: 'later', live: false })] }])
    expect(bob.history.unshown.size).toBe(3)
  })

  it('refuses an envelope of a kind it has no handler for', async () => {
    const env = createEnvelope('conf-nope', {}, { username: 'alice', keys: alice.account.keys }, bob.account, T0)
    await expect(bob.conferences.receive(env, context(bob, alice.account))).rejects.toMatchObject({ name: 'NotConferenceEnvelopeError', code: 'unknown-kind' })
  })
})
