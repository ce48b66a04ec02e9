/**
 * Friends, direct messages, conferences, presence notices, the mailbox and the outbox,
 * put together for a ChatNode. Peer-wide parts (the outbox, the envelope handlers) live
 * as long as the peer; the logged-in account's part (LoggedIn) is built at login and
 * taken down at logout.
 */
import type { AbortOptions, ComponentLogger, Logger } from '@libp2p/interface'
import { FRIEND_KINDS, DM_KIND, PRESENCE_KIND, RECEIPT_KIND, CONF_MESSAGE_KIND, CONFERENCE_KINDS, type Envelope } from '@conf-chat/protocol'
import type { EnvelopeContext, EnvelopeKindHandler, Presence, PeerInfo, Session, UserProfile } from '../account/index.js'
import { Outbox, LOGIN_HOLDERS_MAX_AGE_MS, type Delivery, type Mailbox, type Messenger, type OutboxInit, type QueuedEnvelope } from '../delivery/index.js'
import type { RecordStore } from '../network/index.js'
import type { LocalStore } from '../storage/index.js'
import { NotLoggedInError, NoSessionError, refusalOf } from '../errors.js'
import { DueRuns, watchStalls } from '../utils/index.js'
import { LoggedIn, type LoggedInInit } from './logged-in.js'
import { afterStall, STALL_MS } from './stalls.js'
import { PresenceNotices } from './presence-notices.js'
import { MailboxReader, type MailboxReaderInit } from './mailbox-reader.js'
import type { Emit } from './events.js'
import type { FriendActionResult, FriendInfo, FriendRequests } from './friends/index.js'
import type { ChatMessage, IncomingMessage } from './direct/index.js'
import type { Conferences } from './conferences/index.js'

/**
 * How often a logged-in peer looks in its mailbox for what arrived since login. While a
 * user is online, senders reach them live; an envelope lands in the mailbox only when
 * its sender read them as offline or could not reach them, and the cases this peer can
 * see are read at once (see the MAILBOX_READ_* delays). This read is for the rest (a
 * sender's dial or ack failed on its side): the bound within which such a message shows.
 */
export const DEFAULT_MAILBOX_POLL_MS = 5 * 60_000
/**
 * A periodic mailbox read asks the holders found at login or at an earlier read, for up
 * to this long, instead of a new DHT lookup each time: the lookup (a FIND_NODE to every
 * peer on its paths, each answer's closer peers merged, dials) was most of a read, and
 * the reads of all online users were most of the CPU an idle logged-in peer used. A
 * reader asks 2R holders, so a peer or two joining nearer the key in the meantime still
 * leaves it holders that writers use; a holder that does not answer sends the read to a
 * new lookup at once, and the set's maintenance moves items to the current holders.
 * The read at login takes only holders looked up during the login
 * (LOGIN_HOLDERS_MAX_AGE_MS).
 */
export const MAILBOX_POLL_HOLDERS_MAX_AGE_MS = 30 * 60_000

/** After login: senders who read the user as offline just before the new presence spread put into the mailbox while the login ran. */
export const MAILBOX_READ_AFTER_LOGIN_MS = 30_000

/** After this peer refused a live envelope for now (not final): its sender puts it into the mailbox; give that put time to land. */
export const MAILBOX_READ_AFTER_REFUSAL_MS = 10_000

/** A mailbox read after a relayed chat stream ended (an envelope too large for the relay's limit) comes at most this often. */
export const RELAYED_READ_INTERVAL_MS = 60_000

export interface MessagingInit extends OutboxInit, LoggedInInit, MailboxReaderInit {
  /**
   * How often a logged-in peer checks its mailbox after login; 0: at login only (no other
   * automatic read either). @default 5 min
   */
  mailboxPollMs?: number
  /** Tell friends what the user read (`read` receipts); `delivered` receipts are always sent. @default true */
  readReceipts?: boolean
}

export interface MessagingComponents {
  records: RecordStore
  local: LocalStore
  mailbox: Mailbox
  messenger: Pick<Messenger, 'send'>
  presence: Pick<Presence, 'read' | 'readOrThrow'>
  /** Whether a peer answers a dial now (checked when the last connection to a friend's peer closes). */
  reachable?: (peerId: string, options?: AbortOptions) => Promise<boolean>
  /** Registers the handler of one envelope kind. */
  handle: (kind: string, handler: EnvelopeKindHandler) => void
  handles: (kind: string) => boolean
  /** Check an envelope and hand it to its kind's handler (throws a coded refusal). */
  accept: (envelope: Envelope, live: boolean, options?: AbortOptions) => Promise<void>
  profile: (username: string, options?: AbortOptions) => Promise<UserProfile>
  session: () => Session | undefined
  /** Check that the session is still the account's current one (ends it if a later login took over). */
  checkSession?: () => Promise<void>
  whereAmI: () => PeerInfo
  emit: Emit
  logger: ComponentLogger
}

export class Messaging {
  private readonly c: MessagingComponents
  private readonly init: MessagingInit
  private readonly log: Logger
  private readonly outbox: Outbox
  private readonly notices: PresenceNotices
  private readonly reader: MailboxReader
  private active?: LoggedIn
  /** The last session's reads on this peer: a new session's reads come after them. */
  private earlierReads: Promise<unknown> = Promise.resolve()
  private running = false
  /** Whether `read` receipts are sent (see `readReceipts`). */
  readReceipts: boolean

  constructor (components: MessagingComponents, init: MessagingInit = {}) {
    this.c = components
    this.init = init
    this.readReceipts = init.readReceipts !== false
    this.log = components.logger.forComponent('conf-chat:chat:messaging')
    this.outbox = new Outbox({
      local: components.local,
      mailbox: components.mailbox,
      senderBoxKeys: envelope => this.active?.senderBoxKeys(envelope),
      messenger: components.messenger,
      locate: async (keyId, options) => await components.presence.read(keyId, options),
      logger: components.logger
    }, init, (envelope, delivery) => { this.onBackgroundDelivery(envelope, delivery) })
    this.notices = new PresenceNotices({ ...components, outbox: this.outbox })
    this.reader = new MailboxReader({ ...components, refused: (env, err, live) => { this.refused(env, err, live) } }, init)
  }

  async start (): Promise<void> {
    this.running = true
    for (const kind of FRIEND_KINDS) {
      this.c.handle(kind, async (env, ctx, options) => {
        const active = await this.activeFor(ctx)
        if (await active.seen.has(env.id)) return
        await this.applyKept(active, env, ctx, options)
        await active.seen.add(env.id)
      })
    }
    this.c.handle(DM_KIND, async (env, ctx, options) => { await (await this.activeFor(ctx)).dms.receive(env, ctx, options) })
    this.c.handle(RECEIPT_KIND, async (env, ctx, options) => { await (await this.activeFor(ctx)).receipts.receive(env, ctx, options) })
    this.c.handle(PRESENCE_KIND, async (env, ctx) => { this.notices.receive(await this.activeFor(ctx), env, ctx) })
    // a conference message goes to the history (kept on this peer first); the others change the private state
    this.c.handle(CONF_MESSAGE_KIND, async (env, ctx, options) => { await (await this.activeFor(ctx)).conferences.receive(env, ctx, options) })
    for (const kind of CONFERENCE_KINDS.filter(k => k !== CONF_MESSAGE_KIND)) {
      this.c.handle(kind, async (env, ctx, options) => { await this.applyKept(await this.activeFor(ctx), env, ctx, options) })
    }
    this.outbox.start()
    // what an earlier run (or a killed process) left unsent
    this.outbox.kick()
  }

  async stop (): Promise<void> {
    if (!this.running) return
    this.running = false
    await this.outbox.stop()
  }

  /** The peer (re)joined the network: try what waits in the outbox. After a loss of every
   * connection, senders used the mailbox meanwhile, and friends saw our connections close
   * (and us as gone): read the mailbox, tell them again that we are online. */
  networkJoined (): void {
    this.outbox.kick()
    const active = this.active
    if (active == null || active.session !== this.c.session() || active.ended) return
    this.readMailboxSoon(active, 0)
    this.notices.announce(active, 'online').catch(err => { this.log('online notices after rejoining: %s', err.message) })
  }

  /**
   * The addresses at which this peer can be dialled changed (a relay reservation made,
   * renewed elsewhere or lost): the presence record and the friends online learn the new
   * ones, else they would dial the old ones and fall back to the mailbox.
   */
  addressesChanged (): void {
    const active = this.active
    if (!this.running || active == null || active.session !== this.c.session() || active.ended) return
    this.c.checkSession?.().catch(err => { this.log('presence after an address change: %s', err.message) })
    this.notices.announce(active, 'online').catch(err => { this.log('online notices after an address change: %s', err.message) })
  }

  /** A chat stream to this peer over a relay ended (messenger.ts): what did not fit went to the mailbox. */
  relayedStreamEnded (): void {
    const active = this.active
    if (!this.running || active == null || active.session !== this.c.session() || active.ended) return
    // any peer can open and close streams over a relay: one read a minute for it at most
    // (asked for within the minute, it waits for the minute's end; while one is due, that one)
    const now = Date.now()
    if (this.nextRelayedRead > now) return
    const at = Math.max(now + MAILBOX_READ_AFTER_REFUSAL_MS, this.nextRelayedRead + RELAYED_READ_INTERVAL_MS)
    this.nextRelayedRead = at
    this.readMailboxSoon(active, at - now)
  }

  /** When the last read asked for by relayedStreamEnded was due. */
  private nextRelayedRead = -Infinity

  /** The last connection to `peerId` closed: was a friend there, and did they go? */
  peerDisconnected (peerId: string): void {
    const active = this.active
    if (!this.running || active == null || active.ended) return
    this.notices.peerGone(active, peerId).catch(err => { this.log('checking peer %s: %s', peerId, err.message) })
  }

  /**
   * Apply an envelope that changes the private state, kept in the journal from before it
   * is applied until the change is written: its ack (or its removal from the mailbox)
   * waits for the local store only, never for the DHT.
   */
  private async applyKept (active: LoggedIn, env: Envelope, ctx: EnvelopeContext, options: AbortOptions): Promise<void> {
    await active.journal.keep(env, ctx.sender)
    try {
      await this.applyState(active, env, ctx, options)
    } catch (err) {
      if (refusalOf(err).final) await active.journal.forget(env.id).catch(() => {})
      throw err
    }
    active.journal.settle(env.id, active.state.written())
  }

  private async applyState (active: LoggedIn, env: Envelope, ctx: EnvelopeContext, options: AbortOptions = {}): Promise<void> {
    if ((FRIEND_KINDS as readonly string[]).includes(env.kind)) await active.friends.receive(env, ctx, options)
    else await active.conferences.receive(env, ctx, options)
  }

  /**
   * At login, once the private state is loaded: apply again what the journal kept from an
   * earlier session here whose change was not written (the DHT was unreachable at its
   * logout, or the process was killed). Applied already: ignored as stale.
   */
  private async replayKept (active: LoggedIn): Promise<void> {
    const kept = []
    for await (const k of active.journal.kept()) kept.push(k)
    if (kept.length === 0) return
    this.log('applying %d kept envelopes again', kept.length)
    for (const { envelope, sender } of kept) {
      try {
        await this.applyState(active, envelope, { session: active.session, sender, live: false })
        active.journal.settle(envelope.id, active.state.written())
      } catch (err) {
        const { code, final } = refusalOf(err)
        this.log('kept %s %s from %s not applied (%s)', envelope.kind, envelope.id, envelope.from, code)
        if (final) await active.journal.forget(envelope.id).catch(() => {})
      }
    }
  }

  /** Read the mailbox in `delayMs` (unless a read is due about then); never with mailbox reads switched off. */
  private readMailboxSoon (active: LoggedIn, delayMs: number): void {
    if (this.pollMs === 0 || active.ended) return
    active.mailboxReads ??= new DueRuns(() => {
      this.reader.drain(active).catch(err => { this.log('mailbox check: %s', err.message) })
    })
    active.mailboxReads.request(delayMs)
  }

  private get pollMs (): number { return this.init.mailboxPollMs ?? DEFAULT_MAILBOX_POLL_MS }

  // ------------------------------------------------------------ session hooks (called by the session keeper)

  /** A login begins: read the account's private state. */
  async sessionStarting (session: Session, options: AbortOptions = {}): Promise<void> {
    const active = new LoggedIn({
      ...this.c,
      dispatch: async (envelope, options) => await this.outbox.send(envelope, options),
      readReceipts: () => this.readReceipts,
      onFriend: (loggedIn, friend, presence, announce) => { this.notices.track(loggedIn, friend, presence, announce === true) }
    }, session, this.init, options)
    this.active = active
    // a read of an earlier session here may still be showing what it kept as unshown: a
    // read of this one must not find those marks and show them too
    active.draining = this.earlierReads.catch(() => {})
    // the read at login: its items come in while the session starts
    this.reader.fetchAhead(active, { holdersMaxAgeMs: LOGIN_HOLDERS_MAX_AGE_MS })
    await active.ready
    options.signal?.throwIfAborted()
    // (a logout or a stop meanwhile ended it: nothing to apply to a closed session)
    if (this.active !== active) return
    await this.replayKept(active).catch(err => { this.log('applying kept envelopes: %s', err.message) })
  }

  /** A login that did not get to start: take its part down quietly. */
  sessionAbandoned (session: Session): void {
    const active = this.active
    if (active == null || active.session !== session) return
    this.deactivate(active)
    this.close(active).catch(err => { this.log('closing an abandoned session: %s', err.message) })
  }

  /**
   * The session is current: tell friends, read the mailbox (once the account's session on
   * another peer has finished: what it showed is then out of the mailbox), poll it.
   */
  sessionStarted (session: Session, handedOver?: Promise<void>): void {
    const active = this.active
    if (active == null || active.session !== session) return
    this.notices.announce(active, 'online').catch(err => { this.log('online notices: %s', err.message) })
    if (handedOver != null) {
      // every read (this one, checkMailbox, the timers') queues behind the handover, and
      // what the other session showed is known from its history pages
      active.history.tookOver(handedOver)
      active.draining = Promise.allSettled([handedOver, active.draining])
    }
    // (after a handover the read fetches afresh: the other session removed what it showed)
    if (handedOver != null) active.fetchedAhead = undefined
    this.reader.drain(active, { holdersMaxAgeMs: LOGIN_HOLDERS_MAX_AGE_MS }).catch(err => { this.log('mailbox at login: %s', err.message) })
    // the senders the account knows, for the mailbox's holders (never from a state that could not be read)
    active.ready.then(() => { if (active.loaded) active.writers.start() }).catch(() => {})
    // membership changes made while this user was away (also in the mailbox; the newest record wins)
    active.ready.then(async () => { await active.conferences.refreshAll() }).catch(err => { this.log('conference refresh at login: %s', err.message) })
    // history entries an earlier session here did not get into the DHT pages (a kill, a logout that could not write)
    active.ready.then(async () => { if (active.loaded) await active.history.resumeWrites() }).catch(err => { this.log('history writes of an earlier session: %s', err.message) })
    this.outbox.kick()
    const pollMs = this.pollMs
    if (pollMs > 0) {
      active.pollTimer = setInterval(() => {
        this.reader.drain(active, { holdersMaxAgeMs: MAILBOX_POLL_HOLDERS_MAX_AGE_MS }).catch(err => { this.log('mailbox check: %s', err.message) })
      }, pollMs)
      active.pollTimer.unref()
      this.readMailboxSoon(active, Math.min(pollMs, MAILBOX_READ_AFTER_LOGIN_MS))
      // what senders gave up on while this process stood still waits in the mailbox, and
      // what this peer failed to send meanwhile waits in the outbox
      active.stopStallWatch = watchStalls({
        stallMs: STALL_MS,
        onStall: ms => {
          this.log('this process stood still for %d ms: reading the mailbox soon', Math.round(ms))
          void afterStall({
            checkSession: this.c.checkSession,
            readMailbox: () => { this.readMailboxSoon(active, MAILBOX_READ_AFTER_REFUSAL_MS) },
            retryOutbox: () => { this.outbox.kick() }
          }, this.log)
        }
      })
    }
  }

  /** Before a logout: tell online friends, write what is pending. */
  async sessionEnding (session: Session, options: AbortOptions = {}): Promise<void> {
    const active = this.active
    if (active == null || active.session !== session) return
    this.deactivate(active)
    await this.notices.announce(active, 'offline', options).catch(err => { this.log('offline notices: %s', err.message) })
    await this.close(active, options)
  }

  /** A takeover (or any end without our logout): write what is pending, quietly; settles once written. */
  async sessionEnded (session: Session, reason: string): Promise<void> {
    const active = this.active
    if (active == null || active.session !== session) return
    this.log('session ended (%s)', reason)
    this.deactivate(active)
    await this.close(active).catch(err => { this.log('closing the session: %s', err.message) })
  }

  private deactivate (active: LoggedIn): void {
    active.deactivate()
    this.notices.forget(active)
    this.earlierReads = active.draining
    if (this.active === active) this.active = undefined
  }

  private async close (active: LoggedIn, options: AbortOptions = {}): Promise<void> {
    for (const part of await active.close(options)) this.log('%s not fully written at logout', part)
  }

  private async ready (): Promise<LoggedIn> {
    const active = this.active
    if (active == null || active.session !== this.c.session()) throw new NotLoggedInError()
    await active.ready
    return active
  }

  private async activeFor (ctx: EnvelopeContext): Promise<LoggedIn> {
    const active = this.active
    if (active == null || active.session !== ctx.session) throw new NoSessionError()
    await active.ready
    return active
  }

  /** A friend's profile from the private state (verified when the friendship began; keys
   * never change), when `username` is a friend who signs with `signPublic`: no DHT read. */
  friendProfile (username: string, signPublic: Uint8Array): UserProfile | undefined {
    const active = this.active
    if (active == null || active.session !== this.c.session()) return undefined
    const friend = active.friends.friend(username, signPublic)
    return friend == null ? undefined : active.friends.profileOf(friend)
  }

  // ------------------------------------------------------------ what ChatNode offers

  async addFriend (username: string, note?: string, options: AbortOptions = {}): Promise<FriendActionResult> { return await (await this.ready()).friends.add(username, note, options) }
  async acceptFriend (username: string, options: AbortOptions = {}): Promise<FriendActionResult> { return await (await this.ready()).friends.accept(username, options) }
  async rejectFriend (username: string, options: AbortOptions = {}): Promise<FriendActionResult> { return await (await this.ready()).friends.reject(username, options) }
  async removeFriend (username: string, options: AbortOptions = {}): Promise<FriendActionResult> { return await (await this.ready()).friends.remove(username, options) }
  async friendRequests (): Promise<FriendRequests> { return (await this.ready()).friends.requests() }
  async friends (options: AbortOptions = {}): Promise<FriendInfo[]> { return await (await this.ready()).friends.list(options) }
  async sendMessage (username: string, text: string, options: AbortOptions = {}): Promise<Delivery> { return await (await this.ready()).dms.send(username, text, options) }
  async history (username: string, options: AbortOptions = {}): Promise<ChatMessage[]> { return await (await this.ready()).dms.history(username, options) }
  async markRead (username: string, options: AbortOptions = {}): Promise<number> {
    const active = await this.ready()
    const friend = active.friends.friend(username)
    return friend == null ? 0 : await active.receipts.markRead(friend, options)
  }

  async markConferenceRead (id: string, options: AbortOptions = {}): Promise<number> {
    const active = await this.ready()
    const { conference } = await active.conferences.members(id, options)
    return await active.receipts.markConferenceRead(conference.id, options)
  }

  /** The logged-in account's conferences. */
  async conferences (): Promise<Conferences> { return (await this.ready()).conferences }

  /** Read the mailbox now (it is read at login, soon after, and every `mailboxPollMs`); returns the new messages. */
  async checkMailbox (options: AbortOptions = {}): Promise<IncomingMessage[]> { return await this.reader.drain(await this.ready(), options) }

  /** Envelopes this peer still has to send (all accounts), oldest first. */
  async queued (options: AbortOptions = {}): Promise<QueuedEnvelope[]> { return await this.outbox.queued(options) }

  /** Write pending history and private state now (tests, benchmarks, before a planned stop). */
  async flush (options: AbortOptions = {}): Promise<boolean> { return await (await this.ready()).flush(options) }

  /** Report an envelope that was refused, live or from the mailbox. */
  refused (envelope: Envelope, err: unknown, live: boolean): void {
    const { code, reason, final } = refusalOf(err)
    // refused for now: its sender falls back to our mailbox
    const active = this.active
    if (live && !final && active != null && active.session === this.c.session()) this.readMailboxSoon(active, MAILBOX_READ_AFTER_REFUSAL_MS)
    this.log('refused %s %s from %s (%s): %s %s', envelope.kind, envelope.id, envelope.from, live ? 'live' : 'mailbox', code, reason)
    this.c.emit('envelope:refused', { id: envelope.id, kind: envelope.kind, from: envelope.from, reason, code, live })
  }

  private onBackgroundDelivery (envelope: Envelope, delivery: Delivery): void {
    // only the sender, if logged in here, cares how its message went
    if (this.c.session()?.account.username !== envelope.from) return
    // a message's (or a conference copy's) state; only a known one is moved
    if (envelope.kind === DM_KIND || envelope.kind === CONF_MESSAGE_KIND) this.active?.receipts.delivery({ keyId: envelope.toKeyId, username: envelope.to }, envelope.id, delivery).catch(() => {})
    this.c.emit('message:status', {
      id: envelope.id,
      kind: envelope.kind,
      to: envelope.to,
      status: delivery.status,
      ...(delivery.where != null ? { where: delivery.where } : {}),
      ...(delivery.reason != null ? { reason: delivery.reason } : {})
    })
  }
}
