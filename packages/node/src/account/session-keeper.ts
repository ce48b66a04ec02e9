/**
 * The logged-in user of a peer: at most one session at a time. It publishes the user's
 * presence at login and keeps it fresh, notices when the account logged in on another
 * peer (a takeover: that peer's newer presence, or its signed notice) and ends the
 * session then, and publishes "offline" at logout.
 */
import { z } from 'zod'
import { openEnvelope, bytesEqual, type Envelope, type AccountKeys } from '@conf-chat/protocol'
import type { AbortOptions, ComponentLogger, Logger } from '@libp2p/interface'
import { AlreadyLoggedInError, NotLoggedInError, SessionEndedError } from '../errors.js'
import { within } from '../utils/index.js'
import { StaleError, NotForRecipientError } from '../errors.js'
import { profileOf, type Account, type UserProfile } from './accounts.js'
import type { Presence, PresenceInfo } from './presence.js'
import type { EnvelopeContext, Session, SessionEndReason } from './session.js'

/** The envelope kind by which a new login tells the peer of the old one to end it. */
export const TAKEOVER_KIND = 'session-takeover'

const takeoverSchema = z.object({ peerId: z.string().max(128), since: z.number().int() }).strict()

/**
 * How long the peer of a session that was taken over spends finishing it before it acks
 * the notice: the mailbox read under way (its handled items removed), the history and the
 * private state written. The new login reads the mailbox after that ack (or after this
 * long and the ack's own time), so that what the old session showed is not shown again.
 */
export const TAKEOVER_HANDOVER_MS = 15_000
/** How long the new login waits for that ack. */
export const TAKEOVER_ACK_MS = TAKEOVER_HANDOVER_MS + 5_000

export interface PeerInfo {
  peerId: string
  addrs: string[]
}

export interface SessionHooks {
  /** While a login begins, before presence says "online" (reads the private state). */
  starting: (session: Session, options: AbortOptions) => Promise<void>
  /**
   * Once the session is current (announce, read the mailbox). `handedOver`, when the
   * account was online on another peer, settles once that session has finished (see
   * TAKEOVER_HANDOVER_MS).
   */
  started: (session: Session, handedOver?: Promise<void>) => void
  /** Before a logout ends the session (tell friends, write what is pending). */
  ending: (session: Session, options: AbortOptions) => Promise<void>
  /** After the session ended for any reason; settles once what it had under way is finished. */
  ended: (session: Session, reason: SessionEndReason) => Promise<void>
  /** A login that failed or was cancelled before it started: undo what `starting` built. */
  abandoned: (session: Session) => void
}

export interface SessionKeeperComponents {
  presence: Pick<Presence, 'read' | 'publish' | 'refreshMs'>
  /** Where this peer is (its id and addresses), for the presence record. */
  peerInfo: () => PeerInfo
  /** Send a signed notice of `kind` to the account's other peer, live; settles with its ack (waited for up to `ackTimeoutMs`). */
  notify: (session: Session, kind: string, content: unknown, to: UserProfile, where: PeerInfo, ackTimeoutMs: number) => Promise<unknown>
  hooks: SessionHooks
  logger: ComponentLogger
}

export class SessionKeeper {
  private readonly c: SessionKeeperComponents
  private readonly log: Logger
  private _session?: Session
  private refreshTimer?: NodeJS.Timeout
  private refreshing?: Promise<void>
  /** Why each session ended, or is ending (for a login that was still beginning then). */
  private readonly endReasons = new WeakMap<Session, SessionEndReason>()

  constructor (components: SessionKeeperComponents) {
    this.c = components
    this.log = components.logger.forComponent('conf-chat:account:session')
  }

  get current (): Session | undefined { return this._session }

  require (): Session {
    if (this._session == null) throw new NotLoggedInError()
    return this._session
  }

  assertLoggedOut (): void {
    if (this._session != null) throw new AlreadyLoggedInError(this._session.account.username)
  }

  /** Make `account` the logged-in user: private state read, presence "online", refreshed. */
  async begin (account: Account, options: AbortOptions = {}): Promise<Session> {
    // (checked again here: two logins at once both pass the caller's check before their slow part)
    this.assertLoggedOut()
    const since = Date.now()
    // the account's last presence (a login elsewhere to take over) is read alongside the
    // session's own start, and before our record replaces it
    const previousRead = this.c.presence.read(account.keyId, options).catch(() => undefined)
    const session: Session = { account, since }
    this._session = session
    let previous: PresenceInfo | undefined
    // a logout, a stop or a takeover that ends the session while it begins runs the hooks'
    // end: nothing starts then, and no "online" is written after the logout's "offline"
    // (a write begun before it has the lower sequence number, and loses)
    const endedMeanwhile = (): SessionEndedError | undefined =>
      this._session === session && !this.endReasons.has(session) ? undefined : new SessionEndedError(this.endReasons.get(session) ?? 'ended')
    try {
      [previous] = await Promise.all([previousRead, this.c.hooks.starting(session, options)])
      this.log('%s: session started in %d ms; writing "online"', account.username, Date.now() - since)
      const ended = endedMeanwhile()
      if (ended != null) throw ended
      await this.c.presence.publish(ownerOf(session), 'online', this.c.peerInfo(), options)
    } catch (err) {
      // nothing of a half-started session stays: the next login starts afresh
      const ended = endedMeanwhile()
      if (ended == null) this._session = undefined
      this.c.hooks.abandoned(session)
      throw ended ?? err
    }
    const ended = endedMeanwhile()
    if (ended != null) throw ended
    let handedOver: Promise<void> | undefined
    if (previous?.online === true && previous.peerId !== this.c.peerInfo().peerId) {
      // tell the other peer at once (it would also notice at its next refresh, refused); it
      // acks once it has finished its session
      handedOver = this.c.notify(session, TAKEOVER_KIND, { peerId: this.c.peerInfo().peerId, since }, profileOf(account.record), previous, TAKEOVER_ACK_MS)
        .then(() => {}, err => { this.log('takeover notice failed: %s', err.message) })
    }
    this.scheduleRefresh(session)
    this.c.hooks.started(session, handedOver)
    return session
  }

  /** Log out: friends told, pending writes flushed, presence "offline". */
  async logout (reason: SessionEndReason = 'logout', options: AbortOptions = {}): Promise<void> {
    const session = this.require()
    // a login still beginning sees its session ending from here on, not only once it has ended
    this.endReasons.set(session, reason)
    try {
      await this.c.hooks.ending(session, options)
    } finally {
      // a cancelled logout still ends the session; only the notices and the record are cut short
      await this.end(session, reason)
    }
    await this.c.presence.publish(ownerOf(session), 'offline', this.c.peerInfo(), options)
  }

  /**
   * A takeover notice from the account's newer login on another peer: the session ends at
   * once, and the notice is acked once what it had under way is finished (or after
   * TAKEOVER_HANDOVER_MS).
   */
  async onTakeover (env: Envelope, ctx: EnvelopeContext): Promise<void> {
    if (!bytesEqual(env.fromKey, ctx.session.account.signPublic)) throw new NotForRecipientError('takeover not signed by the account')
    const body = openEnvelope(env, ctx.session.account.keys, takeoverSchema)
    if (body.since <= ctx.session.since) throw new StaleError('takeover older than this session')
    await within(this.end(ctx.session, 'takeover'), TAKEOVER_HANDOVER_MS, undefined)
  }

  /** Stop the refresh loop and forget the session (after `stop`, nothing is published); settles once the session is finished. */
  private async end (session: Session, reason: SessionEndReason): Promise<void> {
    if (this._session !== session) return
    clearTimeout(this.refreshTimer)
    this._session = undefined
    this.endReasons.set(session, reason)
    await this.c.hooks.ended(session, reason).catch(err => { this.log('finishing the session: %s', err.message) })
  }

  /**
   * Check now that the session is still the account's current one: this process stood
   * still (a laptop asleep, a stopped process), and a login elsewhere meanwhile could not
   * tell it. A presence refresh now, which ends the session if a later login took over;
   * else the session would go on reading the mailbox until its next refresh, minutes on.
   */
  async checkNow (): Promise<void> {
    const session = this._session
    if (session != null) await this.refreshNow(session)
  }

  /** Refresh presence every `refreshMs`, counted from the start of each refresh: a refresh
   * slowed by unreachable peers must not push the next one past the record's expiry. */
  private scheduleRefresh (session: Session, delayMs = this.c.presence.refreshMs): void {
    clearTimeout(this.refreshTimer)
    this.refreshTimer = setTimeout(() => { void this.refreshNow(session) }, delayMs)
    this.refreshTimer.unref()
  }

  /** One refresh now (or the one under way: never two at once); the next is due `refreshMs` after its start. */
  private async refreshNow (session: Session): Promise<void> {
    if (this.refreshing != null) { await this.refreshing; return }
    clearTimeout(this.refreshTimer)
    const started = Date.now()
    const run = this.refresh(session)
      .catch(err => { this.log('presence refresh failed: %s', err.message) })
      .finally(() => {
        this.refreshing = undefined
        if (this._session === session) this.scheduleRefresh(session, Math.max(0, this.c.presence.refreshMs - (Date.now() - started)))
      })
    this.refreshing = run
    await run
  }

  /**
   * Refresh our presence without reading it first. A later login of the account writes
   * above this session (see Presence), so holders that have its record refuse ours: only
   * then is the record read, to end this session if the later login took over (its notice
   * did not reach us).
   */
  private async refresh (session: Session): Promise<void> {
    const written = await this.c.presence.publish(ownerOf(session), 'online', this.c.peerInfo())
    if (this._session !== session || written.refused === 0) return
    const current: PresenceInfo | undefined = await this.c.presence.read(session.account.keyId)
    if (this._session !== session) return
    if (current?.online === true && current.peerId !== this.c.peerInfo().peerId && (current.since ?? 0) > session.since) {
      await this.end(session, 'takeover')
    }
  }
}

function ownerOf (session: Session): { username: string, keyId: string, keys: AccountKeys, since: number } {
  return { username: session.account.username, keyId: session.account.keyId, keys: session.account.keys, since: session.since }
}
