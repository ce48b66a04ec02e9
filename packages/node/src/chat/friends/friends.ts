/**
 * Friends of the logged-in account. The truth is the account's private state (so it
 * follows the user to any peer); every change is also a signed envelope to the other
 * side (friend-request, -accept, -reject, -remove), delivered live or through the
 * mailbox, so both sides agree even when one was offline. Envelopes from one user are
 * applied in the order they were sent: an older one arriving late (a mailbox read after
 * a live notice) is ignored.
 */
import { logger } from '@libp2p/logger'
import {
  openEnvelope, bytesEqual, checkFriendNote, checkUsername, friendRequestBodySchema, friendAnswerBodySchema,
  FRIEND_REQUEST_KIND, FRIEND_ACCEPT_KIND, FRIEND_REJECT_KIND, FRIEND_REMOVE_KIND,
  type Envelope, type FriendEntry, type FriendRequestEntry, type PrivateState, type FriendKind
} from '@conf-chat/protocol'
import type { PrivateStateStore } from '../../account/private-state.js'
import type { UserProfile } from '../../account/accounts.js'
import type { PresenceInfo } from '../../account/presence.js'
import type { Delivery } from '../../delivery/outbox.js'
import type { EnvelopeContext } from '../../account/session.js'
import { AlreadyFriendsError, NoFriendRequestError, NotFriendError, SelfFriendError } from '../../errors.js'

const log = logger('conf-chat:friends')

/** How many presence lookups `list()` runs at once. */
const PRESENCE_CONCURRENCY = 8

export interface FriendInfo {
  username: string
  /** Friends since (ms since epoch). */
  since: number
  note?: string
  online: boolean
}

export interface FriendRequestInfo {
  username: string
  note?: string
  at: number
}

export interface FriendRequests {
  incoming: FriendRequestInfo[]
  outgoing: FriendRequestInfo[]
}

export interface FriendActionResult {
  username: string
  /** What happened: a request sent, a friendship begun, a request turned down, a friend removed. */
  action: 'requested' | 'accepted' | 'rejected' | 'removed'
  /** How the other side was told. */
  delivery: Delivery
}

export interface FriendEvents {
  'friend:request': CustomEvent<FriendRequestInfo>
  /** A friendship began: they accepted our request (or asked while we asked them). */
  'friend:accepted': CustomEvent<{ username: string }>
  'friend:rejected': CustomEvent<{ username: string }>
  'friend:removed': CustomEvent<{ username: string }>
}

export interface FriendsComponents {
  state: PrivateStateStore
  me: { username: string, keyId: string }
  keys: { boxPublic: Uint8Array, boxSecret: Uint8Array }
  profile: (username: string) => Promise<UserProfile>
  presenceOf: (keyId: string) => Promise<PresenceInfo | undefined>
  /** Seal, sign, persist in the outbox and deliver. */
  deliver: (kind: FriendKind, content: unknown, to: UserProfile) => Promise<Delivery>
  /**
   * A friend's presence was read (`presence`), or a friendship began (`announce`: the
   * other side's envelope began it, so they know us already and may hear we are online).
   */
  onFriend: (friend: FriendEntry, presence?: PresenceInfo, announce?: boolean) => void
  emit: <K extends keyof FriendEvents>(type: K, detail: FriendEvents[K]['detail']) => void
}

function profileOfEntry (e: FriendEntry | FriendRequestEntry, fullName = e.username): UserProfile {
  return { username: e.username, fullName, keyId: e.keyId, signPublic: e.signPublic, boxPublic: e.boxPublic }
}

function without<T extends { username: string }> (list: T[], username: string): T[] {
  return list.filter(e => e.username !== username)
}

function newerThanLast (state: PrivateState, env: Envelope): boolean {
  const last = state.lastFrom[env.from]
  return last == null || env.id > last
}

export class Friends {
  private readonly c: FriendsComponents

  constructor (components: FriendsComponents) {
    this.c = components
  }

  private get s (): PrivateState { return this.c.state.state }

  /** The friend entry, if `username` is a friend (and, if given, signs with `signPublic`). */
  friend (username: string, signPublic?: Uint8Array): FriendEntry | undefined {
    const f = this.s.friends.find(e => e.username === username)
    if (f == null || (signPublic != null && !bytesEqual(f.signPublic, signPublic))) return undefined
    return f
  }

  requireFriend (username: string): FriendEntry {
    const f = this.friend(username)
    if (f == null) throw new NotFriendError(username)
    return f
  }

  profileOf (friend: FriendEntry): UserProfile {
    return profileOfEntry(friend)
  }

  requests (): FriendRequests {
    const info = (e: FriendRequestEntry): FriendRequestInfo => ({ username: e.username, at: e.at, ...(e.note != null ? { note: e.note } : {}) })
    return { incoming: this.s.incoming.map(info), outgoing: this.s.outgoing.map(info) }
  }

  /** Friends with online/offline from their presence records. */
  async list (): Promise<FriendInfo[]> {
    const friends = [...this.s.friends].sort((a, b) => a.username.localeCompare(b.username))
    const out: FriendInfo[] = []
    for (let i = 0; i < friends.length; i += PRESENCE_CONCURRENCY) {
      const chunk = friends.slice(i, i + PRESENCE_CONCURRENCY)
      out.push(...await Promise.all(chunk.map(async f => {
        const presence = await this.c.presenceOf(f.keyId).catch(() => undefined)
        this.c.onFriend(f, presence)
        return { username: f.username, since: f.since, online: presence?.online === true, ...(f.note != null ? { note: f.note } : {}) }
      })))
    }
    return out
  }

  /**
   * Ask `username` to be friends. If they already asked us, this accepts instead.
   * Throws UnknownUserError, SelfFriendError, AlreadyFriendsError.
   */
  async add (username: string, note?: string): Promise<FriendActionResult> {
    checkUsername(username)
    const cleanNote = checkFriendNote(note)
    if (username === this.c.me.username) throw new SelfFriendError()
    if (this.friend(username) != null) throw new AlreadyFriendsError(username)
    if (this.s.incoming.some(e => e.username === username)) return await this.accept(username)
    const profile = await this.c.profile(username)
    const entry: FriendRequestEntry = {
      username, keyId: profile.keyId, signPublic: profile.signPublic, boxPublic: profile.boxPublic, at: Date.now(),
      ...(cleanNote != null ? { note: cleanNote } : {})
    }
    await this.c.state.update(s => { s.outgoing = [...without(s.outgoing, username), entry] })
    const delivery = await this.c.deliver(FRIEND_REQUEST_KIND, cleanNote != null ? { note: cleanNote } : {}, profile)
    return { username, action: 'requested', delivery }
  }

  /** Accept `username`'s request. Throws NoFriendRequestError. */
  async accept (username: string): Promise<FriendActionResult> {
    const request = this.s.incoming.find(e => e.username === username)
    if (request == null) throw new NoFriendRequestError(username)
    const friend = await this.becomeFriends(request)
    const delivery = await this.c.deliver(FRIEND_ACCEPT_KIND, {}, profileOfEntry(friend))
    return { username, action: 'accepted', delivery }
  }

  /** Turn down `username`'s request. Throws NoFriendRequestError. */
  async reject (username: string): Promise<FriendActionResult> {
    const request = this.s.incoming.find(e => e.username === username)
    if (request == null) throw new NoFriendRequestError(username)
    await this.c.state.update(s => { s.incoming = without(s.incoming, username) })
    const delivery = await this.c.deliver(FRIEND_REJECT_KIND, {}, profileOfEntry(request))
    return { username, action: 'rejected', delivery }
  }

  /** End a friendship (or withdraw our pending request). Throws NotFriendError. */
  async remove (username: string): Promise<FriendActionResult> {
    const entry = this.friend(username) ?? this.s.outgoing.find(e => e.username === username)
    if (entry == null) throw new NotFriendError(username)
    await this.c.state.update(s => {
      s.friends = without(s.friends, username)
      s.outgoing = without(s.outgoing, username)
    })
    const delivery = await this.c.deliver(FRIEND_REMOVE_KIND, {}, profileOfEntry(entry))
    return { username, action: 'removed', delivery }
  }

  /** Handle one friend envelope (already checked: for us, and signed by the owner of `from`). */
  async receive (env: Envelope, ctx: EnvelopeContext): Promise<void> {
    const from = env.from
    if (!newerThanLast(this.s, env)) {
      log('ignored a stale %s from %s (%s)', env.kind, from, env.id)
      return
    }
    const sender = ctx.sender
    const seen = (s: PrivateState): void => { if (newerThanLast(s, env)) s.lastFrom[from] = env.id }
    switch (env.kind) {
      case FRIEND_REQUEST_KIND: {
        const body = openEnvelope(env, this.c.keys, friendRequestBodySchema)
        const request: FriendRequestEntry = {
          username: from, keyId: sender.keyId, signPublic: sender.signPublic, boxPublic: sender.boxPublic, at: env.sentAt,
          ...(body.note != null ? { note: body.note } : {})
        }
        if (this.friend(from, sender.signPublic) != null || this.s.outgoing.some(e => e.username === from)) {
          // they ask while we are friends (they lost or dropped us) or while we asked them: both want it
          const wasFriend = this.friend(from) != null
          await this.becomeFriends(request, seen)
          this.c.deliver(FRIEND_ACCEPT_KIND, {}, sender).catch(err => { log('accept to %s failed: %s', from, err.message) })
          if (!wasFriend) this.c.emit('friend:accepted', { username: from })
          return
        }
        await this.c.state.update(s => { s.incoming = [...without(s.incoming, from), request]; seen(s) })
        this.c.emit('friend:request', { username: from, at: env.sentAt, ...(body.note != null ? { note: body.note } : {}) })
        return
      }
      case FRIEND_ACCEPT_KIND: {
        openEnvelope(env, this.c.keys, friendAnswerBodySchema)
        const asked = this.s.outgoing.find(e => e.username === from)
        if (asked == null) {
          log('ignored an accept from %s: no request of ours', from)
          await this.c.state.update(seen)
          return
        }
        await this.becomeFriends(asked, seen, true)
        this.c.emit('friend:accepted', { username: from })
        return
      }
      case FRIEND_REJECT_KIND: {
        openEnvelope(env, this.c.keys, friendAnswerBodySchema)
        const asked = this.s.outgoing.some(e => e.username === from)
        await this.c.state.update(s => { s.outgoing = without(s.outgoing, from); seen(s) })
        if (asked) this.c.emit('friend:rejected', { username: from })
        return
      }
      case FRIEND_REMOVE_KIND: {
        openEnvelope(env, this.c.keys, friendAnswerBodySchema)
        const wasFriend = this.friend(from) != null
        await this.c.state.update(s => {
          s.friends = without(s.friends, from)
          s.incoming = without(s.incoming, from)
          s.outgoing = without(s.outgoing, from)
          seen(s)
        })
        if (wasFriend) this.c.emit('friend:removed', { username: from })
        return
      }
      default:
        throw new Error(`not a friend envelope: ${env.kind}`)
    }
  }

  /** Move a request (ours or theirs) to the friends list, keys pinned. */
  private async becomeFriends (request: FriendRequestEntry, also?: (s: PrivateState) => void, announce = false): Promise<FriendEntry> {
    const friend: FriendEntry = {
      username: request.username,
      keyId: request.keyId,
      signPublic: request.signPublic,
      boxPublic: request.boxPublic,
      since: Date.now(),
      ...(request.note != null ? { note: request.note } : {})
    }
    await this.c.state.update(s => {
      s.incoming = without(s.incoming, friend.username)
      s.outgoing = without(s.outgoing, friend.username)
      if (!s.friends.some(f => f.username === friend.username)) s.friends.push(friend)
      also?.(s)
    })
    this.c.onFriend(friend, undefined, announce)
    return friend
  }
}
