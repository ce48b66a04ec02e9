/**
 * DirectMessages alone: real Friends over an in-memory private state, an in-memory
 * history, real signed and sealed `dm` envelopes, a recording dispatch.
 */
import { describe, it, expect, beforeEach } from 'vitest'
import { createEnvelope, DM_KIND, RECEIPT_KIND, openEnvelope, dmBodySchema, receiptBodySchema, type Envelope, type HistoryEntry } from '@conf-chat/protocol'
import { defaultLogger } from '@libp2p/logger'
import { Friends } from '../../../src/chat/friends/index.js'
import { DirectMessages, Receipts, type IncomingMessage } from '../../../src/chat/direct/index.js'
import { MemoryLocalStore } from '../fixtures/memory-local.js'
import { IncompleteHistoryError } from '../../../src/chat/history.js'
import { NotFriendError } from '../../../src/errors.js'
import type { Delivery } from '../../../src/delivery/index.js'
import {
  user, envelope, contextFrom, deferred, MemoryState, recordingDeliver, recordingEmit, profiles,
  type Emitted
} from '../friends/fixtures.js'

const alice = user('alice')
const bob = user('bob')
const carol = user('carol')

/** A conversation store in memory; `gate`, when set, holds every `knows`/`has` until released. */
class MemoryHistory {
  readonly entries = new Map<string, HistoryEntry[]>()
  gate?: Promise<void>
  /** True once the session is ending: appends keep nothing for the pages. */
  closing = false
  /** When set, appends fail with it. */
  appendError?: Error
  /** Pages the next list says it could not read. */
  unreadPages = 0
  /** Ids appended as not shown yet (shown at the end of a mailbox read). */
  readonly unshown = new Set<string>()
  async append (otherKeyId: string, entry: HistoryEntry, _isNew?: boolean, unshown?: object): Promise<boolean> {
    if (this.appendError != null) throw this.appendError
    if (this.closing) return false
    if (unshown != null) this.unshown.add(entry.id)
    const list = this.entries.get(otherKeyId) ?? []
    if (!list.some(e => e.id === entry.id)) list.push(entry)
    this.entries.set(otherKeyId, list)
    return true
  }

  async knows (otherKeyId: string, id: string): Promise<boolean> {
    await this.gate
    return this.entries.get(otherKeyId)?.some(e => e.id === id) ?? false
  }

  async has (otherKeyId: string, id: string): Promise<boolean> {
    return await this.knows(otherKeyId, id)
  }

  async list (otherKeyId: string): Promise<HistoryEntry[]> {
    const entries = [...this.entries.get(otherKeyId) ?? []].sort((a, b) => a.sentAt - b.sentAt)
    if (this.unreadPages > 0) throw new IncompleteHistoryError(entries, this.unreadPages)
    return entries
  }
}

let history: MemoryHistory
let state: MemoryState
let events: Emitted[]
let dispatched: Array<{ envelope: Envelope, signal?: AbortSignal }>
let dms: DirectMessages
let receipts: Receipts

beforeEach(() => {
  state = new MemoryState()
  state.state.friends.push({ username: 'bob', keyId: bob.keyId, signPublic: bob.keys.signPublic, boxPublic: bob.keys.boxPublic, since: 1 })
  const e = recordingEmit()
  events = e.events
  history = new MemoryHistory()
  dispatched = []
  const friends = new Friends({
    state,
    me: { username: 'alice', keyId: alice.keyId },
    keys: alice.keys,
    profile: profiles(bob, carol),
    presenceOf: async () => undefined,
    deliver: recordingDeliver().deliver,
    onFriend: () => {},
    emit: () => {}
  })
  const seal = (kind: string, content: unknown, to: Parameters<typeof createEnvelope>[3]): Envelope => createEnvelope(kind, content, { username: 'alice', keys: alice.keys }, to, 500)
  const dispatch = async (env: Envelope, options?: { signal?: AbortSignal }): Promise<Delivery> => {
    dispatched.push({ envelope: env, ...(options?.signal != null ? { signal: options.signal } : {}) })
    return { id: env.id, status: 'delivered', where: 'live' }
  }
  receipts = new Receipts({
    me: { keyId: alice.keyId },
    local: new MemoryLocalStore(),
    friends,
    keys: alice.keys,
    seal,
    dispatch,
    readReceipts: () => true,
    emit: e.emit,
    logger: defaultLogger()
  })
  dms = new DirectMessages({
    me: { username: 'alice', keyId: alice.keyId },
    keys: alice.keys,
    friends,
    history,
    receipts,
    profile: profiles(bob, carol),
    seal,
    dispatch,
    emit: e.emit,
    logger: defaultLogger()
  })
})

const dm = (text: string, sentAt: number, from = bob): Envelope => envelope(DM_KIND, { text }, from, alice, sentAt)

describe('direct messages', () => {
  it('send to a friend seals the text to them, dispatches it with the caller\'s signal and keeps it in the history', async () => {
    const signal = new AbortController().signal
    const delivery = await dms.send('bob', 'hi bob', { signal })
    expect(dispatched).toHaveLength(1)
    const sent = dispatched[0]!
    expect(delivery).toEqual({ id: sent.envelope.id, status: 'delivered', where: 'live' })
    expect(sent.signal).toBe(signal)
    expect(sent.envelope).toMatchObject({ kind: DM_KIND, from: 'alice', to: 'bob', toKeyId: bob.keyId })
    expect(openEnvelope(sent.envelope, bob.keys, dmBodySchema)).toEqual({ text: 'hi bob' })
    expect(await dms.history('bob')).toEqual([{ id: sent.envelope.id, from: 'alice', to: 'bob', text: 'hi bob', sentAt: 500, direction: 'out', state: 'delivered' }])
    expect(events.filter(e => e.type === 'message:state').map(e => (e.detail as { state: string }).state)).toEqual(['sending', 'delivered'])
  })

  it('a history with pages the network could not read gives what is known, as messages, and how many pages are missing', async () => {
    const sent = await dms.send('bob', 'hi bob')
    history.unreadPages = 2
    const err = await dms.history('bob').catch(e => e)
    expect(err).toBeInstanceOf(IncompleteHistoryError)
    expect(err.unreadPages).toBe(2)
    expect(err.entries).toEqual([{ id: sent.id, from: 'alice', to: 'bob', text: 'hi bob', sentAt: 500, direction: 'out', state: 'delivered' }])
  })

  it('send to a non-friend is refused with NotFriendError (code not-a-friend) and nothing goes out', async () => {
    const err = await dms.send('carol', 'hi').catch(e => e)
    expect(err).toBeInstanceOf(NotFriendError)
    expect(err.code).toBe('not-a-friend')
    expect(dispatched).toEqual([])
    expect(history.entries.size).toBe(0)
  })

  it('a live dm from a friend goes to the history and is shown once, even when it arrives twice at once', async () => {
    const env = dm('hello', 100)
    const gate = deferred()
    history.gate = gate.promise
    // both copies are under way (live and from the mailbox) before either has looked at the history
    const both = Promise.all([dms.receive(env, contextFrom(bob, true)), dms.receive(env, contextFrom(bob, true))])
    gate.resolve()
    await both
    expect(events).toEqual([{ type: 'message', detail: { id: env.id, from: 'bob', to: 'alice', text: 'hello', sentAt: 100, direction: 'in', live: true } }])
    expect(history.entries.get(bob.keyId)).toEqual([{ id: env.id, from: 'bob', to: 'alice', text: 'hello', sentAt: 100 }])
    // a later copy is known by the history
    await dms.receive(env, contextFrom(bob, false))
    expect(events).toHaveLength(1)
  })

  it('a copy that arrives while the first is handled is answered only once the message is shown, and refused when the first fails', async () => {
    const env = dm('hello', 100)
    let gate = deferred()
    history.gate = gate.promise
    const first = dms.receive(env, contextFrom(bob, false))
    // the sender's retry after its ack timed out: acked only once the message is shown
    const shownAtAnswer = dms.receive(env, contextFrom(bob, true)).then(() => events.length)
    // both copies' own work (in memory here) is done within this turn of the event loop
    await new Promise(resolve => setImmediate(resolve))
    gate.resolve()
    await first
    expect(await shownAtAnswer).toBe(1)

    const other = dm('not kept', 200)
    gate = deferred()
    history.gate = gate.promise
    history.appendError = new Error('disk full')
    const copies = [false, true].map(live => dms.receive(other, contextFrom(bob, live)).then(() => 'ok', (err: Error) => err.message))
    gate.resolve()
    // neither copy is acked: the sender keeps the message
    expect(await Promise.all(copies)).toEqual(['disk full', 'disk full'])
    expect(events).toHaveLength(1)
  })

  it('a message that arrives while the session ends is refused for now and not shown: the account\'s next peer shows it', async () => {
    history.closing = true
    const err = await dms.receive(dm('during the takeover', 100), contextFrom(bob, true)).catch(e => e)
    expect(err).toMatchObject({ code: 'not-logged-in' })
    expect(events).toEqual([])
  })

  it('in batch mode, mailbox messages are collected and handed out oldest first, not shown one by one', async () => {
    dms.beginBatch()
    const late = dm('third', 300)
    const early = dm('first', 100)
    const middle = dm('second', 200)
    for (const env of [late, early, middle]) await dms.receive(env, contextFrom(bob, false))
    expect(events).toEqual([])
    const batch = dms.endBatch()
    expect(batch.map(m => [m.text, m.live, m.direction])).toEqual([['first', false, 'in'], ['second', false, 'in'], ['third', false, 'in']])
    // kept as unshown until the read shows them: a process killed before that shows them at its next read
    expect([...history.unshown].sort()).toEqual([late.id, early.id, middle.id].sort())
    // their sender is told once that the read's messages reached this peer
    const told = (): unknown[] => dispatched.filter(d => d.envelope.kind === RECEIPT_KIND).map(d => openEnvelope(d.envelope, bob.keys, receiptBodySchema))
    expect(told()).toEqual([{ state: 'delivered', ids: [late.id, early.id, middle.id] }])
    // out of batch mode, a mailbox message is shown on its own
    const after = dm('fourth', 400)
    await dms.receive(after, contextFrom(bob, false))
    expect(events.map(e => e.type)).toEqual(['messages:offline'])
    expect((events[0]?.detail as { messages: IncomingMessage[] }).messages.map(m => m.text)).toEqual(['fourth'])
    expect(history.unshown.has(after.id)).toBe(false)
    expect(told()).toEqual([{ state: 'delivered', ids: [late.id, early.id, middle.id] }, { state: 'delivered', ids: [after.id] }])
    expect(dms.endBatch()).toEqual([])
    // a live message is acknowledged on its stream: no receipt; opening the chat tells all four read
    await dms.receive(dm('live', 500), contextFrom(bob, true))
    expect(told()).toHaveLength(2)
    expect(await receipts.markRead(state.state.friends[0]!)).toBe(5)
    expect(told()).toHaveLength(3)
  })

  it('a dm from a non-friend, or from a friend\'s name with another key, is refused with code not-a-friend', async () => {
    for (const env of [dm('hi', 100, carol), envelope(DM_KIND, { text: 'hi' }, { ...carol, username: 'bob' }, alice, 100)]) {
      const err = await dms.receive(env, contextFrom(carol, true)).catch(e => e)
      expect(err).toBeInstanceOf(NotFriendError)
      expect(err.code).toBe('not-a-friend')
    }
    expect(events).toEqual([])
    expect(history.entries.size).toBe(0)
  })

  it('a dm from someone we asked to be friends is refused for now (not-ready, not final): their accept is still on its way', async () => {
    state.state.outgoing.push({ username: 'carol', keyId: carol.keyId, signPublic: carol.keys.signPublic, boxPublic: carol.keys.boxPublic, at: 50 })
    const err = await dms.receive(dm('hi, I accepted', 100, carol), contextFrom(carol, true)).catch(e => e)
    expect(err).toMatchObject({ code: 'not-ready', final: false })
    expect(events).toEqual([])
    expect(history.entries.size).toBe(0)
  })

  it('history shows both directions, oldest first', async () => {
    await dms.receive(dm('hi alice', 100), contextFrom(bob, true))
    await dms.send('bob', 'hi bob')
    expect((await dms.history('bob')).map(m => [m.text, m.direction])).toEqual([['hi alice', 'in'], ['hi bob', 'out']])
  })
})
