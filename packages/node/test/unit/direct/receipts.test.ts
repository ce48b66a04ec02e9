/**
 * Receipts alone: the states of sent messages over an in-memory local store, real signed
 * and sealed `receipt` envelopes between real account keys, a recording dispatch.
 */
import { describe, it, expect, beforeEach } from 'vitest'
import { openEnvelope, receiptBodySchema, RECEIPT_KIND, MAX_RECEIPT_IDS, createEnvelope, type Envelope, type FriendEntry } from '@conf-chat/protocol'
import { defaultLogger } from '@libp2p/logger'
import { Receipts, type MessageStateChange } from '../../../src/chat/direct/index.js'
import type { Delivery } from '../../../src/delivery/index.js'
import { NotFriendError } from '../../../src/errors.js'
import { MemoryLocalStore } from '../fixtures/memory-local.js'
import { user, envelope, contextFrom, type TestUser } from '../friends/fixtures.js'

const alice = user('alice')
const bob = user('bob')
const carol = user('carol')
const entryOf = (u: TestUser): FriendEntry => ({ username: u.username, keyId: u.keyId, signPublic: u.keys.signPublic, boxPublic: u.keys.boxPublic, since: 1 })

let local: MemoryLocalStore
let changes: MessageStateChange[]
let sent: Envelope[]
let readReceipts: boolean
let dispatchResult: Delivery['status']

let toldInConferences: Array<{ conference: string, to: string, body: unknown }>

function receiptsOf (me: TestUser, friends: TestUser[]): Receipts {
  return new Receipts({
    conferenceReceipt: async (conference, to, body) => { toldInConferences.push({ conference, to, body }) },
    me: { keyId: me.keyId },
    local,
    friends: {
      friend: (username, signPublic) => {
        const f = friends.find(u => u.username === username)
        return f == null || (signPublic != null && !Buffer.from(signPublic).equals(f.keys.signPublic)) ? undefined : entryOf(f)
      },
      profileOf: f => friends.find(u => u.username === f.username)!.profile
    },
    keys: me.keys,
    seal: (kind, content, to) => createEnvelope(kind, content, { username: me.username, keys: me.keys }, to),
    dispatch: async env => {
      sent.push(env)
      return { id: env.id, status: dispatchResult, ...(dispatchResult === 'queued' ? { where: 'mailbox' as const } : {}) }
    },
    readReceipts: () => readReceipts,
    emit: (_type, detail) => { changes.push(detail) },
    logger: defaultLogger()
  })
}

/** bob's receipt to alice naming `ids`. */
const receipt = (state: 'delivered' | 'read', ids: string[], from = bob): Envelope => envelope(RECEIPT_KIND, { state, ids }, from, alice, Date.now())
const bodyOf = (env: Envelope, to: TestUser): unknown => openEnvelope(env, to.keys, receiptBodySchema)
const statesOf = (id: string): string[] => changes.filter(c => c.id === id).map(c => c.state)

let receipts: Receipts
const ID1 = 'mabc00001-00000000000000a1'
const ID2 = 'mabc00002-00000000000000a2'

beforeEach(() => {
  local = new MemoryLocalStore()
  changes = []
  sent = []
  readReceipts = true
  dispatchResult = 'delivered'
  toldInConferences = []
  receipts = receiptsOf(alice, [bob, carol])
})

describe('the states of a sent message', () => {
  it('go sending, queued in the mailbox, delivered and read, each told once, and the history sees the last', async () => {
    receipts.sending(entryOf(bob), ID1)
    await receipts.delivery(bob, ID1, { status: 'queued', where: 'mailbox' })
    await receipts.receive(receipt('delivered', [ID1]), contextFrom(bob, false))
    await receipts.receive(receipt('read', [ID1]), contextFrom(bob))
    expect(changes).toEqual([
      { id: ID1, to: 'bob', state: 'sending' },
      { id: ID1, to: 'bob', state: 'queued', where: 'mailbox' },
      { id: ID1, to: 'bob', state: 'delivered' },
      { id: ID1, to: 'bob', state: 'read' }
    ])
    expect((await receipts.states(bob.keyId)).get(ID1)).toEqual({ state: 'read' })
  })

  it('only move forward: a late delivered receipt or outbox report after read changes nothing', async () => {
    receipts.sending(entryOf(bob), ID1)
    await receipts.receive(receipt('read', [ID1]), contextFrom(bob))
    await receipts.receive(receipt('delivered', [ID1]), contextFrom(bob))
    await receipts.delivery(bob, ID1, { status: 'queued', where: 'outbox' })
    expect(statesOf(ID1)).toEqual(['sending', 'read'])
  })

  it('a message kept in the outbox, then put into the mailbox, is told queued twice, with where it waits', async () => {
    receipts.sending(entryOf(bob), ID1)
    await receipts.delivery(bob, ID1, { status: 'queued', where: 'outbox' })
    await receipts.delivery(bob, ID1, { status: 'queued', where: 'outbox' })
    await receipts.delivery(bob, ID1, { status: 'queued', where: 'mailbox' })
    expect(changes.map(c => c.where)).toEqual([undefined, 'outbox', 'mailbox'])
  })

  it('of a send a run left unfinished are written when the outbox sends it after a restart, and receipts then move it', async () => {
    receipts.sending(entryOf(bob), ID1) // the process ends here
    const later = receiptsOf(alice, [bob, carol])
    changes = []
    await later.delivery(bob, ID1, { status: 'delivered' })
    await later.receive(receipt('read', [ID1]), contextFrom(bob))
    expect(changes).toEqual([{ id: ID1, to: 'bob', state: 'delivered' }, { id: ID1, to: 'bob', state: 'read' }])
  })

  it('are kept across sessions: a receipt for a message sent before a restart still moves it', async () => {
    receipts.sending(entryOf(bob), ID1)
    await receipts.delivery(bob, ID1, { status: 'queued', where: 'mailbox' })
    await receipts.settled()
    const later = receiptsOf(alice, [bob, carol])
    changes = []
    await later.receive(receipt('read', [ID1]), contextFrom(bob))
    expect(changes).toEqual([{ id: ID1, to: 'bob', state: 'read' }])
    await later.settled()
    expect((await later.states(bob.keyId)).get(ID1)).toEqual({ state: 'read' })
  })

  it('of a message sent before a restart move forward only, also when receipts for it are handled at the same time', async () => {
    receipts.sending(entryOf(bob), ID1)
    await receipts.delivery(bob, ID1, { status: 'queued', where: 'mailbox' })
    await receipts.settled()
    const later = receiptsOf(alice, [bob, carol])
    changes = []
    // a mailbox read hands both over at once: read first, then the late delivered
    await Promise.all([
      later.receive(receipt('read', [ID1]), contextFrom(bob, false)),
      later.receive(receipt('delivered', [ID1]), contextFrom(bob, false))
    ])
    expect(changes).toEqual([{ id: ID1, to: 'bob', state: 'read' }])
    expect((await later.states(bob.keyId)).get(ID1)).toEqual({ state: 'read' })
    // on disk when the receipt's handling resolved
    expect(local.values.get(`/msgstate/${alice.keyId}/${bob.keyId}/${ID1}`)).toEqual({ state: 'read', to: 'bob' })
  })
})

describe('incoming receipts are checked', () => {
  it('an id this peer did not send to that friend (sent to carol, or unknown) changes and stores nothing', async () => {
    receipts.sending(entryOf(carol), ID1)
    await receipts.settled()
    const before = [...local.values.keys()].sort()
    changes = []
    await receipts.receive(receipt('read', [ID1, ID2]), contextFrom(bob))
    await receipts.settled()
    expect(changes).toEqual([])
    expect([...local.values.keys()].sort()).toEqual(before)
  })

  it('a receipt from someone who is not a friend, or under another key than the friend\'s, is refused (not-a-friend)', async () => {
    receipts = receiptsOf(alice, [bob])
    receipts.sending(entryOf(bob), ID1)
    const fromCarol = await receipts.receive(envelope(RECEIPT_KIND, { state: 'read', ids: [ID1] }, carol, alice, 1), contextFrom(carol)).catch(e => e)
    expect(fromCarol).toBeInstanceOf(NotFriendError)
    const forged = createEnvelope(RECEIPT_KIND, { state: 'read', ids: [ID1] }, { username: 'bob', keys: carol.keys }, alice.profile)
    const err = await receipts.receive(forged, contextFrom(bob)).catch(e => e)
    expect(err).toBeInstanceOf(NotFriendError)
    expect(statesOf(ID1)).toEqual(['sending'])
  })

  it('a receipt with more ids than MAX_RECEIPT_IDS, or an unknown state, is malformed', async () => {
    const ids = Array.from({ length: MAX_RECEIPT_IDS + 1 }, (_, i) => `mabc${String(i).padStart(5, '0')}-00000000000000a1`)
    await expect(receipts.receive(receipt('read', ids), contextFrom(bob))).rejects.toThrow(/malformed receipt/)
    await expect(receipts.receive(envelope(RECEIPT_KIND, { state: 'seen', ids: [ID1] }, bob, alice, 1), contextFrom(bob))).rejects.toThrow(/malformed receipt/)
  })
})

describe('receipts this peer sends', () => {
  it('what a mailbox read showed is told delivered once, in one receipt per sender', async () => {
    const bobs = receiptsOf(bob, [alice])
    bobs.shown(entryOf(alice), ID1, false)
    bobs.shown(entryOf(alice), ID2, false)
    bobs.shown(entryOf(alice), 'mabc00003-00000000000000a3', true) // live: acknowledged on its stream
    bobs.flushDelivered()
    bobs.flushDelivered()
    expect(sent).toHaveLength(1)
    expect(sent[0]).toMatchObject({ kind: RECEIPT_KIND, from: 'bob', to: 'alice' })
    expect(bodyOf(sent[0]!, alice)).toEqual({ state: 'delivered', ids: [ID1, ID2] })
  })

  it('opening the conversation tells read once what was shown, in receipts of at most MAX_RECEIPT_IDS ids', async () => {
    const bobs = receiptsOf(bob, [alice])
    const ids = Array.from({ length: MAX_RECEIPT_IDS + 4 }, (_, i) => `mabc${String(i).padStart(5, '0')}-00000000000000a1`)
    for (const id of ids) bobs.shown(entryOf(alice), id, true)
    expect(await bobs.markRead(entryOf(alice))).toBe(ids.length)
    expect(sent.map(e => (bodyOf(e, alice) as { ids: string[] }).ids.length)).toEqual([MAX_RECEIPT_IDS, 4])
    expect(sent.flatMap(e => (bodyOf(e, alice) as { ids: string[] }).ids).sort()).toEqual([...ids].sort())
    expect(await bobs.markRead(entryOf(alice))).toBe(0)
    expect(sent).toHaveLength(2)
  })

  it('with read receipts off, opening the conversation sends nothing, and switching them on later does not tell the old ones', async () => {
    const bobs = receiptsOf(bob, [alice])
    readReceipts = false
    bobs.shown(entryOf(alice), ID1, true)
    expect(await bobs.markRead(entryOf(alice))).toBe(0)
    readReceipts = true
    expect(await bobs.markRead(entryOf(alice))).toBe(0)
    expect(sent).toEqual([])
  })
})

describe('conference messages', () => {
  const dave = user('dave')
  const CONF = 'conf-00000000000000aa'
  it('a copy sent to a member who is not a friend moves with that member\'s receipts, and the events name the conference and message', async () => {
    receipts.sending({ keyId: dave.keyId, username: 'dave' }, ID1, { conference: CONF, mid: 'mid-1' })
    await receipts.delivery({ keyId: dave.keyId, username: 'dave' }, ID1, { status: 'delivered' })
    await receipts.receive(receipt('read', [ID1], dave), contextFrom(dave))
    expect(changes.map(c => [c.state, c.to, c.conference, c.mid])).toEqual([
      ['sending', 'dave', CONF, 'mid-1'], ['delivered', 'dave', CONF, 'mid-1'], ['read', 'dave', CONF, 'mid-1']
    ])
    // a stranger's receipt that names nothing sent to them is refused
    const err = await receipts.receive(receipt('read', [ID2], user('erin')), contextFrom(user('erin'))).catch(e => e)
    expect(err).toBeInstanceOf(NotFriendError)
  })

  it('opening a conference tells each sender of what it showed, and only that; a friend\'s chat does not take them', async () => {
    const bobs = receiptsOf(bob, [alice])
    bobs.shown(entryOf(alice), ID1, true, CONF)
    bobs.shown({ keyId: dave.keyId, username: 'dave' }, ID2, false, CONF)
    bobs.flushDelivered()
    expect(toldInConferences).toEqual([{ conference: CONF, to: dave.keyId, body: { state: 'delivered', ids: [ID2] } }])
    bobs.shown(entryOf(alice), 'mabc00003-00000000000000a3', true) // a direct message
    expect(await bobs.markRead(entryOf(alice))).toBe(1)
    expect(await bobs.markConferenceRead(CONF)).toBe(2)
    expect(toldInConferences.slice(1).sort((a, b) => a.to.localeCompare(b.to))).toEqual([
      { conference: CONF, to: alice.keyId, body: { state: 'read', ids: [ID1] } },
      { conference: CONF, to: dave.keyId, body: { state: 'read', ids: [ID2] } }
    ].sort((a, b) => a.to.localeCompare(b.to)))
    expect(await bobs.markConferenceRead(CONF)).toBe(0)
  })
})
