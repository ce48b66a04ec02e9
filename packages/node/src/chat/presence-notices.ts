/**
 * Friends tell each other directly when they log in and out (a signed `presence`
 * envelope over the chat protocol), so a change shows within seconds, not at the next
 * presence refresh. This part sends those notices, handles the ones that arrive, and
 * keeps the map of friends known to be online (told at logout).
 */
import { openEnvelope, presenceBodySchema, PRESENCE_KIND, type Envelope, type FriendEntry } from '@conf-chat/protocol'
import type { AbortOptions, ComponentLogger, Logger } from '@libp2p/interface'
import type { EnvelopeContext, Presence, PresenceInfo, PeerInfo } from '../account/index.js'
import type { Messenger, Outbox } from '../delivery/index.js'
import { NotFriendError, StaleError } from '../errors.js'
import { settledWithin } from '../utils/index.js'
import type { LoggedIn } from './logged-in.js'
import type { Emit } from './events.js'

/** Longest a logout waits for the offline notices to friends (a login waits ten times that). */
const NOTICE_TIMEOUT_MS = 2_000
const NOTICE_CONCURRENCY = 8
/** Most addresses a notice names. */
const MAX_NOTICE_ADDRS = 16

/**
 * An "online" notice to a friend that failed on the way (a dial or a stream that failed, no
 * ack in time; not a refusal) is sent again after each of these pauses while the session
 * lasts. A peer that lost its connections right after its login, or whose friend's peer
 * was changing relays, is otherwise learned of only at the friend's next presence read.
 */
export const ONLINE_NOTICE_RETRY_MS = [2_000, 10_000, 30_000]

/** How long the check of a friend's peer whose last connection closed may take before it counts as gone. */
const GONE_CHECK_TIMEOUT_MS = 10_000

export interface PresenceNoticesComponents {
  presence: Pick<Presence, 'read' | 'readOrThrow'>
  messenger: Pick<Messenger, 'send'>
  outbox: Pick<Outbox, 'noteLocation' | 'kick'>
  /** Whether a peer answers a dial now. Without it, a closed connection tells nothing. */
  reachable?: (peerId: string, options?: AbortOptions) => Promise<boolean>
  whereAmI: () => PeerInfo
  emit: Emit
  logger: ComponentLogger
}

export class PresenceNotices {
  private readonly c: PresenceNoticesComponents
  private readonly log: Logger
  /** Per session, the pending retry of the online notice to each friend (keyId): one at a time, a newer notice replaces it. */
  private readonly retries = new WeakMap<LoggedIn, Map<string, NodeJS.Timeout>>()

  constructor (components: PresenceNoticesComponents) {
    this.c = components
    this.log = components.logger.forComponent('conf-chat:chat:presence-notices')
  }

  private where (): PeerInfo {
    const me = this.c.whereAmI()
    return { peerId: me.peerId, addrs: me.addrs.slice(0, MAX_NOTICE_ADDRS) }
  }

  /** Tell friends we came online (those online now) or are leaving (those we know online). */
  async announce (active: LoggedIn, status: 'online' | 'offline', options: AbortOptions = {}): Promise<void> {
    if (status === 'online') {
      await active.ready
      await this.tellOnline(active, [...active.state.state.friends], 0, options)
      return
    }
    const sends: Array<Promise<unknown>> = []
    for (const [username, where] of active.online) {
      const f = active.friends.friend(username)
      if (f != null) sends.push(this.notify(active, 'offline', f, where))
    }
    // the notices go on (each within the messenger's ack limit); only the waiting is bounded
    await settledWithin(Promise.allSettled(sends), NOTICE_TIMEOUT_MS, options)
  }

  /**
   * Tell `friends` who are online (their presence read now) that we are; those whose
   * notice failed on the way, or whose presence could not be read, are tried again after
   * the next pause of ONLINE_NOTICE_RETRY_MS (`attempt`: how many tries came before).
   */
  private async tellOnline (active: LoggedIn, friends: FriendEntry[], attempt: number, options: AbortOptions = {}): Promise<void> {
    // this try replaces a retry still pending for these friends
    const pending = this.retries.get(active)
    for (const f of friends) { clearTimeout(pending?.get(f.keyId)); pending?.delete(f.keyId) }
    const again: FriendEntry[] = []
    const sends: Array<Promise<unknown>> = []
    for (let i = 0; i < friends.length; i += NOTICE_CONCURRENCY) {
      await Promise.all(friends.slice(i, i + NOTICE_CONCURRENCY).map(async f => {
        let p: PresenceInfo | undefined
        try {
          p = await this.c.presence.readOrThrow(f.keyId, options)
        } catch {
          // the read could not tell: tried again (no record at all is not)
          if (!active.ended) again.push(f)
          return
        }
        if (active.ended || p == null) return
        this.c.outbox.noteLocation(f.keyId, p)
        if (!p.online) return
        const where = { keyId: f.keyId, peerId: p.peerId, addrs: p.addrs }
        active.online.set(f.username, where)
        sends.push(this.notify(active, 'online', f, where).then(failedOnTheWay => { if (failedOnTheWay) again.push(f) }))
      }))
    }
    // the notices go on (each within the messenger's ack limit); only the waiting is bounded
    const settled = Promise.allSettled(sends).then(() => { this.retryLater(active, again, attempt) })
    await settledWithin(settled, 10 * NOTICE_TIMEOUT_MS, options)
  }

  private retryLater (active: LoggedIn, friends: FriendEntry[], attempt: number): void {
    const pause = ONLINE_NOTICE_RETRY_MS[attempt]
    if (friends.length === 0 || pause == null || active.ended) return
    this.log('online notices to %d friends again in %d ms', friends.length, pause)
    let pending = this.retries.get(active)
    if (pending == null) this.retries.set(active, pending = new Map())
    for (const f of friends) {
      clearTimeout(pending.get(f.keyId))
      const timer = setTimeout(() => {
        pending.delete(f.keyId)
        if (active.ended) return
        this.tellOnline(active, [f], attempt + 1).catch(err => { this.log('online notice to %s again: %s', f.username, err.message) })
      }, pause)
      timer.unref()
      pending.set(f.keyId, timer)
    }
  }

  /** The session ended: its pending retries are dropped (each would find it ended, but holds its timer until then). */
  forget (active: LoggedIn): void {
    for (const timer of this.retries.get(active)?.values() ?? []) clearTimeout(timer)
    this.retries.delete(active)
  }

  /** Send one notice; true when it failed on the way (not refused by the friend's peer). */
  private async notify (active: LoggedIn, status: 'online' | 'offline', friend: FriendEntry, where: { peerId: string, addrs: string[] }): Promise<boolean> {
    const env = active.seal(PRESENCE_KIND, { status, ...this.where() }, active.friends.profileOf(friend))
    const result = await this.c.messenger.send(where.peerId, where.addrs, env)
    if (result.delivered) return false
    this.log('presence notice to %s not delivered: %s', friend.username, result.reason)
    return result.code == null && result.reason !== 'aborted'
  }

  /** A friend's notice: note where they are, retry what waits for them, tell the UI. */
  receive (active: LoggedIn, env: Envelope, ctx: EnvelopeContext): void {
    // a notice is news only as it happens
    if (!ctx.live) return
    const friend = active.friends.friend(env.from, env.fromKey)
    if (friend == null) throw new NotFriendError(env.from)
    const body = openEnvelope(env, active.session.account.keys, presenceBodySchema)
    // one peer's notices can cross (a login's retried "online" and the logout's "offline"):
    // the later one sent wins (between two peers of the friend, whose clocks may differ, the
    // later one to arrive, as before)
    const last = active.lastNotice.get(friend.keyId)
    if (last?.peerId === body.peerId && env.sentAt <= last.sentAt) throw new StaleError('a later presence notice from this peer came first')
    active.lastNotice.set(friend.keyId, { peerId: body.peerId, sentAt: env.sentAt })
    const online = body.status === 'online'
    this.c.outbox.noteLocation(friend.keyId, { online, peerId: body.peerId, addrs: body.addrs })
    active.gone.delete(friend.keyId)
    if (online) {
      active.online.set(friend.username, { keyId: friend.keyId, peerId: body.peerId, addrs: body.addrs })
      this.c.outbox.kick(friend.keyId)
    } else {
      active.online.delete(friend.username)
    }
    this.c.emit('presence', { username: env.from, online })
  }

  /**
   * This peer lost its last connection to `peerId`. If an online friend was there and the
   * peer does not answer a dial, the friend left without a word (a crash, a lost network):
   * shown offline now, not when their presence record lapses. A peer that answers was
   * only disconnected (the connection manager, the other side closing idle connections).
   */
  async peerGone (active: LoggedIn, peerId: string): Promise<void> {
    const found = [...active.online].find(([, where]) => where.peerId === peerId)
    if (found == null || this.c.reachable == null) return
    const [username, where] = found
    const answers = await this.c.reachable(peerId, { signal: AbortSignal.timeout(GONE_CHECK_TIMEOUT_MS) }).catch(() => false)
    // a notice or another check may have changed what we know meanwhile
    if (answers || active.ended || active.online.get(username) !== where) return
    active.online.delete(username)
    active.gone.set(where.keyId, Date.now())
    // what this shows is the list; sends still try the friend's peer live first (a check
    // that failed on a loaded machine must not send messages to the mailbox)
    this.log('%s\'s peer %s is gone', username, peerId)
    this.c.emit('presence', { username, online: false })
  }

  /**
   * Keep the map of online friends (told at logout) current: from a presence read, or, for
   * a friendship that just began, by reading theirs and telling them we are online.
   */
  track (active: LoggedIn, friend: FriendEntry, presence: PresenceInfo | undefined, announce: boolean): void {
    const note = (p: PresenceInfo | undefined): boolean => {
      if (p == null || active.ended) return false
      this.c.outbox.noteLocation(friend.keyId, p)
      if (p.online) active.online.set(friend.username, { keyId: friend.keyId, peerId: p.peerId, addrs: p.addrs })
      else active.online.delete(friend.username)
      return p.online
    }
    if (presence != null) { note(presence); return }
    this.c.presence.read(friend.keyId)
      .then(async p => {
        if (!note(p) || p == null || !announce) return
        const env = active.seal(PRESENCE_KIND, { status: 'online', ...this.where() }, active.friends.profileOf(friend))
        await this.c.messenger.send(p.peerId, p.addrs, env)
      })
      .catch(err => { this.log('presence of %s: %s', friend.username, err.message) })
  }
}
