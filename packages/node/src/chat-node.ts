/**
 * ChatNode: the core library's public face. One object per running peer: it owns the
 * libp2p peer, and holds at most one logged-in user (the session). Everything the
 * terminal UI does is a method or an event of this class.
 */
import { TypedEventEmitter } from '@libp2p/interface'
import { logger } from '@libp2p/logger'
import { z } from 'zod'
import {
  createEnvelope, openEnvelope, keyIdOf, bytesEqual, type Envelope, type AccountKeys
} from '@conf-chat/protocol'
import { ChatPeer, type ChatPeerInit } from './network/peer.js'
import { Accounts, profileOf, type AccountsInit, type Account, type LoginTimings, type UserProfile } from './account/accounts.js'
import { Presence, type PresenceInit, type PresenceInfo } from './account/presence.js'
import { Directory, type DirectoryUser } from './account/directory.js'
import { Messenger, type MessengerInit, type DeliveryResult } from './delivery/messenger.js'
import { AlreadyLoggedInError, NetworkUnreachableError, NotLoggedInError, UnknownUserError } from './errors.js'
import { Messaging, type MessagingInit, type MessagingEvents } from './chat/messaging.js'
import type { FriendActionResult, FriendInfo, FriendRequests } from './chat/friends/friends.js'
import type { ChatMessage, IncomingMessage } from './chat/direct/direct-messages.js'
import type { Delivery, QueuedEnvelope } from './delivery/outbox.js'
import type { ConferenceChangeResult, ConferenceInfo, ConferenceMemberInfo, ConferenceMessage, ConferenceSendResult } from './chat/conferences/conferences.js'
import type { PeerId } from '@libp2p/interface'
import type { EnvelopeContext, EnvelopeKindHandler, Session, SessionEndReason } from './account/session.js'

const log = logger('conf-chat:node')

export interface ChatNodeInit extends ChatPeerInit, AccountsInit, PresenceInit, MessengerInit, MessagingInit {}



export interface ChatNodeEvents extends MessagingEvents {
  'session:started': CustomEvent<{ username: string }>
  /** `takeover`: the account logged in on another peer, and this peer logged it out. */
  'session:ended': CustomEvent<{ username: string, reason: SessionEndReason }>
}



export interface WhoAmI {
  username: string
  fullName: string
  keyId: string
  peerId: string
  addrs: string[]
  since: number
}

const takeoverSchema = z.object({ peerId: z.string().max(128), since: z.number().int() }).strict()

export class ChatNode extends TypedEventEmitter<ChatNodeEvents> {
  readonly peer: ChatPeer
  readonly init: ChatNodeInit
  private _accounts?: Accounts
  private _presence?: Presence
  private _directory?: Directory
  private _messenger?: Messenger
  private _messaging?: Messaging
  private _session?: Session
  private refreshTimer?: NodeJS.Timeout
  private readonly kinds = new Map<string, EnvelopeKindHandler>()
  /** Verified owners of usernames; a name's key never changes. */
  private readonly profiles = new Map<string, UserProfile>()

  constructor (init: ChatNodeInit) {
    super()
    this.init = init
    this.peer = new ChatPeer(init)
    this.onEnvelope('session-takeover', async (env, ctx) => { await this.onTakeover(env, ctx) })
  }

  get accounts (): Accounts { return this.need(this._accounts) }
  get presence (): Presence { return this.need(this._presence) }
  get directory (): Directory { return this.need(this._directory) }
  get messenger (): Messenger { return this.need(this._messenger) }
  /** Friends, direct messages, mailbox, outbox and history (messaging.ts). */
  get messaging (): Messaging { return this.need(this._messaging) }
  get session (): Session | undefined { return this._session }

  async start (): Promise<this> {
    await this.peer.start()
    this._accounts = new Accounts(this.peer.records, this.init)
    this._presence = new Presence(this.peer.records, this.init)
    this._directory = new Directory(this.peer.sets, {
      profile: async username => await this.profile(username).catch(() => undefined),
      online: async keyId => (await this.presence.read(keyId))?.online === true
    })
    this._messenger = new Messenger(this.peer.libp2p, this.init)
    await this._messenger.start(async (env, from) => await this.receive(env, from))
    this._messaging = new Messaging(this, this.init)
    await this._messaging.start()
    return this
  }

  async stop (): Promise<void> {
    if (this._session != null) {
      await this.logout('stopped').catch(err => { log('logout on stop failed: %s', err.message) })
    }
    await this._messaging?.stop()
    await this._messenger?.stop()
    await this.peer.stop()
  }

  /** Register a new account and log it in on this peer. */
  async register (input: { username: string, password: string, fullName: string }): Promise<UserProfile> {
    this.assertLoggedOut()
    await this.assertNetwork()
    const account = await this.accounts.register(input)
    await this.publishDirectoryEntry(account)
    await this.beginSession(account)
    return profileOf(account.record)
  }

  /** Log in from this peer: works for an account made on any peer of the network. */
  async login (username: string, password: string): Promise<{ profile: UserProfile, timings: LoginTimings }> {
    this.assertLoggedOut()
    await this.peer.ensureConnected()
    let result
    try {
      result = await this.accounts.login(username, password)
    } catch (err: any) {
      if (err.name === 'UnknownUserError' && this.peer.libp2p.getConnections().length === 0) throw new NetworkUnreachableError()
      throw err
    }
    await this.beginSession(result.account)
    // re-list the account in case its directory holders all went away (idempotent)
    this.publishDirectoryEntry(result.account).catch(err => { log('directory refresh failed: %s', err.message) })
    return { profile: profileOf(result.account.record), timings: result.timings }
  }

  /** Registered users whose name starts with `prefix`, with online status, online first. */
  async users (prefix = ''): Promise<DirectoryUser[]> {
    return await this.directory.list(prefix)
  }

  /** Users by username prefix or by a part of the full name (any case). */
  async searchUsers (text: string): Promise<DirectoryUser[]> {
    return await this.directory.search(text)
  }

  private async publishDirectoryEntry (account: Account): Promise<void> {
    await this.directory.publish({ username: account.username, fullName: account.fullName, createdAt: account.record.payload.createdAt, keys: account.keys })
  }

  async logout (reason: SessionEndReason = 'logout'): Promise<void> {
    const session = this.requireSession()
    await this._messaging?.sessionEnding(session)
    this.endSession(reason)
    await this.presence.publish(this.presenceOwner(session), 'offline', this.peerInfo())
  }

  async changePassword (oldPassword: string, newPassword: string): Promise<void> {
    const session = this.requireSession()
    session.account = await this.accounts.changePassword(session.account, oldPassword, newPassword)
  }

  whoami (): WhoAmI {
    const { account, since } = this.requireSession()
    return { username: account.username, fullName: account.fullName, keyId: account.keyId, ...this.peerInfo(), since }
  }

  /** A user's verified profile (public keys), from the DHT; cached, as keys never change. */
  async profile (username: string): Promise<UserProfile> {
    const cached = this.profiles.get(username)
    if (cached != null) return cached
    const profile = await this.accounts.profile(username)
    if (profile == null) throw new UnknownUserError(username)
    this.profiles.set(username, profile)
    return profile
  }

  async presenceOf (username: string): Promise<PresenceInfo | undefined> {
    return await this.presence.read((await this.profile(username)).keyId)
  }

  // ------------------------------------------------------------ friends and direct messages (messaging.ts)

  /** Ask `username` to be friends (accepts instead if they asked us). */
  async addFriend (username: string, note?: string): Promise<FriendActionResult> { return await this.messaging.addFriend(username, note) }
  async acceptFriend (username: string): Promise<FriendActionResult> { return await this.messaging.acceptFriend(username) }
  async rejectFriend (username: string): Promise<FriendActionResult> { return await this.messaging.rejectFriend(username) }
  /** End a friendship, or withdraw a request of ours. */
  async removeFriend (username: string): Promise<FriendActionResult> { return await this.messaging.removeFriend(username) }
  async friendRequests (): Promise<FriendRequests> { return await this.messaging.friendRequests() }
  /** Friends with online/offline status. */
  async friends (): Promise<FriendInfo[]> { return await this.messaging.friends() }
  async onlineFriends (): Promise<FriendInfo[]> { return await this.messaging.onlineFriends() }
  /** Send a direct message to a friend: delivered live, queued (mailbox or outbox), or failed. */
  async sendMessage (username: string, text: string): Promise<Delivery> { return await this.messaging.sendMessage(username, text) }
  /** The conversation with `username`, both directions, oldest first. */
  async history (username: string): Promise<ChatMessage[]> { return await this.messaging.history(username) }
  /** Read the mailbox now (also done at login and periodically). */
  async checkMailbox (): Promise<IncomingMessage[]> { return await this.messaging.checkMailbox() }
  /** What this peer's outbox still has to send. */
  async queued (): Promise<QueuedEnvelope[]> { return await this.messaging.queued() }

  // ------------------------------------------------------------ conferences (conferences.ts)
  // `id` is a conference id (`conf-` and 16 hex digits) or a unique start of one.

  /** Create a conference with friends; each is told (live, or at their next login). */
  async createConference (name: string, usernames: string[]): Promise<ConferenceChangeResult> { return await (await this.messaging.conferences()).create(name, usernames) }
  /** The user's conferences with their members and how many are online. */
  async conferences (): Promise<ConferenceInfo[]> { return await (await this.messaging.conferences()).list() }
  async conferenceMembers (id: string): Promise<{ conference: ConferenceInfo, members: ConferenceMemberInfo[] }> { return await (await this.messaging.conferences()).members(id) }
  /** Send to every other member: live to those online, to the mailboxes of the others. */
  async sendConferenceMessage (id: string, text: string): Promise<ConferenceSendResult> { return await (await this.messaging.conferences()).send(id, text) }
  /** The owner invites more friends: they get what is sent from now on. */
  async inviteToConference (id: string, usernames: string[]): Promise<ConferenceChangeResult> { return await (await this.messaging.conferences()).invite(id, usernames) }
  /** The owner removes members. */
  async removeFromConference (id: string, usernames: string[]): Promise<ConferenceChangeResult> { return await (await this.messaging.conferences()).remove(id, usernames) }
  /** Leave a conference: the others are told, and nothing sent afterwards reaches this user. */
  async leaveConference (id: string): Promise<ConferenceChangeResult> { return await (await this.messaging.conferences()).leave(id) }
  /** The messages this member sent and received in a conference, oldest first, from any peer. */
  async conferenceHistory (id: string): Promise<{ conference: ConferenceInfo, messages: ConferenceMessage[] }> { return await (await this.messaging.conferences()).history(id) }

  /** Whether envelopes of `kind` have a handler here. */
  handlesKind (kind: string): boolean {
    return this.kinds.has(kind)
  }

  /** Register what to do with envelopes of one kind (friends, messages, conferences...). */
  onEnvelope (kind: string, handler: EnvelopeKindHandler): void {
    this.kinds.set(kind, handler)
  }

  /** Seal `content` to `to` and deliver it live to the peer their presence names. */
  async sendLive (kind: string, content: unknown, to: UserProfile, where: { peerId: string, addrs: string[] }): Promise<{ envelope: Envelope, result: DeliveryResult }> {
    const session = this.requireSession()
    const envelope = createEnvelope(kind, content, { username: session.account.username, keys: session.account.keys }, to)
    return { envelope, result: await this.messenger.send(where.peerId, where.addrs, envelope) }
  }

  /**
   * Check and dispatch one envelope, from a stream or a mailbox: it must be for the
   * logged-in user, and its signer must own the sender's name. Throws with the reason
   * when it is refused.
   */
  async accept (envelope: Envelope, live: boolean, peer?: PeerId): Promise<void> {
    const session = this._session
    if (session == null) throw new Error('no user logged in here')
    if (envelope.toKeyId !== session.account.keyId || envelope.to !== session.account.username) throw new Error('not for the user logged in here')
    const handler = this.kinds.get(envelope.kind)
    if (handler == null) throw new Error(`unknown envelope kind ${envelope.kind}`)
    // a friend's keys are in the private state: a live message is acked without a DHT read
    const sender = this._messaging?.friendProfile(envelope.from, envelope.fromKey) ??
      await this.profile(envelope.from).catch(() => undefined)
    if (sender == null || !bytesEqual(sender.signPublic, envelope.fromKey)) {
      throw new Error(`forged sender: ${envelope.from} does not own the signing key`)
    }
    await handler(envelope, { session, sender, live, peer })
  }

  private async receive (envelope: Envelope, from: PeerId): Promise<{ ok: boolean, error?: string }> {
    try {
      await this.accept(envelope, true, from)
      return { ok: true }
    } catch (err: any) {
      log('refused envelope %s (%s) from %s: %s', envelope.id, envelope.kind, envelope.from, err.message)
      this._messaging?.refused(envelope, String(err.message), true)
      return { ok: false, error: String(err.message) }
    }
  }

  private async beginSession (account: Account): Promise<void> {
    const since = Date.now()
    const previous = await this.presence.read(account.keyId).catch(() => undefined)
    const session: Session = { account, since }
    this._session = session
    this.profiles.set(account.username, profileOf(account.record))
    await this._messaging?.sessionStarting(session)
    await this.presence.publish(this.presenceOwner(session), 'online', this.peerInfo())
    if (previous?.online === true && previous.peerId !== this.peer.peerId.toString()) {
      // tell the other peer at once; it would also notice at its next refresh
      const self = profileOf(account.record)
      this.sendLive('session-takeover', { peerId: this.peer.peerId.toString(), since }, self, previous)
        .catch(err => { log('takeover notice failed: %s', err.message) })
    }
    this.scheduleRefresh(session)
    this.dispatchEvent(new CustomEvent('session:started', { detail: { username: account.username } }))
  }

  private endSession (reason: SessionEndReason): void {
    const session = this._session
    if (session == null) return
    clearTimeout(this.refreshTimer)
    this._session = undefined
    this.dispatchEvent(new CustomEvent('session:ended', { detail: { username: session.account.username, reason } }))
  }

  /** Refresh presence every `refreshMs`, counted from the start of each refresh: a refresh
   * slowed by unreachable peers must not push the next one past the record's expiry. */
  private scheduleRefresh (session: Session, delayMs = this.presence.refreshMs): void {
    this.refreshTimer = setTimeout(() => {
      const started = Date.now()
      this.refreshPresence(session)
        .catch(err => { log('presence refresh failed: %s', err.message) })
        .finally(() => {
          if (this._session === session) this.scheduleRefresh(session, Math.max(0, this.presence.refreshMs - (Date.now() - started)))
        })
    }, delayMs)
    this.refreshTimer.unref()
  }

  /** Refresh our presence, unless a later login of the same account took over. */
  private async refreshPresence (session: Session): Promise<void> {
    const current = await this.presence.read(session.account.keyId)
    if (this._session !== session) return
    if (current?.online === true && current.peerId !== this.peer.peerId.toString() && (current.since ?? 0) > session.since) {
      this.endSession('takeover')
      return
    }
    await this.presence.publish(this.presenceOwner(session), 'online', this.peerInfo())
  }

  private async onTakeover (env: Envelope, ctx: EnvelopeContext): Promise<void> {
    if (!bytesEqual(env.fromKey, ctx.session.account.signPublic)) throw new Error('takeover not signed by the account')
    const body = openEnvelope(env, ctx.session.account.keys, takeoverSchema)
    if (body.since <= ctx.session.since) throw new Error('takeover older than this session')
    this.endSession('takeover')
  }

  private presenceOwner (session: Session): { username: string, keyId: string, keys: AccountKeys, since: number } {
    return { username: session.account.username, keyId: keyIdOf(session.account.signPublic), keys: session.account.keys, since: session.since }
  }

  private peerInfo (): { peerId: string, addrs: string[] } {
    return { peerId: this.peer.peerId.toString(), addrs: this.peer.multiaddrs.map(ma => ma.toString()) }
  }

  requireSession (): Session {
    if (this._session == null) throw new NotLoggedInError()
    return this._session
  }

  private assertLoggedOut (): void {
    if (this._session != null) throw new AlreadyLoggedInError(this._session.account.username)
  }

  private async assertNetwork (): Promise<void> {
    if (!await this.peer.ensureConnected()) throw new NetworkUnreachableError()
  }

  private need<T> (v: T | undefined): T {
    if (v == null) throw new Error('ChatNode not started')
    return v
  }
}
