/**
 * Friends tell each other directly when they log in and out (a signed `presence`
 * envelope over the chat protocol), so a change shows within seconds, not at the next
 * presence refresh. This part sends those notices, handles the ones that arrive, and
 * keeps the map of friends known to be online (told at logout).
 */
import { openEnvelope, presenceBodySchema, PRESENCE_KIND, type Envelope, type FriendEntry } from '@conf-chat/protocol'
import type { AbortOptions, ComponentLogger, Logger } from '@libp2p/interface'
import type { EnvelopeContext, Presence, PresenceInfo, PeerInfo, UserProfile } from '../account/index.js'
import type { Messenger, Outbox } from '../delivery/index.js'
import { NotFriendError } from '../errors.js'
import { settledWithin } from '../utils/index.js'
import type { LoggedIn } from './logged-in.js'
import type { Emit } from './events.js'

/** Longest a logout waits for the offline notices to friends (a login waits ten times that). */
const NOTICE_TIMEOUT_MS = 2_000
const NOTICE_CONCURRENCY = 8
/** Most addresses a notice names. */
const MAX_NOTICE_ADDRS = 16

/** How long the check of a friend's peer whose last connection closed may take before it counts as gone. */
const GONE_CHECK_TIMEOUT_MS = 10_000

export interface PresenceNoticesComponents {
  presence: Pick<Presence, 'read'>
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
    const me = this.where()
    const targets: Array<{ username: string, peerId: string, addrs: string[], profile: UserProfile }> = []
    if (status === 'online') {
      await active.ready
      const friends = [...active.state.state.friends]
      for (let i = 0; i < friends.length; i += NOTICE_CONCURRENCY) {
        await Promise.all(friends.slice(i, i + NOTICE_CONCURRENCY).map(async f => {
          const p = await this.c.presence.read(f.keyId, options).catch(() => undefined)
          if (p == null) return
          this.c.outbox.noteLocation(f.keyId, p)
          if (!p.online) return
          active.online.set(f.username, { keyId: f.keyId, peerId: p.peerId, addrs: p.addrs })
          targets.push({ username: f.username, peerId: p.peerId, addrs: p.addrs, profile: active.friends.profileOf(f) })
        }))
      }
    } else {
      for (const [username, where] of active.online) {
        const f = active.friends.friend(username)
        if (f != null) targets.push({ username, ...where, profile: active.friends.profileOf(f) })
      }
    }
    const sends = targets.map(async t => {
      const env = active.seal(PRESENCE_KIND, { status, ...me }, t.profile)
      const result = await this.c.messenger.send(t.peerId, t.addrs, env)
      if (!result.delivered) this.log('presence notice to %s not delivered: %s', t.username, result.reason)
    })
    // the notices go on (each within the messenger's ack limit); only the waiting is bounded
    await settledWithin(Promise.allSettled(sends), status === 'offline' ? NOTICE_TIMEOUT_MS : 10 * NOTICE_TIMEOUT_MS, options)
  }

  /** A friend's notice: note where they are, retry what waits for them, tell the UI. */
  receive (active: LoggedIn, env: Envelope, ctx: EnvelopeContext): void {
    // a notice is news only as it happens
    if (!ctx.live) return
    const friend = active.friends.friend(env.from, env.fromKey)
    if (friend == null) throw new NotFriendError(env.from)
    const body = openEnvelope(env, active.session.account.keys, presenceBodySchema)
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
