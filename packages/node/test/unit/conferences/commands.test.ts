/**
 * What a user does with conferences (create, invite, remove, leave, send, list, members,
 * history), each user's Conferences over in-memory components; the envelopes one user
 * dispatches are handed to the others' `receive` where a test needs them to arrive.
 */
import { describe, it, expect, beforeEach, vi } from 'vitest'
import {
  conferenceKey, conferenceWriterKeyId, signingKeysOf, keyIdOf, openEnvelope, confRecordBodySchema,
  CONF_INVITE_KIND, CONF_UPDATE_KIND, CONF_MESSAGE_KIND, CONF_LEAVE_KIND, type ConferencePayload, type VerifiedRecord
} from '@conf-chat/protocol'
import type { ConferenceInfo } from '../../../src/chat/conferences/index.js'
import { befriend, deliver, recipientsOf, world, T0, type TestUser, type TestWorld } from './fixtures.js'

const recordOf = (w: TestWorld, info: ConferenceInfo): VerifiedRecord<ConferencePayload> =>
  w.records.stored.get(info.key) as VerifiedRecord<ConferencePayload>

describe('conferences: commands', () => {
  let w: TestWorld
  let alice: TestUser, bob: TestUser, carol: TestUser, dave: TestUser
  beforeEach(() => {
    w = world()
    ;[alice, bob, carol, dave] = ['alice', 'bob', 'carol', 'dave'].map(n => w.user(n)) as [TestUser, TestUser, TestUser, TestUser]
    w.user('mallory') // registered, nobody's friend
    befriend(alice, bob)
    befriend(alice, carol)
    befriend(alice, dave)
  })

  /** alice's conference with bob and carol, the invites received. */
  async function team (): Promise<ConferenceInfo> {
    const { conference } = await alice.conferences.create('team', ['bob', 'carol'])
    for (const u of [bob, carol]) expect(await deliver(alice, u)).toEqual(['ok'])
    return conference
  }

  it('creates a conference with friends only; a non-friend or unknown name refuses it before anything is written or sent', async () => {
    await expect(alice.conferences.create('x', ['bob', 'mallory'])).rejects.toMatchObject({ name: 'NotFriendError', code: 'not-a-friend', message: 'not a friend: mallory' })
    await expect(alice.conferences.create('x', ['bob', 'nobody'])).rejects.toMatchObject({ name: 'UnknownUserError' })
    await expect(alice.conferences.create('x', [])).rejects.toMatchObject({ name: 'InvalidInputError' })
    await expect(alice.conferences.create('x', ['alice'])).rejects.toMatchObject({ name: 'InvalidInputError' })
    await expect(alice.conferences.create('  ', ['bob'])).rejects.toMatchObject({ name: 'InvalidInputError' })
    expect(w.records.stored.size).toBe(0)
    expect(alice.sent).toEqual([])
    expect(await alice.conferences.list()).toEqual([])

    const result = await alice.conferences.create(' team ', ['bob', 'carol', 'bob'])
    expect(result.usernames).toEqual(['bob', 'carol'])
    expect(result.conference).toMatchObject({ name: 'team', owner: 'alice', members: ['alice', 'bob', 'carol'], createdAt: T0 })
    expect(result.conference.id).toMatch(/^conf-[0-9a-f]{16}$/)
    expect(result.conference.key).toBe(conferenceKey(alice.account.keyId, result.conference.key.split('/')[3]!))
    expect(result.deliveries.map(d => d.username).sort()).toEqual(['bob', 'carol'])
    // the owner-signed record, version 1, with the members' pinned keys
    const record = recordOf(w, result.conference)
    expect(record.record.seq).toBe(1)
    expect(record.payload.members.map(m => [m.username, m.keyId])).toEqual([['alice', alice.account.keyId], ['bob', bob.account.keyId], ['carol', carol.account.keyId]])
    expect(recipientsOf(alice, CONF_INVITE_KIND)).toEqual(['bob', 'carol'])
    // the owner's own change tells no one here
    expect(alice.events).toEqual([])
    expect(await alice.conferences.list()).toEqual([{ ...result.conference, online: 1 }])
  })

  it('lets the owner invite and remove; a member who is not the owner gets NotConferenceOwnerError (not-owner)', async () => {
    const info = await team()
    befriend(bob, dave)
    await expect(bob.conferences.invite(info.id, ['dave'])).rejects.toMatchObject({ name: 'NotConferenceOwnerError', code: 'not-owner' })
    await expect(bob.conferences.remove(info.id, ['carol'])).rejects.toMatchObject({ name: 'NotConferenceOwnerError', code: 'not-owner' })
    expect(bob.sent).toEqual([])
    expect(recordOf(w, info).record.seq).toBe(1)
    await expect(alice.conferences.invite(info.id, ['bob'])).rejects.toMatchObject({ name: 'AlreadyConferenceMemberError' })
    await expect(alice.conferences.invite(info.id, ['mallory'])).rejects.toMatchObject({ name: 'NotFriendError', code: 'not-a-friend' })
    await expect(alice.conferences.remove(info.id, ['dave'])).rejects.toMatchObject({ name: 'NotConferenceMemberError' })

    let mark = alice.sent.length
    alice.clock.now = T0 + 10
    const invited = await alice.conferences.invite(info.id, ['dave'])
    expect(invited.conference.members).toEqual(['alice', 'bob', 'carol', 'dave'])
    expect(recordOf(w, info).record.seq).toBe(2)
    expect(recipientsOf(alice, CONF_INVITE_KIND, mark)).toEqual(['dave'])
    expect(recipientsOf(alice, CONF_UPDATE_KIND, mark)).toEqual(['bob', 'carol'])
    expect(await deliver(alice, bob, { since: mark })).toEqual(['ok'])
    expect(bob.emitted('conference:joined')).toEqual([expect.objectContaining({ usernames: ['dave'], by: 'alice' })])
    expect(await deliver(alice, dave, { since: mark })).toEqual(['ok'])
    expect(dave.emitted('conference:invited')).toEqual([expect.objectContaining({ by: 'alice', conference: expect.objectContaining({ id: info.id }) })])

    mark = alice.sent.length
    alice.clock.now = T0 + 20
    const removed = await alice.conferences.remove(info.id, ['carol'])
    expect(removed).toMatchObject({ usernames: ['carol'], conference: { members: ['alice', 'bob', 'dave'] } })
    const record = recordOf(w, info)
    expect(record.record.seq).toBe(3)
    expect(record.payload.left).toEqual([{ username: 'carol', keyId: carol.account.keyId, leftAt: T0 + 20, removed: true }])
    // the removed member hears it too
    expect(recipientsOf(alice, CONF_UPDATE_KIND, mark)).toEqual(['bob', 'carol', 'dave'])
    expect(await deliver(alice, carol, { since: mark })).toEqual(['ok'])
    expect(carol.emitted('conference:removed')).toEqual([expect.objectContaining({ you: true, by: 'alice', usernames: ['carol'] })])
    expect(await carol.conferences.list()).toEqual([])
    expect(await deliver(alice, bob, { since: mark })).toEqual(['ok'])
    expect(bob.emitted('conference:removed')).toEqual([expect.objectContaining({ you: false, usernames: ['carol'] })])
  })

  it('hands members the owner\'s writer key into each other\'s mailboxes, the one each mailbox\'s owner names; none to a removed member', async () => {
    const info = await team()
    const mark = bob.sent.length
    await bob.conferences.send(info.id, 'to carol, whom I do not know')
    const toCarol = bob.sent.slice(mark).find(e => e.to === 'carol')!
    const toAlice = bob.sent.slice(mark).find(e => e.to === 'alice')!
    // carol names alice's writer key into her mailbox (alice is her friend) before she hears of any conference
    const seed = bob.writers.get(toCarol.id)!
    expect(keyIdOf(signingKeysOf(seed).signPublic)).toBe(conferenceWriterKeyId(carol.account.keys, alice.account.boxPublic, alice.account.keyId, carol.account.keyId))
    // into the owner's mailbox a member writes under the pair key: no seed for it
    expect(bob.writers.has(toAlice.id)).toBe(false)
    // a removed member's update carries no seeds; the others' do
    const before = alice.sent.length
    await alice.conferences.remove(info.id, ['carol'])
    const updates = alice.sent.slice(before).filter(e => e.kind === CONF_UPDATE_KIND)
    const writersOf = (to: TestUser): Uint8Array | undefined => openEnvelope(updates.find(e => e.to === to.account.username)!, to.account.keys, confRecordBodySchema).writers
    expect(writersOf(carol)).toBeUndefined()
    expect(writersOf(bob)?.length).toBeGreaterThan(0)
  })

  it('sends one envelope to every other member, none to the sender, and keeps the message in the sender\'s history', async () => {
    const info = await team()
    const mark = bob.sent.length
    bob.clock.now = T0 + 5
    const result = await bob.conferences.send(info.id.slice(0, 9), 'hello team')
    expect(result).toMatchObject({ conference: info.id, sentAt: T0 + 5 })
    expect(result.deliveries.map(d => d.username).sort()).toEqual(['alice', 'carol'])
    expect(recipientsOf(bob, CONF_MESSAGE_KIND, mark)).toEqual(['alice', 'carol'])
    expect(new Set(bob.sent.slice(mark).map(e => e.sentAt))).toEqual(new Set([T0 + 5]))
    const history = await bob.conferences.history(info.id)
    expect(history.messages).toEqual([expect.objectContaining({ id: result.id, from: 'bob', text: 'hello team', direction: 'out', conference: { id: info.id, name: 'team' } })])

    expect(await deliver(bob, carol, { since: mark })).toEqual(['ok'])
    expect(carol.emitted('conference:message')).toEqual([expect.objectContaining({ id: result.id, from: 'bob', text: 'hello team', direction: 'in', live: true })])
    expect((await carol.conferences.history(info.id)).messages.map(m => [m.from, m.text])).toEqual([['bob', 'hello team']])
    await expect(bob.conferences.send(info.id, '')).rejects.toMatchObject({ name: 'InvalidInputError' })
    await expect(bob.conferences.send('conf-0123456789abcdef', 'hi')).rejects.toMatchObject({ name: 'UnknownConferenceError', code: 'unknown-conference' })
  })

  it('leave: every other member is told, the conference is gone from the list, and the owner writes the leave into the record', async () => {
    const info = await team()
    let mark = bob.sent.length
    bob.clock.now = T0 + 30
    const left = await bob.conferences.leave(info.id)
    expect(left.usernames).toEqual(['bob'])
    expect(left.deliveries.map(d => d.username).sort()).toEqual(['alice', 'carol'])
    expect(recipientsOf(bob, CONF_LEAVE_KIND, mark)).toEqual(['alice', 'carol'])
    expect(await bob.conferences.list()).toEqual([])
    await expect(bob.conferences.send(info.id, 'still here?')).rejects.toMatchObject({ name: 'UnknownConferenceError' })
    // what bob received while a member stays readable
    expect((await bob.conferences.history(info.id)).conference.id).toBe(info.id)

    mark = alice.sent.length
    alice.clock.now = T0 + 40
    expect(await deliver(bob, alice)).toEqual(['ok'])
    expect(alice.emitted('conference:left')).toEqual([expect.objectContaining({ username: 'bob', conference: expect.objectContaining({ members: ['alice', 'carol'] }) })])
    // written after the ack, in the background
    await vi.waitFor(() => { expect(recordOf(w, info).record.seq).toBe(2) })
    const record = recordOf(w, info)
    expect(record.payload.left).toEqual([{ username: 'bob', keyId: bob.account.keyId, leftAt: T0 + 30 }])
    expect(recipientsOf(alice, CONF_UPDATE_KIND, mark)).toEqual(['carol'])
    // a second copy of the leave changes nothing
    expect(await deliver(bob, alice)).toEqual(['ok'])
    expect(alice.emitted('conference:left')).toHaveLength(1)

    mark = alice.sent.length
    await alice.conferences.send(info.id, 'after bob left')
    expect(recipientsOf(alice, CONF_MESSAGE_KIND, mark)).toEqual(['carol'])
  })

  it('lists members with their online status, and finds a conference by a unique start of its id', async () => {
    const info = await team()
    alice.online.add(carol.account.keyId)
    expect(await alice.conferences.list()).toEqual([expect.objectContaining({ id: info.id, online: 2 })])
    const { members } = await alice.conferences.members(info.id.slice(5, 10))
    expect(members).toEqual([
      { username: 'alice', joinedAt: T0, owner: true, online: true },
      { username: 'bob', joinedAt: T0, owner: false, online: false },
      { username: 'carol', joinedAt: T0, owner: false, online: true }
    ])
    await expect(alice.conferences.members('not-an-id')).rejects.toMatchObject({ name: 'InvalidInputError' })
  })

  it('refreshAll reads every record again: a change missed while away is applied and told', async () => {
    const info = await team()
    alice.clock.now = T0 + 10
    await alice.conferences.invite(info.id, ['dave'])
    // bob never got the update envelope; the record in the DHT has it
    expect(bob.emitted('conference:joined')).toEqual([])
    await bob.conferences.refreshAll()
    expect(bob.emitted('conference:joined')).toEqual([expect.objectContaining({ usernames: ['dave'], by: 'alice' })])
    expect((await bob.conferences.members(info.id)).members.map(m => m.username)).toEqual(['alice', 'bob', 'carol', 'dave'])
  })
})
