/**
 * Friend entries in the private state: lookups, and the one change every path to a
 * friendship makes. Shared by the commands (friends.ts) and the envelope handlers.
 */
import { bytesEqual, type Envelope, type FriendEntry, type FriendRequestEntry, type PrivateState } from '@conf-chat/protocol'
import type { StateMutation, UserProfile } from '../../account/index.js'
import type { FriendState, OnFriend } from './types.js'

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
    also?.(s)
  })
  components.onFriend(friend, undefined, announce)
  return { friend, written }
}
