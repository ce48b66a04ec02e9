/**
 * Friends alone: commands and inbound friend envelopes over an in-memory private state,
 * with real signed and sealed envelopes, a recording deliver and an injected clock.
 */
import { describe, it, expect, beforeEach } from 'vitest'
import {
  FRIEND_REQUEST_KIND, FRIEND_ACCEPT_KIND, FRIEND_REJECT_KIND, FRIEND_REMOVE_KIND, DM_KIND, MAX_FRIEND_NOTE_CHARS, MAX_RECORD_BYTES,
  emptyPrivateState, sealForOwner, fingerprintOf, type FriendEntry
} from '@conf-chat/protocol'
import { defaultLogger } from '@libp2p/logger'
import { Friends, DEFAULT_REQUEST_LIMITS } from '../../../src/chat/friends/index.js'
import type { PresenceInfo } from '../../../src/account/index.js'
import { AlreadyFriendsError, KeyChangedError, NoFriendRequestError, NotFriendError, SelfFriendError, UnknownKindError, UnknownUserError } from '../../../src/errors.js'
import {
  user, envelope, contextFrom, MemoryState, recordingDeliver, recordingEmit, profiles,
  type Delivered, type Emitted
} from './fixtures.js'

const alice = user('alice')
const bob = user('bob')
const carol = user('carol')

interface Noted { username: string, presence?: PresenceInfo, announce?: boolean }

let clock: number
let state: MemoryState
let delivered: Delivered[]
let events: Emitted[]
let noted: Noted[]
let presences: Map<string, PresenceInfo | Error>
let friends: Friends

beforeEach(() => {
  clock = 1_000_000
  state = new MemoryState()
  const d = recordingDeliver()
  delivered = d.delivered
  const e = recordingEmit()
  events = e.events
  noted = []
  presences = new Map()
  friends = new Friends({
    state,
    me: { username: alice.username, keyId: alice.keyId },
    keys: alice.keys,
    profile: profiles(alice, bob, carol),
    presenceOf: async keyId => {
      const p = presences.get(keyId)
      if (p instanceof Error) throw p
      return p
    },
    deliver: d.deliver,
    onFriend: (friend, presence, announce) => { noted.push({ username: friend.username, ...(presence != null ? { presence } : {}), ...(announce != null ? { announce } : {}) }) },
    emit: e.emit,
    logger: defaultLogger(),
    now: () => clock
  })
})

/** bob (or `from`) sends alice a friend envelope of `kind` at `sentAt`. */
async function receive (kind: string, sentAt: number, from = bob, content: unknown = {}): Promise<void> {
  await friends.receive(envelope(kind, content, from, alice, sentAt), contextFrom(from))
}

function friendNames (): string[] {
  return state.state.friends.map(f => f.username).sort()
}

function asFriend (u: typeof bob, since = 1): FriendEntry {
  return { username: u.username, keyId: u.keyId, signPublic: u.keys.signPublic, boxPublic: u.keys.boxPublic, since }
}

describe('friends: commands', () => {
  it('add sends a request with the note and lists it as outgoing', async () => {
    const result = await friends.add('bob', 'hi bob')
    expect(result).toEqual({ username: 'bob', action: 'requested', delivery: { id: 'd1', status: 'delivered', where: 'live' } })
    expect(delivered).toEqual([{ kind: FRIEND_REQUEST_KIND, content: { note: 'hi bob' }, to: 'bob' }])
    expect(friends.requests()).toEqual({ incoming: [], outgoing: [{ username: 'bob', note: 'hi bob', at: clock }] })
    expect(state.state.outgoing[0]?.keyId).toBe(bob.keyId)
    expect(friendNames()).toEqual([])
  })

  it('add of an unknown user fails before anything is kept or sent', async () => {
    await expect(friends.add('nobody')).rejects.toBeInstanceOf(UnknownUserError)
    expect(state.state.outgoing).toEqual([])
    expect(delivered).toEqual([])
  })

  it('add refuses oneself and a friend', async () => {
    await expect(friends.add('alice')).rejects.toBeInstanceOf(SelfFriendError)
    state.state.friends.push(asFriend(bob))
    await expect(friends.add('bob')).rejects.toBeInstanceOf(AlreadyFriendsError)
    expect(delivered).toEqual([])
  })

  it('add when they asked us accepts their request', async () => {
    await receive(FRIEND_REQUEST_KIND, 10, bob, { note: 'be my friend' })
    clock = 2_000_000
    const result = await friends.add('bob')
    expect(result.action).toBe('accepted')
    expect(delivered).toEqual([{ kind: FRIEND_ACCEPT_KIND, content: {}, to: 'bob' }])
    expect(state.state.friends).toEqual([{ ...asFriend(bob, 2_000_000), note: 'be my friend' }])
    expect(friends.requests()).toEqual({ incoming: [], outgoing: [] })
  })

  it('accept makes the requester a friend with the keys they signed with, and tells them', async () => {
    await receive(FRIEND_REQUEST_KIND, 10)
    clock = 3_000
    expect(await friends.accept('bob')).toMatchObject({ username: 'bob', action: 'accepted' })
    expect(state.state.friends).toEqual([asFriend(bob, 3_000)])
    expect(state.state.incoming).toEqual([])
    expect(delivered).toEqual([{ kind: FRIEND_ACCEPT_KIND, content: {}, to: 'bob' }])
    expect(noted).toEqual([{ username: 'bob', announce: false }])
    expect(friends.friend('bob')?.keyId).toBe(bob.keyId)
    // the pinned key decides: a different signing key is not this friend
    expect(friends.friend('bob', carol.keys.signPublic)).toBeUndefined()
    expect(friends.friend('bob', bob.keys.signPublic)).toBeDefined()
  })

  it('accept and reject without a request throw NoFriendRequestError', async () => {
    await expect(friends.accept('bob')).rejects.toBeInstanceOf(NoFriendRequestError)
    await expect(friends.reject('bob')).rejects.toBeInstanceOf(NoFriendRequestError)
    // our own request to them is not theirs to us
    await friends.add('carol')
    await expect(friends.accept('carol')).rejects.toBeInstanceOf(NoFriendRequestError)
    expect(delivered.map(d => d.kind)).toEqual([FRIEND_REQUEST_KIND])
  })

  it('reject drops the request and tells them', async () => {
    await receive(FRIEND_REQUEST_KIND, 10)
    expect(await friends.reject('bob')).toMatchObject({ username: 'bob', action: 'rejected' })
    expect(friends.requests().incoming).toEqual([])
    expect(friendNames()).toEqual([])
    expect(delivered).toEqual([{ kind: FRIEND_REJECT_KIND, content: {}, to: 'bob' }])
  })

  it('remove ends a friendship and tells them', async () => {
    state.state.friends.push(asFriend(bob), asFriend(carol))
    expect(await friends.remove('bob')).toMatchObject({ username: 'bob', action: 'removed' })
    expect(friendNames()).toEqual(['carol'])
    expect(delivered).toEqual([{ kind: FRIEND_REMOVE_KIND, content: {}, to: 'bob' }])
  })

  it('remove withdraws a pending request of ours', async () => {
    await friends.add('bob')
    await friends.remove('bob')
    expect(friends.requests().outgoing).toEqual([])
    expect(delivered.map(d => d.kind)).toEqual([FRIEND_REQUEST_KIND, FRIEND_REMOVE_KIND])
  })

  it('remove and requireFriend of a non-friend throw NotFriendError with the code not-a-friend', async () => {
    const err = await friends.remove('bob').catch(e => e)
    expect(err).toBeInstanceOf(NotFriendError)
    expect(err.code).toBe('not-a-friend')
    expect(() => friends.requireFriend('bob')).toThrow(NotFriendError)
    expect(delivered).toEqual([])
  })

  it('the caller\'s signal reaches the profile read and the delivery', async () => {
    const controller = new AbortController()
    const seen: Array<AbortSignal | undefined> = []
    const f = new Friends({
      state,
      me: { username: 'alice', keyId: alice.keyId },
      keys: alice.keys,
      profile: async (u, options) => { seen.push(options?.signal); return await profiles(bob)(u) },
      presenceOf: async () => undefined,
      deliver: async (kind, content, to, options) => { seen.push(options?.signal); return { id: 'x', status: 'queued', where: 'outbox' } },
      onFriend: () => {},
      emit: () => {}
    })
    await f.add('bob', undefined, { signal: controller.signal })
    expect(seen).toEqual([controller.signal, controller.signal])
  })

  it('list tells online friends from their presence, sorted by name; a failed read is offline', async () => {
    state.state.friends.push({ ...asFriend(carol, 5), note: 'n' }, asFriend(bob, 7))
    presences.set(bob.keyId, { online: true, peerId: 'p', addrs: [], updatedAt: 1 })
    presences.set(carol.keyId, new Error('read failed'))
    expect(await friends.list()).toEqual([
      { username: 'bob', since: 7, online: true },
      { username: 'carol', since: 5, note: 'n', online: false }
    ])
    // the presence read is passed on, to keep the map of online friends current
    expect(noted.find(n => n.username === 'bob')?.presence?.online).toBe(true)
  })

  it('list aborted while reading presence throws instead of calling everyone offline', async () => {
    state.state.friends.push(asFriend(bob))
    const controller = new AbortController()
    presences.set(bob.keyId, new Error('aborted'))
    const reading = friends.list({ signal: controller.signal })
    controller.abort()
    await expect(reading).rejects.toThrow()
    await expect(friends.list({ signal: AbortSignal.abort() })).rejects.toThrow()
  })
})

describe('friends: envelopes in', () => {
  it('every kind is applied and told while the write of the private state stalls: the handling (its ack) waits for no DHT write', async () => {
    await friends.add('carol')
    state.held = new Promise<void>(() => {})
    await receive(FRIEND_REQUEST_KIND, 50)
    expect(friends.requests().incoming.map(e => e.username)).toEqual(['bob'])
    await receive(FRIEND_ACCEPT_KIND, 60, carol)
    expect(friendNames()).toEqual(['carol'])
    await receive(FRIEND_REMOVE_KIND, 70, carol)
    expect(friendNames()).toEqual([])
    await receive(FRIEND_REJECT_KIND, 80)
    expect(events.map(e => e.type)).toEqual(['friend:request', 'friend:accepted', 'friend:removed'])
  })

  it('a request is kept as incoming and told to the user', async () => {
    await receive(FRIEND_REQUEST_KIND, 50, bob, { note: 'hello' })
    expect(friends.requests()).toEqual({ incoming: [{ username: 'bob', note: 'hello', at: 50 }], outgoing: [] })
    expect(state.state.incoming[0]?.keyId).toBe(bob.keyId)
    expect(events).toEqual([{ type: 'friend:request', detail: { username: 'bob', at: 50, note: 'hello' } }])
    expect(friendNames()).toEqual([])
    expect(delivered).toEqual([])
  })

  it('a request while we asked them makes both friends and sends our accept', async () => {
    await friends.add('bob')
    delivered.length = 0
    await receive(FRIEND_REQUEST_KIND, 60)
    expect(friendNames()).toEqual(['bob'])
    expect(friends.requests()).toEqual({ incoming: [], outgoing: [] })
    expect(delivered).toEqual([{ kind: FRIEND_ACCEPT_KIND, content: {}, to: 'bob' }])
    expect(events).toEqual([{ type: 'friend:accepted', detail: { username: 'bob' } }])
  })

  it('a request from a friend (who lost us) is answered with an accept, without a new event', async () => {
    state.state.friends.push(asFriend(bob, 1))
    await receive(FRIEND_REQUEST_KIND, 60)
    expect(friendNames()).toEqual(['bob'])
    expect(delivered).toEqual([{ kind: FRIEND_ACCEPT_KIND, content: {}, to: 'bob' }])
    expect(events).toEqual([])
  })

  it('an accept of our request begins the friendship and announces us', async () => {
    await friends.add('bob', 'hi')
    clock = 9_000
    await receive(FRIEND_ACCEPT_KIND, 70)
    expect(state.state.friends).toEqual([{ ...asFriend(bob, 9_000), note: 'hi' }])
    expect(state.state.outgoing).toEqual([])
    expect(events).toEqual([{ type: 'friend:accepted', detail: { username: 'bob' } }])
    expect(noted).toEqual([{ username: 'bob', announce: true }])
  })

  it('an accept without a request of ours is ignored (but counts as the last from them)', async () => {
    const env = envelope(FRIEND_ACCEPT_KIND, {}, bob, alice, 70)
    await friends.receive(env, contextFrom(bob))
    expect(friendNames()).toEqual([])
    expect(events).toEqual([])
    expect(noted).toEqual([])
    expect(state.state.lastFrom.bob).toBe(env.id)
  })

  it('a reject of our request drops it and tells the user; without a request, no event', async () => {
    await friends.add('bob')
    await receive(FRIEND_REJECT_KIND, 80)
    expect(friends.requests().outgoing).toEqual([])
    expect(friendNames()).toEqual([])
    expect(events).toEqual([{ type: 'friend:rejected', detail: { username: 'bob' } }])
    await receive(FRIEND_REJECT_KIND, 90, carol)
    expect(events).toHaveLength(1)
  })

  it('a remove clears the friend, their request and ours, and tells the user', async () => {
    state.state.friends.push(asFriend(bob), asFriend(carol))
    state.state.incoming.push({ username: 'bob', keyId: bob.keyId, signPublic: bob.keys.signPublic, boxPublic: bob.keys.boxPublic, at: 1 })
    state.state.outgoing.push({ username: 'bob', keyId: bob.keyId, signPublic: bob.keys.signPublic, boxPublic: bob.keys.boxPublic, at: 1 })
    await receive(FRIEND_REMOVE_KIND, 100)
    expect(friendNames()).toEqual(['carol'])
    expect(friends.requests()).toEqual({ incoming: [], outgoing: [] })
    expect(events).toEqual([{ type: 'friend:removed', detail: { username: 'bob' } }])
  })

  it('a remove from someone who was no friend changes nothing visible and tells nothing', async () => {
    await receive(FRIEND_REMOVE_KIND, 100)
    expect(events).toEqual([])
    expect(friendNames()).toEqual([])
  })

  it('an envelope older than the last applied from its sender is ignored', async () => {
    // bob asked, then withdrew; the withdrawal arrives live first, the request later from the mailbox
    const request = envelope(FRIEND_REQUEST_KIND, {}, bob, alice, 100)
    const remove = envelope(FRIEND_REMOVE_KIND, {}, bob, alice, 200)
    await friends.receive(remove, contextFrom(bob))
    await friends.receive(request, contextFrom(bob, false))
    expect(friends.requests().incoming).toEqual([])
    expect(events).toEqual([])
    expect(state.state.lastFrom.bob).toBe(remove.id)
    // the same envelope twice: the second is stale too
    const again = envelope(FRIEND_REQUEST_KIND, {}, bob, alice, 300)
    await friends.receive(again, contextFrom(bob))
    await friends.receive(again, contextFrom(bob))
    expect(events.map(e => e.type)).toEqual(['friend:request'])
    // another sender's order is their own
    await receive(FRIEND_REQUEST_KIND, 150, carol)
    expect(friends.requests().incoming.map(r => r.username).sort()).toEqual(['bob', 'carol'])
  })

  it('a kind that is not a friend kind is refused with the code unknown-kind', async () => {
    const err = await friends.receive(envelope(DM_KIND, { text: 'x' }, bob, alice, 10), contextFrom(bob)).catch(e => e)
    expect(err).toBeInstanceOf(UnknownKindError)
    expect(err.code).toBe('unknown-kind')
    expect(state.updates).toBe(0)
  })

  it('a body sealed to someone else is refused and changes nothing', async () => {
    const forCarol = envelope(FRIEND_REQUEST_KIND, {}, bob, carol, 10)
    await expect(friends.receive(forCarol, contextFrom(bob))).rejects.toThrow()
    expect(friends.requests().incoming).toEqual([])
    expect(state.state.lastFrom).toEqual({})
    expect(events).toEqual([])
  })
})

describe('friends: what strangers may leave in the private state', () => {
  const LIMITS = { maxIncoming: 3, ttlMs: 10_000 }
  const strangers = Array.from({ length: 5 }, (_, i) => user(`stranger${i}`))
  let capped: Friends

  beforeEach(() => {
    clock = 50_000
    capped = new Friends({
      state,
      me: { username: alice.username, keyId: alice.keyId },
      keys: alice.keys,
      profile: profiles(alice, bob, ...strangers),
      presenceOf: async () => undefined,
      deliver: recordingDeliver().deliver,
      onFriend: () => {},
      emit: recordingEmit().emit,
      logger: defaultLogger(),
      now: () => clock,
      limits: LIMITS
    })
  })

  const request = async (from: typeof bob, sentAt = clock): Promise<void> => {
    await capped.receive(envelope(FRIEND_REQUEST_KIND, {}, from, alice, sentAt), contextFrom(from))
  }

  it('a request past the cap is refused as full, a passing refusal; the state keeps the cap', async () => {
    for (const s of strangers.slice(0, 3)) await request(s)
    const err = await request(strangers[3]!).catch(e => e)
    expect(err).toMatchObject({ code: 'full', final: false })
    expect(state.state.incoming.map(e => e.username)).toEqual(['stranger0', 'stranger1', 'stranger2'])
    // a sender already waiting may ask again (a newer note) without counting twice
    await request(strangers[0]!, clock + 1)
    expect(state.state.incoming).toHaveLength(3)
    // the user's own requests and friendships are not capped by strangers
    await capped.add('bob')
    expect(state.state.outgoing.map(e => e.username)).toEqual(['bob'])
  })

  it('unanswered requests expire: not listed, not counted, dropped with their senders\' marks at the next request', async () => {
    for (const s of strangers.slice(0, 3)) await request(s)
    expect(Object.keys(state.state.lastFrom)).toHaveLength(3)
    clock += LIMITS.ttlMs + 1
    expect(capped.requests().incoming).toEqual([])
    await request(strangers[3]!)
    expect(state.state.incoming.map(e => e.username)).toEqual(['stranger3'])
    expect(Object.keys(state.state.lastFrom)).toEqual(['stranger3'])
  })

  it('a friend envelope made longer ago than the requests live is refused as stale (final), whatever its mark', async () => {
    const old = request(strangers[0]!, clock - LIMITS.ttlMs - 1)
    await expect(old).rejects.toMatchObject({ code: 'stale', final: true })
    expect(state.state.incoming).toEqual([])
  })
})

describe('friends: the cap on requests', () => {
  it('the default cap of requests, each with the longest name and note, take under 40 % of the state record (46 KB of 128 KiB)', () => {
    const s = emptyPrivateState()
    for (let i = 0; i < DEFAULT_REQUEST_LIMITS.maxIncoming; i++) {
      const u = user(`${String(i).padStart(3, '0')}${'x'.repeat(29)}`)
      s.incoming.push({ username: u.username, keyId: u.keyId, signPublic: u.keys.signPublic, boxPublic: u.keys.boxPublic, at: Date.now(), note: 'n'.repeat(MAX_FRIEND_NOTE_CHARS) })
      s.lastFrom[u.username] = '0000000ab-0123456789abcdef'
    }
    const sealed = sealForOwner(s, alice.keys)
    expect(sealed.length).toBeLessThan(MAX_RECORD_BYTES * 0.4)
  })
})

describe('friends: keys pinned at first contact', () => {
  /** bob's name, now answered with another key (taken over, or lookups answered by an attacker). */
  const impostor = { ...user('bob') }
  const lookups = new Map<string, typeof bob>()
  let pinned: Friends
  let told: Emitted[]
  let sent: Delivered[]

  beforeEach(() => {
    lookups.clear()
    lookups.set('bob', bob)
    const e = recordingEmit()
    told = e.events
    const d = recordingDeliver()
    sent = d.delivered
    pinned = new Friends({
      state,
      me: { username: alice.username, keyId: alice.keyId },
      keys: alice.keys,
      profile: async username => { const u = lookups.get(username); if (u == null) throw new UnknownUserError(username); return u.profile },
      presenceOf: async () => undefined,
      deliver: d.deliver,
      onFriend: () => {},
      emit: e.emit,
      logger: defaultLogger(),
      now: () => clock
    })
  })

  it('a friend-add to a name that now reads with another key than the one we knew is refused with both fingerprints; nothing is sent', async () => {
    await pinned.add('bob')
    await pinned.remove('bob')
    lookups.set('bob', impostor)
    const err = await pinned.add('bob').catch(e => e)
    expect(err).toBeInstanceOf(KeyChangedError)
    expect(err).toMatchObject({ pinned: fingerprintOf(bob.keyId), found: fingerprintOf(impostor.keyId) })
    expect(err.message).toContain(fingerprintOf(impostor.keyId))
    expect(sent.map(d => d.kind)).toEqual([FRIEND_REQUEST_KIND, FRIEND_REMOVE_KIND])
    expect(state.state.outgoing).toEqual([])
  })

  it('a friend envelope from a name we know under another key is refused (key-changed, final) and told; a friendship made by accept stays pinned', async () => {
    await pinned.receive(envelope(FRIEND_REQUEST_KIND, {}, bob, alice, clock), contextFrom(bob))
    await pinned.accept('bob')
    await pinned.remove('bob')
    const err = await pinned.receive(envelope(FRIEND_REQUEST_KIND, {}, impostor, alice, clock + 10), contextFrom(impostor)).catch(e => e)
    expect(err).toMatchObject({ name: 'KeyChangedError', code: 'key-changed' })
    expect(told.at(-1)).toEqual({ type: 'friend:key-changed', detail: { username: 'bob', pinned: fingerprintOf(bob.keyId), found: fingerprintOf(impostor.keyId) } })
    expect(state.state.incoming).toEqual([])
    // the real bob, with the key we know, is welcome again
    await pinned.receive(envelope(FRIEND_REQUEST_KIND, {}, bob, alice, clock + 20), contextFrom(bob))
    expect(state.state.incoming.map(e => e.keyId)).toEqual([bob.keyId])
  })

  it('a stranger\'s request pins nothing once it is gone: only the user\'s own contacts are kept', async () => {
    await pinned.receive(envelope(FRIEND_REQUEST_KIND, {}, carol, alice, clock), contextFrom(carol))
    await pinned.reject('carol')
    expect(state.state.known?.carol).toBeUndefined()
    await pinned.add('bob')
    expect(state.state.known?.bob).toBe(bob.keyId)
  })
})
