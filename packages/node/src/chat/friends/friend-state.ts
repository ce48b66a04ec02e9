/**
 * Friend entries in the private state: lookups, and the one change every path to a
 * friendship makes. Shared by the commands (friends.ts) and the envelope handlers.
 */
import { bytesEqual, envelopeIdTime, type Envelope, type FriendEntry, type FriendRequestEntry, type PrivateState } from '@conf-chat/protocol'
import type { StateMutation, UserProfile } from '../../account/index.js'
import type { FriendState, OnFriend, RequestLimits } from './types.js'

export function profileOfEntry (e: FriendEntry | FriendRequestEntry, fullName = e.username): UserProfile {
  return { username: e.username, fullName, keyId: e.keyId, signPublic: e.signPublic, boxPublic: e.boxPublic }
}

export function without<T extends { username: string }> (list: T[], username: string): T[] {
  return list.filter(e => e.username !== username)
}

/** The friend entry, if `username` is a friend (and, if given, signs with `signPublic`). */
export function findFriend (state: PrivateState, username: string, signPublic?: Uint8Array): FriendEntry | undefined {
  const f = state.friends.find(e => e.username === username)
  if (f == null || (signPublic != null && !bytesEqual(f.signPublic, signPublic))) return undefined
  return f
}

/**
 * What strangers may leave in the private state: the private state is one sealed record
 * (at most 128 KiB), and 400 fake accounts each asking to be friends once made it too big
 * to be written at all. So incoming requests are capped (a request past the cap is
 * refused as 'full', a passing refusal: its sender keeps it and tries again later) and
 * expire unanswered; the per-sender marks of strangers expire with them. 100 requests;
 * 45 days: longer than a mailbox item lives (30 days), so no envelope still in a mailbox
 * is too old.
 */
export const DEFAULT_REQUEST_LIMITS: RequestLimits = { maxIncoming: 100, ttlMs: 45 * 24 * 3600_000 }

/**
 * Drop incoming requests older than `ttlMs`, and the last-envelope marks of senders who
 * are neither friends nor in a request and sent nothing we applied within `ttlMs`. Safe
 * because a friend envelope older than `ttlMs` is refused as stale whatever its mark
 * (`tooOld`): a dropped mark lets no old envelope back in.
 */
export function pruneStrangers (now: number, ttlMs: number): StateMutation {
  return s => {
    s.incoming = s.incoming.filter(e => e.at >= now - ttlMs)
    const known = new Set([...s.friends, ...s.incoming, ...s.outgoing].map(e => e.username))
    for (const [from, id] of Object.entries(s.lastFrom)) {
      if (!known.has(from) && envelopeIdTime(id) < now - ttlMs) delete s.lastFrom[from]
    }
  }
}

/**
 * The key id `username` was first known by: a friend's or a request's (ours or theirs),
 * else the one kept from an earlier contact (`known`). Keys are pinned at first contact:
 * friend-add and accept pin the key they used, and a pin outlives the friendship.
 */
export function pinnedKeyId (state: PrivateState, username: string): string | undefined {
  const byName = (e: { username: string }): boolean => e.username === username
  return (state.friends.find(byName) ?? state.outgoing.find(byName) ?? state.incoming.find(byName))?.keyId ?? state.known?.[username]
}

/** The change that keeps `keyId` as `username`'s key for later contacts (the user chose this contact: strangers pin nothing). */
export function pinKey (username: string, keyId: string): StateMutation {
  return s => {
    if (s.known?.[username] === keyId) return
    s.known = { ...s.known, [username]: keyId }
  }
}

/** Whether a friend envelope was made longer than `ttlMs` ago (by its id: its sender's clock). */
export function tooOld (env: Envelope, now: number, ttlMs: number): boolean {
  return envelopeIdTime(env.id) < now - ttlMs
}

/**
 * Envelopes from one user apply in the order they were sent (ids sort by sending time):
 * one no newer than the last applied from its sender is stale.
 */
export function newerThanLast (state: PrivateState, env: Envelope): boolean {
  const last = state.lastFrom[env.from]
  return last == null || env.id > last
}

/** The change that records `env` as the last applied from its sender. */
export function markSeen (env: Envelope): StateMutation {
  return s => { if (newerThanLast(s, env)) s.lastFrom[env.from] = env.id }
}

export interface BecomeFriendsComponents {
  state: FriendState
  onFriend: OnFriend
  now: () => number
}

/**
 * Move a request (ours or theirs) to the friends list, keys pinned; `also` joins the same
 * state change. Applied at once; `written` settles when the change is written to the DHT
 * (a command awaits it; an envelope handler does not: see handlers/handler.ts).
 */
export function becomeFriends (components: BecomeFriendsComponents, request: FriendRequestEntry, also?: StateMutation, announce = false): { friend: FriendEntry, written: Promise<unknown> } {
  const friend: FriendEntry = {
    username: request.username,
    keyId: request.keyId,
    signPublic: request.signPublic,
    boxPublic: request.boxPublic,
    since: components.now(),
    ...(request.note != null ? { note: request.note } : {})
  }
  const written = components.state.update(s => {
    s.incoming = without(s.incoming, friend.username)
    s.outgoing = without(s.outgoing, friend.username)
    if (!s.friends.some(f => f.username === friend.username)) s.friends.push(friend)
    pinKey(friend.username, friend.keyId)(s)
    also?.(s)
  })
  components.onFriend(friend, undefined, announce)
  return { friend, written }
}
