/**
 * Conferences (issue 5) between real nodes on loopback: create with friends (one
 * offline), live fan-out, offline delivery at login on another peer, the same list from
 * any peer, invite later, leave, the owner removing a member, messages from non-members
 * and former members dropped, members chatting while the owner is offline, and a
 * conference of 20 members with 5 offline.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import {
  createEnvelope, createSignedRecord, mailboxItemOf, encodeSignedRecord, mailboxSetKey, newEnvelopeId, isSealedEnvelopeItem,
  mailboxWriterOf, conferenceWriterKeyId, conferenceEntrySchema, sealEnvelope, CONF_MESSAGE_KIND, type ConferencePayload
} from '@conf-chat/protocol'
import type { ChatNode, ConferenceInfo, ConferenceMessage } from '@conf-chat/node'
import { startChatNetwork, eventually, type ChatNetwork } from './helpers/chat.js'
import { collect, makeFriends, registerUser, PASSWORD } from './helpers/friends.js'
import { internalsOf } from './helpers/internals.js'

/** Little background traffic: presence refreshed every 20 s, no mailbox polling (reads are explicit). */
const QUIET = { mailboxPollMs: 0, presenceTtlMs: 60_000, presenceRefreshMs: 20_000 }

const texts = (list: Array<{ text: string }>): string[] => list.map(m => m.text)
const confTexts = (batches: Array<{ messages: Array<{ text: string }> }>, id: string): string[] =>
  batches.flatMap(b => b.messages.filter(m => (m as ConferenceMessage).conference?.id === id).map(m => m.text))
const refOf = (info: ConferenceInfo): { owner: string, local: string } => {
  const [, , owner, local] = info.key.split('/')
  return { owner: owner!, local: local! }
}

/** A conference message made by hand by `sender` (any user) for `to`, as a non-member would. */
async function forgedMessage (sender: ChatNode, to: string, info: ConferenceInfo, text: string): Promise<ReturnType<typeof createEnvelope>> {
  const account = sender.session!.account
  return createEnvelope(CONF_MESSAGE_KIND, { conf: refOf(info), mid: newEnvelopeId(), text },
    { username: account.username, keys: account.keys }, await sender.profile(to))
}

describe('conferences', () => {
  let net: ChatNetwork
  let n0: ChatNode, n1: ChatNode, n2: ChatNode, n3: ChatNode, n4: ChatNode, n5: ChatNode
  let team: ConferenceInfo
  /** dave's account (he registered on n3), for reading his mailbox as its owner. */
  let dave: NonNullable<ChatNode['session']>['account']
  beforeAll(async () => {
    net = await startChatNetwork(6, QUIET)
    ;[n0, n1, n2, n3, n4, n5] = net.nodes as [ChatNode, ChatNode, ChatNode, ChatNode, ChatNode, ChatNode]
    await registerUser(n5, 'mallory')
    await n5.logout()
    await Promise.all([registerUser(n0, 'alice'), registerUser(n1, 'bob'), registerUser(n2, 'carol'), registerUser(n3, 'dave'), registerUser(n4, 'erin')])
    await Promise.all([makeFriends(n0, n1), makeFriends(n0, n2), makeFriends(n0, n3), makeFriends(n0, n4)])
    dave = n3.session!.account
    // mallory: a user, but nobody's friend
    await n5.login('mallory', PASSWORD)
  }, 120_000)
  afterAll(async () => { await net?.cleanup() })

  it('refuses an unknown user or a non-friend with a clear error, and creates nothing', async () => {
    const invitedBob = collect(n1, 'conference:invited')
    await expect(n0.createConference('nope', ['bob', 'nobody-here'])).rejects.toMatchObject({ name: 'UnknownUserError', message: 'unknown user: nobody-here' })
    await expect(n0.createConference('nope', ['bob', 'mallory'])).rejects.toMatchObject({ name: 'NotFriendError', message: 'not a friend: mallory' })
    await expect(n0.createConference('nope', [])).rejects.toMatchObject({ name: 'InvalidInputError' })
    await expect(n0.createConference('  ', ['bob'])).rejects.toMatchObject({ name: 'InvalidInputError' })
    await expect(n0.createConference('nope', ['alice'])).rejects.toMatchObject({ name: 'InvalidInputError' })
    expect(await n0.conferences()).toEqual([])
    expect(await n0.queued()).toEqual([])
    await expect(n0.sendConferenceMessage('conf-0123456789abcdef', 'hi')).rejects.toMatchObject({ name: 'UnknownConferenceError' })
    expect(invitedBob).toEqual([])
  })

  it('creates a conference with three friends, one offline: the online ones are told and get messages live', async () => {
    await n3.logout()
    const invited = [collect(n1, 'conference:invited'), collect(n2, 'conference:invited')]
    const live = [collect(n1, 'conference:message'), collect(n2, 'conference:message')]
    const created = await n0.createConference('team', ['bob', 'carol', 'dave'])
    team = created.conference
    expect(team).toMatchObject({ name: 'team', owner: 'alice', members: ['alice', 'bob', 'carol', 'dave'] })
    expect(team.id).toMatch(/^conf-[0-9a-f]{16}$/)
    expect(created.usernames).toEqual(['bob', 'carol', 'dave'])
    const how = Object.fromEntries(created.deliveries.map(d => [d.username, d.delivery.where]))
    expect(how).toEqual({ bob: 'live', carol: 'live', dave: 'mailbox' })
    // delivered means acknowledged: the invitee's peer has told its user
    for (const list of invited) expect(list).toEqual([expect.objectContaining({ by: 'alice', conference: expect.objectContaining({ id: team.id, name: 'team' }) })])

    const sent = await n0.sendConferenceMessage(team.id, 'hello team')
    expect(Object.fromEntries(sent.deliveries.map(d => [d.username, d.delivery.where]))).toEqual({ bob: 'live', carol: 'live', dave: 'mailbox' })
    for (const list of live) {
      expect(list).toEqual([expect.objectContaining({ id: sent.id, from: 'alice', text: 'hello team', live: true, conference: { id: team.id, name: 'team' } })])
    }
    // a member (not the owner) sends to all, the owner included; a unique start of the id will do
    const reply = await n1.sendConferenceMessage(team.id.slice(0, 9), 'hi from bob')
    expect(reply.deliveries.map(d => d.username).sort()).toEqual(['alice', 'carol', 'dave'])
    await eventually(() => live[1]!.length === 2)
    expect(texts(live[1]!)).toEqual(['hello team', 'hi from bob'])
    expect(texts(live[0]!)).toEqual(['hello team'])
    // dave has not read the invite and does not know bob: bob's copy waits sealed under
    // alice's writer key, which dave's list names because alice is his friend
    const toDave = reply.deliveries.find(d => d.username === 'dave')!.delivery
    expect(toDave).toMatchObject({ status: 'queued', where: 'mailbox' })
    const held = (await n1.peer.sets.list(mailboxSetKey(dave.keyId), { readAs: dave.keys })).filter(i => i.id === toDave.id)
    expect(held).toHaveLength(1)
    expect(isSealedEnvelopeItem(held[0]!)).toBe(true)
    const alice = n0.session!.account
    expect(mailboxWriterOf(held[0]!)).toBe(conferenceWriterKeyId(dave.keys, alice.keys.boxPublic, alice.keyId, dave.keyId))
  })

  it('gives the offline member the invite and the messages at login on another peer, in order, once each', async () => {
    const invited = collect(n5, 'conference:invited')
    const offline = collect(n5, 'messages:offline')
    const live = collect(n5, 'conference:message')
    await n5.logout()
    await n5.login('dave', PASSWORD)
    await eventually(() => offline.length > 0 && invited.length > 0)
    expect(invited).toEqual([expect.objectContaining({ by: 'alice', conference: expect.objectContaining({ id: team.id }) })])
    expect(offline).toHaveLength(1)
    expect(offline[0]!.messages.map(m => [m.from, m.text])).toEqual([['alice', 'hello team'], ['bob', 'hi from bob']])
    expect(offline[0]!.messages.every(m => (m as ConferenceMessage).conference?.id === team.id && !m.live)).toBe(true)
    // removed from the mailbox: nothing again
    expect(await n5.checkMailbox()).toEqual([])
    expect(live).toEqual([])
    const history = await n5.conferenceHistory(team.id)
    expect(history.messages.map(m => [m.from, m.text])).toEqual([['alice', 'hello team'], ['bob', 'hi from bob']])
  })

  it('leaves a member\'s message for a member who is not their friend sealed: holders see neither sender nor kind', async () => {
    await n5.logout()
    await eventually(async () => (await n1.presenceOf('dave'))?.online === false)
    const sent = await n1.sendConferenceMessage(team.id, 'sealed for dave')
    const toDave = sent.deliveries.find(d => d.username === 'dave')!.delivery
    expect(toDave).toMatchObject({ status: 'queued', where: 'mailbox' })
    const held = (await n5.peer.sets.list(mailboxSetKey(dave.keyId), { readAs: dave.keys })).filter(i => i.id === toDave.id)
    expect(held).toHaveLength(1)
    expect(isSealedEnvelopeItem(held[0]!)).toBe(true)
    expect(mailboxWriterOf(held[0]!)).not.toBe(n1.session!.account.keyId)
    const offline = collect(n5, 'messages:offline')
    await n5.login('dave', PASSWORD)
    await eventually(() => offline.length > 0)
    expect(confTexts(offline, team.id)).toEqual(['sealed for dave'])
  })

  it('lists the same conference from any peer, with members and online count', async () => {
    const expected = { id: team.id, name: 'team', owner: 'alice', members: ['alice', 'bob', 'carol', 'dave'], online: 4 }
    expect(await n0.conferences()).toEqual([expect.objectContaining(expected)])
    expect(await n5.conferences()).toEqual([expect.objectContaining(expected)])
    // bob moves to another peer: his conferences and history follow him
    await n1.flush()
    await n1.logout()
    await n3.login('bob', PASSWORD)
    expect(await n3.conferences()).toEqual([expect.objectContaining(expected)])
    expect(texts((await n3.conferenceHistory(team.id)).messages)).toEqual(['hello team', 'hi from bob', 'sealed for dave'])
    const members = await n3.conferenceMembers(team.id)
    expect(members.members).toEqual([
      expect.objectContaining({ username: 'alice', owner: true, online: true }),
      expect.objectContaining({ username: 'bob', owner: false, online: true }),
      expect.objectContaining({ username: 'carol', online: true }),
      expect.objectContaining({ username: 'dave', online: true })
    ])
  })

  it('keeps the membership in the owner-signed record; nobody else can write it', async () => {
    const record = await n2.peer.records.get<ConferencePayload>(team.key)
    expect(record?.payload.members.map(m => m.username)).toEqual(['alice', 'bob', 'carol', 'dave'])
    const forged = createSignedRecord(team.key, (record?.record.seq ?? 0) + 1, { ...record!.payload, members: [] }, n5.session!.account.keys)
    await expect(n5.peer.records.put(team.key, encodeSignedRecord(forged))).rejects.toMatchObject({ name: 'InvalidRecordError' })
  })

  it('invites later: the new member is told, the others see who joined, and only later messages reach them', async () => {
    const invited = collect(n4, 'conference:invited')
    const joined = [collect(n2, 'conference:joined'), collect(n3, 'conference:joined'), collect(n5, 'conference:joined')]
    const live = collect(n4, 'conference:message')
    await expect(n3.inviteToConference(team.id, ['erin'])).rejects.toMatchObject({ name: 'NotConferenceOwnerError' })
    await expect(n0.inviteToConference(team.id, ['bob'])).rejects.toMatchObject({ name: 'AlreadyConferenceMemberError' })
    await expect(n0.inviteToConference(team.id, ['mallory'])).rejects.toMatchObject({ name: 'NotFriendError' })
    const result = await n0.inviteToConference(team.id, ['erin'])
    expect(result.conference.members).toEqual(['alice', 'bob', 'carol', 'dave', 'erin'])
    expect(invited).toEqual([expect.objectContaining({ by: 'alice', conference: expect.objectContaining({ id: team.id, members: ['alice', 'bob', 'carol', 'dave', 'erin'] }) })])
    await eventually(() => joined.every(list => list.length === 1))
    for (const list of joined) expect(list).toEqual([expect.objectContaining({ usernames: ['erin'], by: 'alice' })])

    const sent = await n3.sendConferenceMessage(team.id, 'welcome erin')
    expect(sent.deliveries.map(d => d.username).sort()).toEqual(['alice', 'carol', 'dave', 'erin'])
    await eventually(() => live.length === 1)
    expect(live[0]).toMatchObject({ from: 'bob', text: 'welcome erin' })
    expect(texts((await n4.conferenceHistory(team.id)).messages)).toEqual(['welcome erin'])
  })

  it('leave: the others are told, and the leaver gets nothing sent afterwards', async () => {
    const left = [n0, n3, n4, n5].map(n => collect(n, 'conference:left'))
    const atCarol = collect(n2, 'conference:message')
    const result = await n2.leaveConference(team.id)
    expect(result.deliveries.map(d => d.username).sort()).toEqual(['alice', 'bob', 'dave', 'erin'])
    await eventually(() => left.every(list => list.length >= 1))
    for (const list of left) expect(list).toEqual([expect.objectContaining({ username: 'carol', conference: expect.objectContaining({ id: team.id }) })])
    expect(await n2.conferences()).toEqual([])
    await expect(n2.sendConferenceMessage(team.id, 'still here?')).rejects.toMatchObject({ name: 'UnknownConferenceError' })

    const sent = await n0.sendConferenceMessage(team.id, 'after carol left')
    expect(sent.deliveries.map(d => d.username).sort()).toEqual(['bob', 'dave', 'erin'])
    // the owner wrote the leave into the record; members see it from any peer
    await eventually(async () => (await n4.peer.records.get<ConferencePayload>(team.key))?.payload.left.some(l => l.username === 'carol'))
    expect((await n5.conferenceMembers(team.id)).members.map(m => m.username)).toEqual(['alice', 'bob', 'dave', 'erin'])
    expect(atCarol).toEqual([])
    // carol's history keeps what she received while a member
    expect(texts((await n2.conferenceHistory(team.id)).messages)).toEqual(['hello team', 'hi from bob', 'sealed for dave', 'welcome erin'])
  })

  it('drops messages from a non-member and from a former member, live and from the mailbox', async () => {
    const refused = collect(n3, 'envelope:refused')
    const atBob = collect(n3, 'conference:message')
    const bobAt = (await n5.presenceOf('bob'))!
    // mallory never was a member (she logs in on the peer bob left)
    await n1.login('mallory', PASSWORD)
    const fromMallory = await forgedMessage(n1, 'bob', team, 'let me in')
    expect(await internalsOf(n1).messenger.send(bobAt.peerId, bobAt.addrs, fromMallory)).toEqual({ delivered: false, code: 'not-a-member', final: true, reason: `not a member of ${team.id}: mallory` })
    // carol left; her signed message now is refused live ...
    const fromCarol = await forgedMessage(n2, 'bob', team, 'i am back')
    expect(await internalsOf(n2).messenger.send(bobAt.peerId, bobAt.addrs, fromCarol)).toEqual({ delivered: false, code: 'not-a-member', final: true, reason: `not a member of ${team.id}: carol` })
    // ... in the open, holders refuse it: a stranger to bob leaves friend requests only
    const open = await forgedMessage(n2, 'bob', team, 'in the open')
    await expect(n2.peer.sets.add(mailboxSetKey(open.toKeyId), [mailboxItemOf(open)]))
      .rejects.toSatisfy((err: any) => err.name === 'SetWriteError' && err.refusedEverywhere(open.id, 'not-listed') === true)
    // ... sealed with alice's writer key into bob's mailbox, which she still holds, holders
    // take it (it is a listed key) and bob's peer drops it
    const entry = conferenceEntrySchema.parse(internalsOf(n2).messaging.active!.state.state.conferences.find(c => (c as { id: string }).id === team.id))
    const bobs = entry.members.find(m => m.username === 'bob')!
    expect(bobs.writer).toBeInstanceOf(Uint8Array)
    const queued = await forgedMessage(n2, 'bob', team, 'via the mailbox')
    const carol = n2.session!.account
    await n2.peer.sets.add(mailboxSetKey(queued.toKeyId), [sealEnvelope(queued, carol.keys, bobs.boxPublic!, bobs.writer)!])
    expect(await n3.checkMailbox()).toEqual([])
    expect(refused.map(r => [r.from, r.live, r.reason])).toEqual([
      ['mallory', true, `not a member of ${team.id}: mallory`],
      ['carol', true, `not a member of ${team.id}: carol`],
      ['carol', false, `not a member of ${team.id}: carol`]
    ])
    expect(atBob).toEqual([])
    // the refused item was removed from the mailbox: it is not read again
    expect(await n3.checkMailbox()).toEqual([])
    expect(refused).toHaveLength(3)
  })

  it('the owner removes a member: they are told, and their messages are dropped', async () => {
    const removedErin = collect(n4, 'conference:removed')
    const removedBob = collect(n3, 'conference:removed')
    const result = await n0.removeFromConference(team.id, ['erin'])
    expect(result.conference.members).toEqual(['alice', 'bob', 'dave'])
    await eventually(() => removedErin.length === 1 && removedBob.length === 1)
    expect(removedErin[0]).toMatchObject({ you: true, by: 'alice', usernames: ['erin'] })
    expect(removedBob[0]).toMatchObject({ you: false, by: 'alice', usernames: ['erin'] })
    expect(await n4.conferences()).toEqual([])
    const bobAt = (await n4.presenceOf('bob'))!
    const fromErin = await forgedMessage(n4, 'bob', team, 'one more')
    expect(await internalsOf(n4).messenger.send(bobAt.peerId, bobAt.addrs, fromErin)).toEqual({ delivered: false, code: 'not-a-member', final: true, reason: `not a member of ${team.id}: erin` })
  })

  it('works while the owner is offline: members chat, a member leaves, the owner catches up at login', async () => {
    await n0.logout()
    const atDave = collect(n5, 'conference:message')
    const atBob = collect(n3, 'conference:message')
    const sent = await n3.sendConferenceMessage(team.id, 'while alice is away')
    expect(Object.fromEntries(sent.deliveries.map(d => [d.username, d.delivery.where]))).toEqual({ alice: 'mailbox', dave: 'live' })
    await eventually(() => atDave.length === 1)
    await n5.sendConferenceMessage(team.id, 'dave answers')
    await eventually(() => atBob.length === 1)
    expect(texts(atDave)).toEqual(['while alice is away'])
    expect(texts(atBob)).toEqual(['dave answers'])
    const leftAtBob = collect(n3, 'conference:left')
    await n5.leaveConference(team.id)
    await eventually(() => leftAtBob.length === 1)
    expect((await n3.conferenceMembers(team.id)).members.map(m => m.username)).toEqual(['alice', 'bob'])

    const offline = collect(n0, 'messages:offline')
    const left = collect(n0, 'conference:left')
    await n0.login('alice', PASSWORD)
    await eventually(() => offline.length > 0 && left.length > 0)
    expect(confTexts(offline, team.id)).toEqual(['while alice is away', 'dave answers'])
    expect(left).toEqual([expect.objectContaining({ username: 'dave' })])
    expect((await n0.conferences())[0]?.members).toEqual(['alice', 'bob'])
    // the owner wrote dave's leave into the record
    await eventually(async () => (await n3.peer.records.get<ConferencePayload>(team.key))?.payload.left.some(l => l.username === 'dave'))
    expect(texts((await n0.conferenceHistory(team.id)).messages)).toEqual([
      'hello team', 'hi from bob', 'sealed for dave', 'welcome erin', 'after carol left', 'while alice is away', 'dave answers'
    ])
  })
})

describe('a conference of 20 members, 5 of them offline', () => {
  let net: ChatNetwork
  let users: ChatNode[]
  const names = Array.from({ length: 20 }, (_, i) => `member${String(i).padStart(2, '0')}`)
  beforeAll(async () => {
    // the supernode and 3 DHT servers hold records and mailboxes; the 20 users' peers are
    // DHT clients, so that 24 nodes in one process on 2 shared cores stay quick (with 20
    // more servers every put and get waits on all of them; the conference path is the same)
    net = await startChatNetwork(3, QUIET)
    users = []
    for (let i = 0; i < 20; i++) users.push(await net.addNode({ clientMode: true }))
    // a few at a time: twenty registrations at once in one process overload the directory's holders
    for (let i = 0; i < 20; i += 4) await Promise.all(users.slice(i, i + 4).map(async (node, j) => { await registerUser(node, names[i + j]!) }))
    for (let i = 1; i < 20; i += 5) await Promise.all(users.slice(i, i + 5).map(async node => { await makeFriends(users[0]!, node) }))
  }, 150_000)
  afterAll(async () => { await net?.cleanup() })

  it('reaches the 14 online members and the 5 offline ones at login, once each, in order', async () => {
    const [owner, ...members] = users as [ChatNode, ...ChatNode[]]
    const offlineNodes = members.slice(14)
    const onlineNodes = members.slice(0, 14)
    await Promise.all(offlineNodes.map(async n => { await n.logout() }))
    const live = onlineNodes.map(n => collect(n, 'conference:message'))
    const invited = onlineNodes.map(n => collect(n, 'conference:invited'))
    const fromMailbox = onlineNodes.map(n => collect(n, 'messages:offline'))
    // what an online member got: live, or (when the sender could not read its presence in
    // time, as on a loaded machine) from its mailbox at the next check
    const received = (i: number): string[] => [...texts(live[i]!), ...confTexts(fromMailbox[i]!, id)].sort()

    const created = await owner.createConference('twenty', names.slice(1))
    const id = created.conference.id
    expect(created.conference.members).toEqual(names)
    const where = (d: Array<{ delivery: { where?: string } }>): Record<string, number> =>
      d.reduce<Record<string, number>>((acc, x) => { acc[x.delivery.where ?? 'failed'] = (acc[x.delivery.where ?? 'failed'] ?? 0) + 1; return acc }, {})
    const reachedAll = (d: Array<{ delivery: { where?: string, status?: string } }>): void => {
      expect(d).toHaveLength(19)
      expect(where(d).failed ?? 0).toBe(0)
    }
    reachedAll(created.deliveries)

    const first = await owner.sendConferenceMessage(id, 'one from the owner')
    reachedAll(first.deliveries)
    const second = await onlineNodes[3]!.sendConferenceMessage(id, 'two from a member')
    reachedAll(second.deliveries)
    // the offline members' copies can only have gone to their mailboxes
    expect(where(second.deliveries).mailbox ?? 0).toBeGreaterThanOrEqual(5)
    await Promise.all(onlineNodes.map(async n => await n.checkMailbox()))
    await eventually(() => onlineNodes.every((_, i) => received(i).length === (i === 3 ? 1 : 2)), 60_000)
    onlineNodes.forEach((_, i) => {
      expect(received(i)).toEqual(i === 3 ? ['one from the owner'] : ['one from the owner', 'two from a member'])
    })
    await eventually(() => invited.every(list => list.length === 1), 60_000)

    const offline = offlineNodes.map(n => collect(n, 'messages:offline'))
    const late = offlineNodes.map(n => collect(n, 'conference:invited'))
    await Promise.all(offlineNodes.map(async (n, i) => { await n.login(names[15 + i]!, PASSWORD) }))
    await eventually(() => offline.every(list => list.length > 0) && late.every(list => list.length > 0), 60_000)
    for (let i = 0; i < 5; i++) {
      expect(late[i]).toEqual([expect.objectContaining({ by: names[0], conference: expect.objectContaining({ id }) })])
      expect(confTexts(offline[i]!, id)).toEqual(['one from the owner', 'two from a member'])
    }
    // and they answer: everyone online has it
    const reply = await offlineNodes[0]!.sendConferenceMessage(id, 'three from a late member')
    reachedAll(reply.deliveries)
    await Promise.all(onlineNodes.map(async n => await n.checkMailbox()))
    await eventually(() => onlineNodes.every((_, i) => received(i).includes('three from a late member')), 60_000)
    expect(await offlineNodes[4]!.conferences()).toEqual([expect.objectContaining({ id, members: names, online: 20 })])
  }, 150_000)
})
