/**
 * Friends, direct messages, presence notices, mailboxes, the outbox and history, put
 * together for a ChatNode. Peer-wide parts (the local store, the outbox, the mailbox
 * rules) live as long as the peer; the rest belongs to the logged-in account and is
 * built at login (its private state read from the DHT) and taken down at logout.
 */
import { logger } from '@libp2p/logger'
import {
  createEnvelope, openEnvelope, presenceBodySchema, FRIEND_KINDS, DM_KIND, PRESENCE_KIND, CONFERENCE_KINDS,
  type Envelope, type FriendKind, type FriendEntry
} from '@conf-chat/protocol'
import type { PeerId } from '@libp2p/interface'
import { LocalStore } from '../storage/local-store.js'
import { Mailbox } from '../delivery/mailbox.js'
import { Outbox, DEFAULT_MAILBOX_TIMEOUT_MS, type OutboxInit, type Delivery, type QueuedEnvelope } from '../delivery/outbox.js'
import { PrivateStateStore, type PrivateStateInit } from '../account/private-state.js'
import { History, compareEntries, type HistoryInit } from './history.js'
import { Friends, type FriendEvents, type FriendActionResult, type FriendInfo, type FriendRequests } from './friends/friends.js'
import { DirectMessages, type DirectMessageEvents, type ChatMessage, type IncomingMessage } from './direct/direct-messages.js'
import { Conferences, type ConferenceEvents } from './conferences/conferences.js'
import { NotLoggedInError } from '../errors.js'
import type { ChatPeer } from '../network/peer.js'
import type { Messenger } from '../delivery/messenger.js'
import type { Presence, PresenceInfo } from '../account/presence.js'
import type { UserProfile } from '../account/accounts.js'
import type { EnvelopeContext, EnvelopeKindHandler, Session } from '../account/session.js'

const log = logger('conf-chat:messaging')

/** How often a logged-in peer looks in its mailbox for what arrived since login. */
export const DEFAULT_MAILBOX_POLL_MS = 60_000
/** Longest a logout waits for the offline notices to friends. */
const NOTICE_TIMEOUT_MS = 2_000
/** Longest a logout waits to write pending history and private state. */
const LOGOUT_FLUSH_MS = 5_000
const NOTICE_CONCURRENCY = 8

export interface MessagingInit extends OutboxInit, PrivateStateInit, HistoryInit {
  /** How often a logged-in peer checks its mailbox after login; 0: at login only. @default 60 s */
  mailboxPollMs?: number
}

export interface MessageStatus {
  id: string
  kind: string
  to: string
  status: Delivery['status']
  where?: Delivery['where']
  reason?: string
}

export interface RefusedEnvelope {
  id: string
  kind: string
  from: string
  reason: string
  /** From a live stream (true) or a mailbox (false). */
  live: boolean
}

export interface MessagingEvents extends FriendEvents, DirectMessageEvents, ConferenceEvents {
  /** A friend logged in or out (told directly by their peer). */
  'presence': CustomEvent<{ username: string, online: boolean }>
  /** A message of ours that waited in the outbox was delivered, queued in a mailbox, or failed. */
  'message:status': CustomEvent<MessageStatus>
  /** An envelope was dropped: forged sender, bad body, not a friend... */
  'envelope:refused': CustomEvent<RefusedEnvelope>
}

/** What Messaging needs of its ChatNode. */
export interface MessagingHost {
  readonly peer: ChatPeer
  readonly messenger: Messenger
  readonly presence: Presence
  readonly session: Session | undefined
  profile: (username: string) => Promise<UserProfile>
  accept: (envelope: Envelope, live: boolean, peer?: PeerId) => Promise<void>
  onEnvelope: (kind: string, handler: EnvelopeKindHandler) => void
  handlesKind: (kind: string) => boolean
  dispatchEvent: (event: Event) => boolean
  addEventListener: (type: any, listener: any) => void
  init: { dataDir: string }
}

/** Envelope ids the account has handled on this peer (friend envelopes; messages are known by the history). */
interface SeenIds {
  has: (id: string) => Promise<boolean>
  add: (id: string) => Promise<void>
}

/** The logged-in account's part. */
interface Active {
  session: Session
  /** Resolves once the private state is loaded. */
  ready: Promise<void>
  state: PrivateStateStore
  history: History
  friends: Friends
  dms: DirectMessages
  conferences: Conferences
  seen: SeenIds
  /** Friends known to be online, and where. */
  online: Map<string, { keyId: string, peerId: string, addrs: string[] }>
  draining: Promise<unknown>
  pollTimer?: NodeJS.Timeout
  ended: boolean
}

/** Refusals that will not change on a later read: the item is removed from the mailbox. */
const FINAL_ERRORS = new Set(['NotFriendError', 'InvalidEnvelopeError', 'InvalidRecordError', 'DecryptionError', 'InvalidInputError', 'UnknownUserError',
  'UnknownConferenceError', 'NotConferenceMemberError', 'NotConferenceOwnerError'])
function isFinal (err: any): boolean {
  return FINAL_ERRORS.has(err?.name) || /^(forged sender|not for the user|takeover)/.test(String(err?.message))
}

export class Messaging {
  private readonly host: MessagingHost
  private readonly init: MessagingInit
  private readonly local: LocalStore
  private readonly mailbox: Mailbox
  private readonly outbox: Outbox
  private active?: Active
  private running = false

  constructor (host: MessagingHost, init: MessagingInit = {}) {
    this.host = host
    this.init = init
    this.local = new LocalStore(host.init.dataDir)
    this.mailbox = new Mailbox(host.peer.sets, () => host.peer.libp2p.services.dht.getMode() === 'server')
    this.outbox = new Outbox({ local: this.local, mailbox: this.mailbox, messenger: host.messenger, locate: async (keyId, options) => await host.presence.read(keyId, options) },
      init, (envelope, delivery) => { this.onBackgroundDelivery(envelope, delivery) })
  }

  async start (): Promise<void> {
    await this.local.open()
    this.running = true
    this.mailbox.registerRules()
    for (const kind of FRIEND_KINDS) {
      this.host.onEnvelope(kind, async (env, ctx) => { await this.onFriendEnvelope(env, ctx) })
    }
    this.host.onEnvelope(DM_KIND, async (env, ctx) => { await this.onDm(env, ctx) })
    this.host.onEnvelope(PRESENCE_KIND, async (env, ctx) => { await this.onPresence(env, ctx) })
    for (const kind of CONFERENCE_KINDS) {
      this.host.onEnvelope(kind, async (env, ctx) => { await (await this.activeFor(ctx)).conferences.receive(env, ctx) })
    }
    this.host.peer.addEventListener('network:joined', () => { this.outbox.kick() })
    this.host.addEventListener('session:started', () => {
      try { this.afterLogin() } catch (err) { log.error('after login: %e', err) }
    })
    this.host.addEventListener('session:ended', (evt: CustomEvent<{ reason: string }>) => {
      try { this.afterSessionEnded(evt.detail.reason) } catch (err) { log.error('after session end: %e', err) }
    })
    this.outbox.start()
    // what an earlier run (or a killed process) left unsent
    this.outbox.kick()
  }

  async stop (): Promise<void> {
    if (!this.running) return
    this.running = false
    await this.outbox.stop()
    await this.local.close()
  }

  // ------------------------------------------------------------ session

  /** Called by ChatNode while a login begins: reads the account's private state. */
  async sessionStarting (session: Session): Promise<void> {
    const account = session.account
    const owner = { keyId: account.keyId, keys: account.keys }
    const state = new PrivateStateStore(this.host.peer.records, owner, this.init)
    const history = new History({ records: this.host.peer.records, local: this.local, state }, owner, this.init)
    const seenKey = (id: string): string => `/seen/${account.keyId}/${id}`
    const seen: SeenIds = {
      has: async id => await this.local.has(seenKey(id)),
      add: async id => { await this.local.put(seenKey(id), Date.now()) }
    }
    const deliver = async (kind: FriendKind, content: unknown, to: UserProfile): Promise<Delivery> => await this.outbox.send(this.seal(session, kind, content, to))
    const friends = new Friends({
      state,
      me: { username: account.username, keyId: account.keyId },
      keys: account.keys,
      profile: async u => await this.host.profile(u),
      presenceOf: async keyId => await this.host.presence.read(keyId),
      deliver,
      onFriend: (friend, presence, announce) => { this.trackFriend(friend, presence, announce === true) },
      emit: (type, detail) => { this.emit(type, detail) }
    })
    const dms = new DirectMessages({
      me: { username: account.username, keyId: account.keyId },
      keys: account.keys,
      friends,
      history,
      profile: async u => await this.host.profile(u),
      seal: (kind, content, to) => this.seal(session, kind, content, to),
      dispatch: async envelope => await this.outbox.send(envelope),
      emit: (type, detail) => { this.emit(type, detail) }
    })
    const conferences = new Conferences({
      me: { username: account.username, keyId: account.keyId },
      keys: account.keys,
      state,
      history,
      records: this.host.peer.records,
      local: this.local,
      friends,
      profile: async u => await this.host.profile(u),
      presenceOf: async keyId => await this.host.presence.read(keyId),
      dispatch: async envelope => await this.outbox.send(envelope),
      emit: (type, detail) => { this.emit(type, detail) }
    })
    const ready = state.load().catch(err => { log.error('could not read the private state: %s', err.message) })
    this.active = { session, ready, state, history, friends, dms, conferences, seen, online: new Map(), draining: Promise.resolve(), ended: false }
    await ready
  }

  /** Called by ChatNode before a logout: tells online friends, writes what is pending. */
  async sessionEnding (session: Session): Promise<void> {
    const active = this.active
    if (active == null || active.session !== session) return
    this.deactivate(active)
    await this.announce(active, 'offline').catch(err => { log('offline notices: %s', err.message) })
    await this.closeSession(active)
  }

  private afterLogin (): void {
    const active = this.active
    if (active == null || active.session !== this.host.session) return
    this.announce(active, 'online').catch(err => { log('online notices: %s', err.message) })
    this.drain(active).catch(err => { log('mailbox at login: %s', err.message) })
    // membership changes made while this user was away (also in the mailbox; the newest record wins)
    active.ready.then(async () => { await active.conferences.refreshAll() }).catch(err => { log('conference refresh at login: %s', err.message) })
    this.outbox.kick()
    const pollMs = this.init.mailboxPollMs ?? DEFAULT_MAILBOX_POLL_MS
    if (pollMs > 0) {
      active.pollTimer = setInterval(() => { this.drain(active).catch(err => { log('mailbox check: %s', err.message) }) }, pollMs)
      active.pollTimer.unref()
    }
  }

  /** A takeover (or any end without our logout): write what is pending, quietly. */
  private afterSessionEnded (reason: string): void {
    const active = this.active
    if (active == null || active.session === this.host.session) return
    log('session ended (%s)', reason)
    this.deactivate(active)
    this.closeSession(active).catch(err => { log('closing the session: %s', err.message) })
  }

  private deactivate (active: Active): void {
    active.ended = true
    clearInterval(active.pollTimer)
    if (this.active === active) this.active = undefined
  }

  private async closeSession (active: Active): Promise<void> {
    await active.draining.catch(() => {})
    if (!await active.history.close(LOGOUT_FLUSH_MS)) log('history not fully written at logout')
    if (!await active.state.flush(LOGOUT_FLUSH_MS)) log('private state not written at logout')
    active.state.close()
  }

  private requireActive (): Active {
    const active = this.active
    if (active == null || active.session !== this.host.session) throw new NotLoggedInError()
    return active
  }

  private async ready (): Promise<Active> {
    const active = this.requireActive()
    await active.ready
    return active
  }

  /** A friend's profile from the private state (verified when the friendship began; keys
   * never change), when `username` is a friend who signs with `signPublic`: no DHT read. */
  friendProfile (username: string, signPublic: Uint8Array): UserProfile | undefined {
    const active = this.active
    if (active == null || active.session !== this.host.session) return undefined
    const friend = active.friends.friend(username, signPublic)
    return friend == null ? undefined : active.friends.profileOf(friend)
  }

  // ------------------------------------------------------------ public API (through ChatNode)

  async addFriend (username: string, note?: string): Promise<FriendActionResult> { return await (await this.ready()).friends.add(username, note) }
  async acceptFriend (username: string): Promise<FriendActionResult> { return await (await this.ready()).friends.accept(username) }
  async rejectFriend (username: string): Promise<FriendActionResult> { return await (await this.ready()).friends.reject(username) }
  async removeFriend (username: string): Promise<FriendActionResult> { return await (await this.ready()).friends.remove(username) }
  async friendRequests (): Promise<FriendRequests> { return (await this.ready()).friends.requests() }
  async friends (): Promise<FriendInfo[]> { return await (await this.ready()).friends.list() }
  async onlineFriends (): Promise<FriendInfo[]> { return (await this.friends()).filter(f => f.online) }
  async sendMessage (username: string, text: string): Promise<Delivery> { return await (await this.ready()).dms.send(username, text) }
  async history (username: string): Promise<ChatMessage[]> { return await (await this.ready()).dms.history(username) }

  /** The logged-in account's conferences (conferences.ts). */
  async conferences (): Promise<Conferences> { return (await this.ready()).conferences }

  /** Read the mailbox now (it is read at login and every `mailboxPollMs`); returns the new messages. */
  async checkMailbox (): Promise<IncomingMessage[]> { return await this.drain(await this.ready()) }

  /** Envelopes this peer still has to send (all accounts), oldest first. */
  async queued (): Promise<QueuedEnvelope[]> { return await this.outbox.queued() }

  /** Write pending history and private state now (tests, benchmarks, before a planned stop). */
  async flush (): Promise<boolean> {
    const active = await this.ready()
    const history = await active.history.flush()
    return await active.state.flush(LOGOUT_FLUSH_MS) && history
  }

  /** Report an envelope that ChatNode refused. */
  refused (envelope: Envelope, reason: string, live: boolean): void {
    log('refused %s %s from %s (%s): %s', envelope.kind, envelope.id, envelope.from, live ? 'live' : 'mailbox', reason)
    this.emit('envelope:refused', { id: envelope.id, kind: envelope.kind, from: envelope.from, reason, live })
  }

  // ------------------------------------------------------------ envelopes in

  private async activeFor (ctx: EnvelopeContext): Promise<Active> {
    const active = this.active
    if (active == null || active.session !== ctx.session) throw new Error('no user logged in here')
    await active.ready
    return active
  }

  private async onFriendEnvelope (env: Envelope, ctx: EnvelopeContext): Promise<void> {
    const active = await this.activeFor(ctx)
    if (await active.seen.has(env.id)) return
    await active.friends.receive(env, ctx)
    await active.seen.add(env.id)
  }

  private async onDm (env: Envelope, ctx: EnvelopeContext): Promise<void> {
    await (await this.activeFor(ctx)).dms.receive(env, ctx)
  }

  private async onPresence (env: Envelope, ctx: EnvelopeContext): Promise<void> {
    const active = await this.activeFor(ctx)
    // a notice is news only as it happens
    if (!ctx.live) return
    const friend = active.friends.friend(env.from, env.fromKey)
    if (friend == null) throw new Error(`presence notice from ${env.from}, who is not a friend`)
    const body = openEnvelope(env, active.session.account.keys, presenceBodySchema)
    const online = body.status === 'online'
    this.outbox.noteLocation(friend.keyId, { online, peerId: body.peerId, addrs: body.addrs })
    if (online) {
      active.online.set(friend.username, { keyId: friend.keyId, peerId: body.peerId, addrs: body.addrs })
      this.outbox.kick(friend.keyId)
    } else {
      active.online.delete(friend.username)
    }
    this.emit('presence', { username: env.from, online })
  }

  /**
   * Keep the map of online friends (told at logout) current: from a presence read, or, for
   * a friendship that just began, by reading theirs and telling them we are online.
   */
  private trackFriend (friend: FriendEntry, presence: PresenceInfo | undefined, announce: boolean): void {
    const active = this.active
    if (active == null) return
    const note = (p: PresenceInfo | undefined): boolean => {
      if (p == null || active.ended) return false
      this.outbox.noteLocation(friend.keyId, p)
      if (p.online) active.online.set(friend.username, { keyId: friend.keyId, peerId: p.peerId, addrs: p.addrs })
      else active.online.delete(friend.username)
      return p.online
    }
    if (presence != null) { note(presence); return }
    this.host.presence.read(friend.keyId)
      .then(async p => {
        if (!note(p) || p == null || !announce) return
        const env = this.seal(active.session, PRESENCE_KIND, { status: 'online', ...this.whereAmI() }, active.friends.profileOf(friend))
        await this.host.messenger.send(p.peerId, p.addrs, env)
      })
      .catch(err => { log('presence of %s: %s', friend.username, err.message) })
  }

  private whereAmI (): { peerId: string, addrs: string[] } {
    return { peerId: this.host.peer.peerId.toString(), addrs: this.host.peer.multiaddrs.map(a => a.toString()).slice(0, 16) }
  }

  // ------------------------------------------------------------ mailbox

  /** Read the mailbox, hand each envelope (oldest first) to its handler, show the new
   * messages at once, then remove what was handled. One read at a time. */
  private async drain (active: Active): Promise<IncomingMessage[]> {
    const run = active.draining.catch(() => {}).then(async () => await this.drainOnce(active))
    active.draining = run
    return await run
  }

  private async drainOnce (active: Active): Promise<IncomingMessage[]> {
    if (active.ended) return []
    await active.ready
    const { account } = active.session
    const timeout = this.init.mailboxTimeoutMs ?? DEFAULT_MAILBOX_TIMEOUT_MS
    const mail = await this.mailbox.fetch(account.keyId, { signal: AbortSignal.timeout(timeout) })
    const done: string[] = []
    for (const bad of mail.invalid) {
      log('dropped mailbox item %s: %s', bad.id, bad.reason)
      done.push(bad.id)
    }
    const envelopes = mail.envelopes.sort(compareEntries)
    // the senders' keys, looked up at once: junk from made-up names must not cost a lookup each in turn
    const senders = new Map<string, UserProfile | Error>()
    await Promise.all([...new Set(envelopes.map(e => e.from))].map(async u => {
      senders.set(u, await this.host.profile(u).catch((err: Error) => err))
    }))
    active.dms.beginBatch()
    active.conferences.beginBatch()
    let batch: IncomingMessage[]
    try {
      for (const env of envelopes) {
        if (active.ended || this.host.session !== active.session) break
        if (env.kind === PRESENCE_KIND) { done.push(env.id); continue }
        // a kind this peer does not know yet (a newer peer sent it): leave it for one that does
        if (!this.host.handlesKind(env.kind)) { log('left %s of unknown kind %s in the mailbox', env.id, env.kind); continue }
        const sender = senders.get(env.from)
        if (sender instanceof Error) {
          if (sender.name !== 'UnknownUserError') { log('sender %s not found now, %s left for later: %s', env.from, env.id, sender.message); continue }
          this.refused(env, sender.message, false)
          done.push(env.id)
          continue
        }
        try {
          await this.host.accept(env, false)
          done.push(env.id)
        } catch (err: any) {
          this.refused(env, String(err.message), false)
          if (isFinal(err)) done.push(env.id)
        }
      }
    } finally {
      // direct and conference messages in one listing, oldest first
      batch = [...active.dms.endBatch(), ...active.conferences.endBatch()].sort(compareEntries)
    }
    if (batch.length > 0) this.emit('messages:offline', { messages: batch })
    if (done.length > 0 && !active.ended) {
      await this.mailbox.remove(account.keyId, done, account.keys, { signal: AbortSignal.timeout(timeout) })
        .catch(err => { log('could not remove %d delivered items: %s', done.length, err.message) })
    }
    return batch
  }

  // ------------------------------------------------------------ envelopes out

  private seal (session: Session, kind: string, content: unknown, to: UserProfile): Envelope {
    return createEnvelope(kind, content, { username: session.account.username, keys: session.account.keys }, to)
  }

  /** Tell friends we came online (those online now) or are leaving (those we know online). */
  private async announce (active: Active, status: 'online' | 'offline'): Promise<void> {
    const me = this.whereAmI()
    const session = active.session
    const targets: Array<{ username: string, keyId: string, peerId: string, addrs: string[], profile: UserProfile }> = []
    if (status === 'online') {
      await active.ready
      const friends = [...active.state.state.friends]
      for (let i = 0; i < friends.length; i += NOTICE_CONCURRENCY) {
        await Promise.all(friends.slice(i, i + NOTICE_CONCURRENCY).map(async f => {
          const p = await this.host.presence.read(f.keyId).catch(() => undefined)
          if (p == null) return
          this.outbox.noteLocation(f.keyId, p)
          if (!p.online) return
          active.online.set(f.username, { keyId: f.keyId, peerId: p.peerId, addrs: p.addrs })
          targets.push({ username: f.username, keyId: f.keyId, peerId: p.peerId, addrs: p.addrs, profile: active.friends.profileOf(f) })
        }))
      }
    } else {
      for (const [username, where] of active.online) {
        const f = active.friends.friend(username)
        if (f != null) targets.push({ username, ...where, profile: active.friends.profileOf(f) })
      }
    }
    const sends = targets.map(async t => {
      const env = this.seal(session, PRESENCE_KIND, { status, ...me }, t.profile)
      const result = await this.host.messenger.send(t.peerId, t.addrs, env)
      if (!result.delivered) log('presence notice to %s not delivered: %s', t.username, result.reason)
    })
    let timer: NodeJS.Timeout | undefined
    const limit = new Promise<void>(resolve => { timer = setTimeout(resolve, status === 'offline' ? NOTICE_TIMEOUT_MS : 10 * NOTICE_TIMEOUT_MS) })
    await Promise.race([Promise.allSettled(sends), limit])
    clearTimeout(timer)
  }

  private onBackgroundDelivery (envelope: Envelope, delivery: Delivery): void {
    // only the sender, if logged in here, cares how its message went
    if (this.host.session?.account.username !== envelope.from) return
    this.emit('message:status', {
      id: envelope.id,
      kind: envelope.kind,
      to: envelope.to,
      status: delivery.status,
      ...(delivery.where != null ? { where: delivery.where } : {}),
      ...(delivery.reason != null ? { reason: delivery.reason } : {})
    })
  }

  private emit<K extends keyof MessagingEvents> (type: K, detail: MessagingEvents[K]['detail']): void {
    this.host.dispatchEvent(new CustomEvent(type, { detail }))
  }
}
