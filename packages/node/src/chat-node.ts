/**
 * The ChatNode implementation: it owns the libp2p peer and wires the layers: the
 * account layer (accounts, profiles, presence, directory, the session) over the delivery
 * layer (chat protocol, envelope router, mailbox, outbox) over the network layer. Only
 * src/index.ts imports this file; everything else sees the ChatNode interface (api.ts).
 */
import { TypedEventEmitter, type AbortOptions, type Logger, type PeerId } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { createEnvelope, type Envelope } from '@conf-chat/protocol'
import { ChatPeer } from './network/index.js'
import { LocalStore } from './storage/index.js'
import { EnvelopeRouter, Mailbox, Messenger, type Delivery, type QueuedEnvelope } from './delivery/index.js'
import {
  Accounts, Directory, Presence, Profiles, SessionKeeper, TAKEOVER_KIND, checkInbound, profileOf,
  type Account, type DirectoryUser, type EnvelopeContext, type LoginTimings, type PeerInfo, type PresenceInfo, type Session, type UserProfile
} from './account/index.js'
import {
  Messaging, type MessagingEvents, type FriendActionResult, type FriendInfo, type FriendRequests, type ChatMessage,
  type IncomingMessage, type ConferenceChangeResult, type ConferenceInfo, type ConferenceMemberInfo, type ConferenceMessage, type ConferenceSendResult
} from './chat/index.js'
import { NetworkUnreachableError, NotStartedError, UnknownKindError, refusalOf } from './errors.js'
import type { ChatNode, ChatNodeEvents, ChatNodeInit, ChatNodeStatus, WhoAmI } from './api.js'

/** The parts that exist while the node runs. */
interface Parts {
  log: Logger
  local: LocalStore
  router: EnvelopeRouter<EnvelopeContext>
  messenger: Messenger
  accounts: Accounts
  profiles: Profiles
  presence: Presence
  directory: Directory
  sessions: SessionKeeper
  messaging: Messaging
  /** Tries the outbox when the peer (re)joins; removed at stop. */
  onJoined: () => void
  onAddresses: () => void
  addressesTimer: { timer?: NodeJS.Timeout }
  /** Checks a friend's peer when the last connection to it closes; removed at stop. */
  onPeerGone: (evt: CustomEvent<PeerId>) => void
}

/** How long after an address change (a relay reservation) the friends and the presence record are told: one notice for changes that come together. */
const ADDRESS_NOTICE_DELAY_MS = 500

export class DefaultChatNode extends TypedEventEmitter<ChatNodeEvents> implements ChatNode {
  readonly peer: ChatPeer
  private readonly init: ChatNodeInit
  private _status: ChatNodeStatus = 'stopped'
  private parts?: Parts

  constructor (init: ChatNodeInit) {
    super()
    this.init = init
    this.peer = new ChatPeer(init)
  }

  get status (): ChatNodeStatus { return this._status }

  get session (): Session | undefined { return this.parts?.sessions.current }

  async start (): Promise<this> {
    if (this._status !== 'stopped') return this
    this._status = 'starting'
    try {
      await this.peer.start()
      this.parts = await this.build()
      this._status = 'started'
      return this
    } catch (err) {
      await this.stop().catch(() => {})
      throw err
    }
  }

  /**
   * Log the user out (friends told, pending writes, presence "offline") and stop the peer.
   * `options.signal` cuts the logout's writes short (a program given a time to stop):
   * history entries they did not write stay marked on this peer for its next login.
   */
  async stop (options: AbortOptions = {}): Promise<void> {
    if (this._status === 'stopped' && this.parts == null && this.peer.status === 'stopped') return
    this._status = 'stopping'
    const parts = this.parts
    if (parts?.sessions.current != null) {
      await parts.sessions.logout('stopped', options).catch(err => { parts.log('logout on stop failed: %s', err.message) })
    }
    if (parts != null) {
      this.peer.removeEventListener('network:joined', parts.onJoined)
      this.peer.removeEventListener('network:addresses', parts.onAddresses)
      clearTimeout(parts.addressesTimer.timer)
      this.peer.libp2p.removeEventListener('peer:disconnect', parts.onPeerGone)
    }
    await parts?.messaging.stop()
    await parts?.messenger.stop()
    await this.peer.stop()
    await parts?.local.close()
    this.parts = undefined
    this._status = 'stopped'
  }

  private async build (): Promise<Parts> {
    const logger = this.peer.logger
    const log = logger.forComponent('conf-chat:node')
    const local = new LocalStore(this.init.dataDir, { logger })
    await local.open()
    try {
      return await this.wire(local, log)
    } catch (err) {
      await local.close().catch(() => {})
      throw err
    }
  }

  private async wire (local: LocalStore, log: Logger): Promise<Parts> {
    const peer = this.peer
    const init = this.init
    const logger = peer.logger
    const router = new EnvelopeRouter<EnvelopeContext>()
    const messenger = new Messenger({
      ...pick(peer.libp2p, 'peerId', 'peerStore', 'handle', 'unhandle', 'dialProtocol', 'getConnections'),
      relayedStreamEnded: () => { messaging?.relayedStreamEnded() },
      logger
    }, init)
    const mailbox = new Mailbox({ sets: peer.sets, isDhtServer: () => peer.isDhtServer(), logger })
    mailbox.registerRules()
    const emit = <K extends keyof MessagingEvents>(type: K, detail: MessagingEvents[K]['detail']): void => {
      this.dispatchEvent(new CustomEvent(type, { detail }) as any)
    }
    const accounts = new Accounts({
      records: peer.records,
      onRetry: (username, attempt, retryInMs) => { emit('network:slow', { what: `the account ${username}`, attempt, retryInMs }) },
      // the read of the mailbox at login needs its holders: looked up while the password is checked
      onFound: profile => { mailbox.prefetchHolders(profile.keyId) },
      logger
    }, init)
    const profiles = new Profiles({ lookup: async (username, options) => await accounts.profile(username, options) })
    const presence = new Presence({ records: peer.records, logger }, init)
    const directory = new Directory({
      sets: peer.sets,
      profile: async (username, options) => await profiles.get(username, options).catch(() => undefined),
      online: async (keyId, options) => (await presence.read(keyId, options))?.online === true,
      logger
    })
    const whereAmI = (): PeerInfo => ({ peerId: peer.peerId.toString(), addrs: peer.multiaddrs.map(ma => ma.toString()) })
    let messaging: Messaging | undefined
    let sessions: SessionKeeper | undefined
    const accept = async (envelope: Envelope, live: boolean, from?: PeerId, options?: AbortOptions): Promise<void> => {
      // a kind nobody here handles costs no lookup of its sender
      if (!router.handles(envelope.kind)) throw new UnknownKindError(envelope.kind)
      const ctx = await checkInbound({
        session: () => sessions?.current,
        knownProfile: (username, signPublic) => messaging?.friendProfile(username, signPublic),
        profile: async (username, opts) => await profiles.get(username, opts)
      }, envelope, live, from, options)
      await router.route(envelope, ctx, options)
    }
    messaging = new Messaging({
      records: peer.records,
      local,
      mailbox,
      messenger,
      presence,
      reachable: async (peerId, options) => {
        try {
          await peer.libp2p.dial(peerIdFromString(peerId), options)
          return true
        } catch {
          return false
        }
      },
      handle: (kind, handler) => { router.handle(kind, handler) },
      handles: kind => router.handles(kind),
      accept: async (envelope, live, options) => { await accept(envelope, live, undefined, options) },
      profile: async (username, options) => await profiles.get(username, options),
      session: () => sessions?.current,
      checkSession: async () => { await sessions?.checkNow() },
      whereAmI,
      emit,
      logger
    }, init)
    const chat = messaging
    sessions = new SessionKeeper({
      presence,
      peerInfo: whereAmI,
      notify: async (session, kind, content, to, where, ackTimeoutMs) => await messenger.send(where.peerId, where.addrs, sealAs(session, kind, content, to), { ackTimeoutMs }),
      hooks: {
        starting: async (session, options) => {
          profiles.remember(profileOf(session.account.record))
          await chat.sessionStarting(session, options)
        },
        started: (session, handedOver) => {
          chat.sessionStarted(session, handedOver)
          this.dispatchEvent(new CustomEvent('session:started', { detail: { username: session.account.username } }))
        },
        ending: async (session, options) => { await chat.sessionEnding(session, options) },
        abandoned: session => { chat.sessionAbandoned(session) },
        ended: async (session, reason) => {
          const finished = chat.sessionEnded(session, reason)
          this.dispatchEvent(new CustomEvent('session:ended', { detail: { username: session.account.username, reason } }))
          await finished
        }
      },
      logger
    })
    const keeper = sessions
    router.handle(TAKEOVER_KIND, async (env, ctx) => { await keeper.onTakeover(env, ctx) })
    await messenger.start(async (envelope, from, options) => {
      try {
        // the messenger's limit for handling one envelope, and its stop, reach every read
        await accept(envelope, true, from, options)
        return { ok: true }
      } catch (err) {
        chat.refused(envelope, err, true)
        return { ok: false, ...refusalOf(err) }
      }
    })
    await messaging.start()
    const onJoined = (): void => { chat.networkJoined() }
    peer.addEventListener('network:joined', onJoined)
    // two reservations usually arrive within a moment of each other: one notice for both
    const addressesTimer: { timer?: NodeJS.Timeout } = {}
    const onAddresses = (): void => {
      clearTimeout(addressesTimer.timer)
      addressesTimer.timer = setTimeout(() => { chat.addressesChanged() }, ADDRESS_NOTICE_DELAY_MS)
      addressesTimer.timer.unref()
    }
    peer.addEventListener('network:addresses', onAddresses)
    const onPeerGone = (evt: CustomEvent<PeerId>): void => { chat.peerDisconnected(evt.detail.toString()) }
    peer.libp2p.addEventListener('peer:disconnect', onPeerGone)
    return { log, local, router, messenger, accounts, profiles, presence, directory, sessions, messaging, onJoined, onAddresses, addressesTimer, onPeerGone }
  }

  private get p (): Parts {
    if (this.parts == null) throw new NotStartedError('ChatNode not started')
    return this.parts
  }

  // ------------------------------------------------------------ accounts and the session

  async register (input: { username: string, password: string, fullName: string }, options: AbortOptions = {}): Promise<UserProfile> {
    const { sessions, accounts, log } = this.p
    sessions.assertLoggedOut()
    const connected = await this.peer.ensureConnected(undefined, options)
    options.signal?.throwIfAborted()
    if (!connected) throw new NetworkUnreachableError()
    const account = await accounts.register(input, options)
    // the account exists now whatever the directory says: a listing that fails is tried again at each login
    await this.publishDirectoryEntry(account, options).catch(err => { log('directory entry of %s not stored now: %s', account.username, err.message) })
    await sessions.begin(account, options)
    return profileOf(account.record)
  }

  async login (username: string, password: string, options: AbortOptions = {}): Promise<{ profile: UserProfile, timings: LoginTimings }> {
    const { sessions, accounts, log } = this.p
    sessions.assertLoggedOut()
    await this.peer.ensureConnected(undefined, options)
    options.signal?.throwIfAborted()
    let result
    try {
      result = await accounts.login(username, password, options)
    } catch (err: any) {
      if (err.name === 'UnknownUserError' && this.peer.libp2p.getConnections().length === 0) throw new NetworkUnreachableError()
      throw err
    }
    await sessions.begin(result.account, options)
    // re-list the account in case its directory holders all went away (idempotent)
    this.publishDirectoryEntry(result.account).catch(err => { log('directory refresh failed: %s', err.message) })
    return { profile: profileOf(result.account.record), timings: result.timings }
  }

  async logout (options: AbortOptions = {}): Promise<void> {
    await this.p.sessions.logout('logout', options)
  }

  async changePassword (oldPassword: string, newPassword: string, options: AbortOptions = {}): Promise<void> {
    const session = this.p.sessions.require()
    session.account = await this.p.accounts.changePassword(session.account, oldPassword, newPassword, options)
  }

  whoami (): WhoAmI {
    const { account, since } = this.p.sessions.require()
    return { username: account.username, fullName: account.fullName, keyId: account.keyId, peerId: this.peer.peerId.toString(), addrs: this.peer.multiaddrs.map(ma => ma.toString()), since }
  }

  async users (prefix = '', options: AbortOptions = {}): Promise<DirectoryUser[]> { return await this.p.directory.list(prefix, options) }
  async searchUsers (text: string, options: AbortOptions = {}): Promise<DirectoryUser[]> { return await this.p.directory.search(text, options) }
  async profile (username: string, options: AbortOptions = {}): Promise<UserProfile> { return await this.p.profiles.get(username, options) }

  async presenceOf (username: string, options: AbortOptions = {}): Promise<PresenceInfo | undefined> {
    return await this.p.presence.read((await this.profile(username, options)).keyId, options)
  }

  private async publishDirectoryEntry (account: Account, options: AbortOptions = {}): Promise<void> {
    await this.p.directory.publish({ username: account.username, fullName: account.fullName, createdAt: account.record.payload.createdAt, keys: account.keys }, options)
  }

  // ------------------------------------------------------------ friends and direct messages

  async addFriend (username: string, note?: string, options: AbortOptions = {}): Promise<FriendActionResult> { return await this.p.messaging.addFriend(username, note, options) }
  async acceptFriend (username: string, options: AbortOptions = {}): Promise<FriendActionResult> { return await this.p.messaging.acceptFriend(username, options) }
  async rejectFriend (username: string, options: AbortOptions = {}): Promise<FriendActionResult> { return await this.p.messaging.rejectFriend(username, options) }
  async removeFriend (username: string, options: AbortOptions = {}): Promise<FriendActionResult> { return await this.p.messaging.removeFriend(username, options) }
  /** From the private state in memory: nothing to cancel. */
  async friendRequests (_options: AbortOptions = {}): Promise<FriendRequests> { return await this.p.messaging.friendRequests() }
  async friends (options: AbortOptions = {}): Promise<FriendInfo[]> { return await this.p.messaging.friends(options) }
  async onlineFriends (options: AbortOptions = {}): Promise<FriendInfo[]> { return (await this.friends(options)).filter(f => f.online) }
  async sendMessage (username: string, text: string, options: AbortOptions = {}): Promise<Delivery> { return await this.p.messaging.sendMessage(username, text, options) }
  async history (username: string, options: AbortOptions = {}): Promise<ChatMessage[]> { return await this.p.messaging.history(username, options) }
  async markRead (username: string, options: AbortOptions = {}): Promise<number> { return await this.p.messaging.markRead(username, options) }
  async markConferenceRead (id: string, options: AbortOptions = {}): Promise<number> { return await this.p.messaging.markConferenceRead(id, options) }
  get readReceipts (): boolean { return this.p.messaging.readReceipts }
  set readReceipts (on: boolean) { this.p.messaging.readReceipts = on }
  async checkMailbox (options: AbortOptions = {}): Promise<IncomingMessage[]> { return await this.p.messaging.checkMailbox(options) }
  async queued (options: AbortOptions = {}): Promise<QueuedEnvelope[]> { return await this.p.messaging.queued(options) }
  async flush (options: AbortOptions = {}): Promise<boolean> { return await this.p.messaging.flush(options) }

  // ------------------------------------------------------------ conferences

  async createConference (name: string, usernames: string[], options: AbortOptions = {}): Promise<ConferenceChangeResult> { return await (await this.p.messaging.conferences()).create(name, usernames, options) }
  async conferences (options: AbortOptions = {}): Promise<ConferenceInfo[]> { return await (await this.p.messaging.conferences()).list(options) }
  async conferenceMembers (id: string, options: AbortOptions = {}): Promise<{ conference: ConferenceInfo, members: ConferenceMemberInfo[] }> { return await (await this.p.messaging.conferences()).members(id, options) }
  async sendConferenceMessage (id: string, text: string, options: AbortOptions = {}): Promise<ConferenceSendResult> { return await (await this.p.messaging.conferences()).send(id, text, options) }
  async inviteToConference (id: string, usernames: string[], options: AbortOptions = {}): Promise<ConferenceChangeResult> { return await (await this.p.messaging.conferences()).invite(id, usernames, options) }
  async removeFromConference (id: string, usernames: string[], options: AbortOptions = {}): Promise<ConferenceChangeResult> { return await (await this.p.messaging.conferences()).remove(id, usernames, options) }
  async leaveConference (id: string, options: AbortOptions = {}): Promise<ConferenceChangeResult> { return await (await this.p.messaging.conferences()).leave(id, options) }
  async conferenceHistory (id: string, options: AbortOptions = {}): Promise<{ conference: ConferenceInfo, messages: ConferenceMessage[] }> { return await (await this.p.messaging.conferences()).history(id, options) }

}

function sealAs (session: Session, kind: string, content: unknown, to: UserProfile): Envelope {
  return createEnvelope(kind, content, { username: session.account.username, keys: session.account.keys }, to)
}

/** Only the named parts of an object (a component gets what it needs, not the whole node). */
function pick<T extends object, K extends keyof T> (from: T, ...keys: K[]): Pick<T, K> {
  const out = {} as Pick<T, K>
  for (const k of keys) {
    const v = from[k]
    out[k] = (typeof v === 'function' ? v.bind(from) : v) as T[K]
  }
  return out
}
