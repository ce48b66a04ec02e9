/**
 * The account's writer list: who is on it (from the private state), when it is published
 * (once the session starts, after changes of who is on it, again after a failed store),
 * and that what is stored names exactly those senders. Timers are faked; no network.
 */
import { describe, it, expect, beforeEach, afterEach, vi } from 'vitest'
import { defaultLogger } from '@libp2p/logger'
import {
  conferenceEntrySchema, createWriterListItem, decodeWriterListItem, emptyPrivateState, generateAccountKeys, keyIdOf,
  mailboxPairKeys, conferenceWriterSeed, signingKeysOf, type AccountKeys, type PrivateState, type SetItem
} from '@conf-chat/protocol'
import { MailboxWriters, knownWriters, WRITER_LIST_DELAY_MS, WRITER_LIST_RETRY_MS } from '../../../src/chat/mailbox-writers.js'

const me = generateAccountKeys()
const myId = keyIdOf(me.signPublic)
const people = new Map<number, AccountKeys>()
const keysOf = (n: number): AccountKeys => people.get(n) ?? people.set(n, generateAccountKeys()).get(n)!
const person = (n: number): { username: string, keyId: string, signPublic: Uint8Array, boxPublic: Uint8Array } =>
  ({ username: `user${n}`, keyId: keyIdOf(keysOf(n).signPublic), signPublic: keysOf(n).signPublic, boxPublic: keysOf(n).boxPublic })
/** The key with which person n signs what it seals into the mailbox of `mailbox` (n's own derivation, from n's secret). */
const pairOf = (n: number, mailbox: { keyId: string, boxPublic: Uint8Array } = { keyId: myId, boxPublic: me.boxPublic }): string =>
  keyIdOf(mailboxPairKeys(keysOf(n), mailbox.boxPublic, person(n).keyId, mailbox.keyId).signPublic)
/** The writer key of the members of n's conferences into the mailbox of `mailbox` (the owner n's derivation). */
const ownerWriterOf = (n: number, mailbox: { keyId: string, boxPublic: Uint8Array } = { keyId: myId, boxPublic: me.boxPublic }): string =>
  keyIdOf(signingKeysOf(conferenceWriterSeed(keysOf(n), mailbox.boxPublic, person(n).keyId, mailbox.keyId)).signPublic)
const friend = (n: number): PrivateState['friends'][number] => ({ ...person(n), since: 1 })
const request = (n: number): PrivateState['outgoing'][number] => ({ ...person(n), at: 1 })
const conference = (members: number[], extra: { left?: number[], leftAt?: number, keyed?: boolean, owner?: number } = {}): unknown => ({
  id: `conf-${'c'.repeat(16)}`,
  ref: { owner: person(extra.owner ?? 1).keyId, local: 'c'.repeat(16) },
  name: 'team',
  owner: `user${extra.owner ?? 1}`,
  seq: 1,
  members: members.map(n => ({ username: `user${n}`, keyId: person(n).keyId, joinedAt: 1, ...(extra.keyed === true ? { boxPublic: person(n).boxPublic } : {}) })),
  left: (extra.left ?? []).map(n => ({ username: `user${n}`, keyId: person(n).keyId, leftAt: 2 })),
  createdAt: 1,
  ...(extra.leftAt != null ? { leftAt: extra.leftAt } : {})
})

describe('knownWriters', () => {
  it('lists friends, people asked to be friends and members of conferences still joined, by the keys they seal with; not requests from others, not me', () => {
    const state: PrivateState = {
      ...emptyPrivateState(),
      friends: [friend(1)],
      outgoing: [request(2)],
      incoming: [request(3)],
      conferences: [conference([1, 4, 5], { left: [5] }), conference([6], { leftAt: 3 }), conference([7], { keyed: true })]
    }
    expect(state.conferences.every(c => conferenceEntrySchema.safeParse(c).success)).toBe(true)
    const four = { keyId: person(4).keyId, keys: keysOf(4) }
    // and the writer key of the friend's conferences: named before an invite is read
    expect(knownWriters(state, four).sort()).toEqual([pairOf(1, person(4)), pairOf(2, person(4)), pairOf(7, person(4)), ownerWriterOf(1, person(4))].sort())
    // a member whose box key the record did not give (4): by its account key, its envelopes go as they are
    expect(knownWriters(state, { keyId: myId, keys: me }).sort()).toEqual([pairOf(1), pairOf(2), person(4).keyId, pairOf(7), ownerWriterOf(1)].sort())
    // a friend who is also a member: named once, by the pair's key
    expect(knownWriters(state, { keyId: myId, keys: me })).not.toContain(person(1).keyId)
  })

  it('names the writer key of the owner of each conference still joined, friend or not; none of a conference left, none of mine', () => {
    const state: PrivateState = {
      ...emptyPrivateState(),
      conferences: [conference([8, 9], { keyed: true, owner: 8 }), conference([10], { keyed: true, owner: 10, leftAt: 3 })]
    }
    expect(knownWriters(state, { keyId: myId, keys: me }).sort()).toEqual([pairOf(8), pairOf(9), ownerWriterOf(8)].sort())
    expect(knownWriters(state, { keyId: myId, keys: me })).not.toContain(ownerWriterOf(10))
    // the owner itself is not named by its own writer key
    const eight = { keyId: person(8).keyId, keys: keysOf(8) }
    expect(knownWriters(state, eight).sort()).toEqual([pairOf(9, person(8))])
  })
})

describe('MailboxWriters', () => {
  let state: PrivateState
  let stored: SetItem[]
  let removed: string[]
  let failing: boolean
  let writers: MailboxWriters
  const named = (item: SetItem, n: number): boolean => decodeWriterListItem(myId, item).names(pairOf(n))

  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] })
    state = { ...emptyPrivateState(), friends: [friend(1)] }
    stored = []
    removed = []
    failing = false
    writers = new MailboxWriters({
      state: () => state,
      keyId: myId,
      keys: me,
      store: async item => {
        if (failing) throw new Error('no holder stored it')
        stored.push(item)
      },
      remove: async ids => { removed.push(...ids) },
      logger: defaultLogger()
    })
  })
  afterEach(() => {
    writers.close()
    vi.useRealTimers()
  })

  it('publishes once the session starts, and again only when who is on the list changed', async () => {
    writers.changed()
    await vi.advanceTimersByTimeAsync(WRITER_LIST_RETRY_MS)
    expect(stored).toHaveLength(0)
    writers.start()
    await vi.advanceTimersByTimeAsync(0)
    expect(stored).toHaveLength(1)
    expect([named(stored[0]!, 1), named(stored[0]!, 2)]).toEqual([true, false])
    // a change that leaves the same senders (a history page count, a note) publishes nothing
    state = { ...state, history: { x: { pages: 1 } } }
    writers.changed()
    await vi.advanceTimersByTimeAsync(WRITER_LIST_DELAY_MS)
    expect(stored).toHaveLength(1)
    state = { ...state, outgoing: [request(2)] }
    writers.changed()
    writers.changed()
    await vi.advanceTimersByTimeAsync(WRITER_LIST_DELAY_MS)
    expect(stored).toHaveLength(2)
    expect(named(stored[1]!, 2)).toBe(true)
    // the two newest are kept (a holder that missed the newest has the one before); a third removes the first
    expect(removed).toEqual([])
    expect(writers.keepFrom()).toBe(stored[0]!.id)
    state = { ...state, outgoing: [] }
    writers.changed()
    await vi.advanceTimersByTimeAsync(WRITER_LIST_DELAY_MS)
    expect(removed).toEqual([stored[0]!.id])
    expect(writers.keepFrom()).toBe(stored[1]!.id)
    // the newer list sorts after the older one, and holders apply the later time
    expect(stored[1]!.id > stored[0]!.id).toBe(true)
    expect(decodeWriterListItem(myId, stored[1]!).at).toBeGreaterThan(decodeWriterListItem(myId, stored[0]!).at)
  })

  it('stores its list again, later, when a read finds a newer one than its own (another peer\'s clock ahead)', async () => {
    writers.start()
    await vi.advanceTimersByTimeAsync(0)
    const other = createWriterListItem(me, [], Date.now() + 60_000)
    writers.noteNewest(other.id)
    await vi.advanceTimersByTimeAsync(0)
    expect(stored).toHaveLength(2)
    expect(decodeWriterListItem(myId, stored[1]!).at).toBeGreaterThan(decodeWriterListItem(myId, other).at)
    // its own list as the newest: nothing to do
    writers.noteNewest(stored[1]!.id)
    await vi.advanceTimersByTimeAsync(0)
    expect(stored).toHaveLength(2)
  })

  it('does not start once stopped (a session ended before its state was read)', async () => {
    writers.stop()
    writers.start()
    await vi.advanceTimersByTimeAsync(WRITER_LIST_RETRY_MS)
    expect(stored).toHaveLength(0)
  })

  it('tries a failed store again, and stops at close', async () => {
    failing = true
    writers.start()
    await vi.advanceTimersByTimeAsync(0)
    expect(stored).toHaveLength(0)
    failing = false
    await vi.advanceTimersByTimeAsync(WRITER_LIST_RETRY_MS)
    expect(stored).toHaveLength(1)
    writers.close()
    state = { ...state, friends: [] }
    writers.changed()
    await vi.advanceTimersByTimeAsync(WRITER_LIST_RETRY_MS)
    expect(stored).toHaveLength(1)
  })

  it('at the end of a session publishes at once what changed since the last list (a friend accepted just before a logout)', async () => {
    writers.start()
    await vi.advanceTimersByTimeAsync(0)
    state = { ...state, friends: [friend(1), friend(2)] }
    writers.changed()
    writers.stop()
    expect(await writers.flush()).toBe(true)
    expect(stored).toHaveLength(2)
    expect(named(stored[1]!, 2)).toBe(true)
    // nothing new: nothing stored
    expect(await writers.flush()).toBe(true)
    expect(stored).toHaveLength(2)
    failing = true
    state = { ...state, friends: [] }
    expect(await writers.flush()).toBe(false)
  })
})
