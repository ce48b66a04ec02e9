/**
 * Friends of the logged-in account. The truth is the account's private state (so it
 * follows the user to any peer); every change is also a signed envelope to the other
 * side (friend-request, -accept, -reject, -remove), delivered live or through the
 * mailbox, so both sides agree even when one was offline. Envelopes from one user are
 * applied in the order they were sent: an older one arriving late (a mailbox read after
 * a live notice) is ignored. Each inbound kind has its handler (handlers/).
 */
import type { AbortOptions, Logger } from '@libp2p/interface'
import { defaultLogger } from '@libp2p/logger'
import {
  checkFriendNote, checkUsername, FRIEND_REQUEST_KIND, FRIEND_ACCEPT_KIND, FRIEND_REJECT_KIND, FRIEND_REMOVE_KIND,
  fingerprintOf, type Envelope, type FriendEntry, type FriendRequestEntry, type PrivateState
} from '@conf-chat/protocol'
import type { EnvelopeContext, UserProfile } from '../../account/index.js'
import { AlreadyFriendsError, KeyChangedError, NoFriendRequestError, NotFriendError, RefusalError, SelfFriendError, UnknownKindError } from '../../errors.js'
import {
  becomeFriends, findFriend, markSeen, newerThanLast, profileOfEntry, without, tooOld, pinnedKeyId, pinKey, DEFAULT_REQUEST_LIMITS,
  type BecomeFriendsComponents
} from './friend-state.js'
import { friendHandlers, type FriendEnvelopeHandler } from './handlers/index.js'
import type { FriendActionResult, FriendInfo, FriendRequestInfo, FriendRequests, FriendsComponents, RequestLimits } from './types.js'

/** How many presence lookups `list()` runs at once. */
const PRESENCE_CONCURRENCY = 8

export class Friends {
  private readonly components: FriendsComponents
  private readonly log: Logger
  private readonly now: () => number
  private readonly handlers: ReadonlyMap<string, FriendEnvelopeHandler>
  private readonly limits: RequestLimits
  /** What `becomeFriends` needs. */
  private readonly book: BecomeFriendsComponents

  constructor (components: FriendsComponents) {
    this.components = components
    const logger = components.logger ?? defaultLogger()
    this.log = logger.forComponent('conf-chat:chat:friends')
    this.now = components.now ?? Date.now
    this.limits = components.limits ?? DEFAULT_REQUEST_LIMITS
    this.book = { state: components.state, onFriend: components.onFriend, now: this.now }
    this.handlers = friendHandlers({
      state: components.state,
      keys: components.keys,
      deliver: components.deliver,
      onFriend: components.onFriend,
      emit: components.emit,
      logger,
      now: this.now,
      limits: this.limits
    })
  }

  private get s (): PrivateState { return this.components.state.state }

  /** The friend entry, if `username` is a friend (and, if given, signs with `signPublic`). */
  friend (username: string, signPublic?: Uint8Array): FriendEntry | undefined {
    return findFriend(this.s, username, signPublic)
  }

  /** The friend entry of `username`. Throws NotFriendError. */
  requireFriend (username: string): FriendEntry {
    const f = this.friend(username)
    if (f == null) throw new NotFriendError(username)
    return f
  }

  /** The error to refuse `keyId` with, if `username` was first known by another key. */
  private keyChange (username: string, keyId: string): KeyChangedError | undefined {
    const pinned = pinnedKeyId(this.s, username)
    return pinned != null && pinned !== keyId ? new KeyChangedError(username, fingerprintOf(pinned), fingerprintOf(keyId)) : undefined
  }

  /** Whether we asked `username` to be friends and have no answer yet (their accept may be on the way). */
  asked (username: string): boolean {
    return this.s.outgoing.some(e => e.username === username)
  }

  profileOf (friend: FriendEntry): UserProfile {
    return profileOfEntry(friend)
  }

  requests (): FriendRequests {
    const info = (e: FriendRequestEntry): FriendRequestInfo => ({ username: e.username, at: e.at, ...(e.note != null ? { note: e.note } : {}) })
    const live = this.s.incoming.filter(e => e.at >= this.now() - this.limits.ttlMs)
    return { incoming: live.map(info), outgoing: this.s.outgoing.map(info) }
  }

  /** Friends with online/offline from their presence records (a failed read counts as offline). */
  async list (options: AbortOptions = {}): Promise<FriendInfo[]> {
    const friends = [...this.s.friends].sort((a, b) => a.username.localeCompare(b.username))
    const out: FriendInfo[] = []
    for (let i = 0; i < friends.length; i += PRESENCE_CONCURRENCY) {
      options.signal?.throwIfAborted()
      const chunk = friends.slice(i, i + PRESENCE_CONCURRENCY)
      out.push(...await Promise.all(chunk.map(async f => {
        const presence = await this.components.presenceOf(f.keyId, options).catch(() => undefined)
        this.components.onFriend(f, presence)
        return { username: f.username, since: f.since, online: presence?.online === true, ...(f.note != null ? { note: f.note } : {}) }
      })))
    }
    // an aborted read reads as offline: do not pass that off as the answer
    options.signal?.throwIfAborted()
    return out
  }

  /**
   * Ask `username` to be friends. If they already asked us, this accepts instead.
   * Throws UnknownUserError, SelfFriendError, AlreadyFriendsError, and KeyChangedError
   * when the name now reads with another key than the one we first knew them by.
   */
  async add (username: string, note?: string, options: AbortOptions = {}): Promise<FriendActionResult> {
    checkUsername(username)
    const cleanNote = checkFriendNote(note)
    if (username === this.components.me.username) throw new SelfFriendError()
    if (this.friend(username) != null) throw new AlreadyFriendsError(username)
    if (this.s.incoming.some(e => e.username === username)) return await this.accept(username, options)
    const profile = await this.components.profile(username, options)
    const changed = this.keyChange(username, profile.keyId)
    if (changed != null) throw changed
    const entry: FriendRequestEntry = {
      username, keyId: profile.keyId, signPublic: profile.signPublic, boxPublic: profile.boxPublic, at: this.now(),
      ...(cleanNote != null ? { note: cleanNote } : {})
    }
    await this.components.state.update(s => { s.outgoing = [...without(s.outgoing, username), entry]; pinKey(username, profile.keyId)(s) })
    const delivery = await this.components.deliver(FRIEND_REQUEST_KIND, cleanNote != null ? { note: cleanNote } : {}, profile, options)
    return { username, action: 'requested', delivery }
  }

  /** Accept `username`'s request. Throws NoFriendRequestError. */
  async accept (username: string, options: AbortOptions = {}): Promise<FriendActionResult> {
    const request = this.s.incoming.find(e => e.username === username)
    if (request == null) throw new NoFriendRequestError(username)
    const { friend, written } = becomeFriends(this.book, request)
    await written
    const delivery = await this.components.deliver(FRIEND_ACCEPT_KIND, {}, profileOfEntry(friend), options)
    return { username, action: 'accepted', delivery }
  }

  /** Turn down `username`'s request. Throws NoFriendRequestError. */
  async reject (username: string, options: AbortOptions = {}): Promise<FriendActionResult> {
    const request = this.s.incoming.find(e => e.username === username)
    if (request == null) throw new NoFriendRequestError(username)
    await this.components.state.update(s => { s.incoming = without(s.incoming, username) })
    const delivery = await this.components.deliver(FRIEND_REJECT_KIND, {}, profileOfEntry(request), options)
    return { username, action: 'rejected', delivery }
  }

  /** End a friendship (or withdraw our pending request). Throws NotFriendError. */
  async remove (username: string, options: AbortOptions = {}): Promise<FriendActionResult> {
    const entry = this.friend(username) ?? this.s.outgoing.find(e => e.username === username)
    if (entry == null) throw new NotFriendError(username)
    await this.components.state.update(s => {
      s.friends = without(s.friends, username)
      s.outgoing = without(s.outgoing, username)
    })
    const delivery = await this.components.deliver(FRIEND_REMOVE_KIND, {}, profileOfEntry(entry), options)
    return { username, action: 'removed', delivery }
  }

  /**
   * Handle one friend envelope (already checked: for us, and signed by the owner of
   * `from`) with the handler of its kind; a stale one is ignored. Throws
   * UnknownKindError (code 'unknown-kind') for a kind that is not a friend kind.
   */
  async receive (env: Envelope, ctx: EnvelopeContext, options: AbortOptions = {}): Promise<void> {
    options.signal?.throwIfAborted()
    const handler = this.handlers.get(env.kind)
    if (handler == null) throw new UnknownKindError(env.kind)
    const err = this.keyChange(env.from, ctx.sender.keyId)
    if (err != null) {
      // the name's owner is not the one we knew: told to the user, never applied
      this.log('refused a %s from %s: %s', env.kind, env.from, err.message)
      this.components.emit('friend:key-changed', { username: env.from, pinned: err.pinned, found: err.found })
      throw err
    }
    if (tooOld(env, this.now(), this.limits.ttlMs)) throw new RefusalError('stale', `made more than ${Math.round(this.limits.ttlMs / 86_400_000)} days ago`)
    if (!newerThanLast(this.s, env)) {
      this.log('ignored a stale %s from %s (%s)', env.kind, env.from, env.id)
      return
    }
    await handler.handle({ envelope: env, sender: ctx.sender, seen: markSeen(env) }, options)
  }
}
