/**
 * What exists while a user is logged in on this peer: the account's private state, its
 * history, and the friends, direct-message and conference parts built on them. Made at
 * login (the private state read from the DHT) and closed at logout or takeover.
 */
import type { AbortOptions, ComponentLogger } from '@libp2p/interface'
import { bytesEqual, createEnvelope, FRIEND_ACCEPT_KIND, FRIEND_REQUEST_KIND, type AccountKeys, type Envelope, type FriendKind } from '@conf-chat/protocol'
import { PrivateStateStore, type PrivateStateInit, type Presence, type Session, type UserProfile } from '../account/index.js'
import type { Delivery, FetchedMail, Mailbox, SendOptions } from '../delivery/index.js'
import type { RecordStore } from '../network/index.js'
import type { LocalStore } from '../storage/index.js'
import { abortable, within, type DueRuns } from '../utils/index.js'
import { DEFAULT_QUERY_TIMEOUT_MS } from '../constants.js'
import { History, type HistoryInit } from './history.js'
import { Friends, type RequestLimits } from './friends/index.js'
import { DirectMessages, Receipts } from './direct/index.js'
import { Conferences } from './conferences/index.js'
import type { MessagingEvents } from './events.js'
import { StateJournal } from './state-journal.js'
import { MailboxWriters } from './mailbox-writers.js'

/**
 * Longest a logout waits for each of its writes (pending history, then the private state
 * with the history's page counts): one DHT query's time limit. A write's closest-peers
 * lookup can wait on a peer that vanished a moment ago for kad-dht's per-RPC limit (5 s
 * and more) before that peer's connection is found dead (network/liveness.ts); with 5 s
 * here, a logout right after the supernode's host was cut left the history unwritten,
 * and the account's other peers showed an empty conversation.
 */
export const LOGOUT_FLUSH_MS = DEFAULT_QUERY_TIMEOUT_MS

/** Longest a friend request or accept waits for the mailbox writer list that names its recipient. */
export const WRITERS_FLUSH_MS = 5_000

/** Envelope ids the account has handled on this peer (friend envelopes; messages are known by the history). */
export interface SeenIds {
  has: (id: string) => Promise<boolean>
  add: (id: string) => Promise<void>
}

export interface OnlineFriend { keyId: string, peerId: string, addrs: string[] }

export interface LoggedInComponents {
  records: RecordStore
  local: LocalStore
  presence: Pick<Presence, 'read'>
  /** Where the account's writer list is stored (see MailboxWriters). */
  mailbox: Pick<Mailbox, 'storeWriterList' | 'remove'>
  profile: (username: string, options?: AbortOptions) => Promise<UserProfile>
  /** Persist in the outbox and deliver. */
  dispatch: (envelope: Envelope, options?: SendOptions) => Promise<Delivery>
  /** A friend's presence was read, or a friendship began (see Friends' onFriend). */
  onFriend: (loggedIn: LoggedIn, friend: Parameters<Friends['profileOf']>[0], presence?: Awaited<ReturnType<Presence['read']>>, announce?: boolean) => void
  emit: <K extends keyof MessagingEvents>(type: K, detail: MessagingEvents[K]['detail']) => void
  /** Whether the user tells senders what they read (`read` receipts). */
  readReceipts: () => boolean
  logger: ComponentLogger
}

export interface LoggedInInit extends PrivateStateInit, HistoryInit {
  /** What strangers may leave in the private state (friend requests). @default DEFAULT_REQUEST_LIMITS */
  friendRequests?: RequestLimits
}

/** The mailbox fetched ahead of a read (MailboxReader.fetchAhead), and the ids it listed. */
export interface FetchedAhead { mail: FetchedMail, listed: Set<string> }

export class LoggedIn {
  readonly session: Session
  readonly state: PrivateStateStore
  readonly history: History
  readonly friends: Friends
  readonly dms: DirectMessages
  /** The states of the messages sent from here, and the receipts told and received. */
  readonly receipts: Receipts
  readonly conferences: Conferences
  readonly seen: SeenIds
  /** Envelopes whose change of the private state is not written yet (see StateJournal). */
  readonly journal: StateJournal
  /** Friends known to be online, and where. */
  readonly online = new Map<string, OnlineFriend>()
  /**
   * Friends (by key id) whose peer went away without a word, and when we found out: their
   * presence record may say "online" until it lapses; a record written later wins again.
   */
  readonly gone = new Map<string, number>()
  /** Per friend (keyId), the last presence notice applied: from which of their peers, sent when (an older one from that peer arriving later is stale). */
  readonly lastNotice = new Map<string, { peerId: string, sentAt: number }>()
  /** Resolves once the private state is loaded (or its load failed: see `loaded`). */
  readonly ready: Promise<void>
  /** Whether the private state was read (a failed read leaves it empty). */
  loaded = false
  /** Keeps the list of senders the account knows in its mailbox. */
  readonly writers: MailboxWriters
  /** The mailbox read under way (one at a time). */
  draining: Promise<unknown> = Promise.resolve()
  /** The mailbox fetched while the login runs, for the session's first read (MailboxReader.fetchAhead). */
  fetchedAhead?: Promise<FetchedAhead | undefined>
  /**
   * Ids of envelopes of kinds this peer does not know, left in the mailbox for a newer
   * peer of the user's: later reads do not fetch them again (mailbox-reader.ts).
   */
  readonly leftInMailbox = new Set<string>()
  pollTimer?: NodeJS.Timeout
  /** Mailbox reads due soon (after login, a live refusal, a rejoin, a stall); set by Messaging. */
  mailboxReads?: DueRuns
  /** Stops the watch for stalls of this process (see Messaging). */
  stopStallWatch?: () => void
  ended = false

  constructor (c: LoggedInComponents, session: Session, init: LoggedInInit = {}, options: AbortOptions = {}) {
    this.session = session
    const account = session.account
    const me = { username: account.username, keyId: account.keyId }
    const owner = { keyId: account.keyId, keys: account.keys }
    const log = c.logger.forComponent('conf-chat:chat:session')
    this.state = new PrivateStateStore({
      records: c.records,
      owner,
      onRetry: (attempt, retryInMs) => { c.emit('network:slow', { what: 'your friends and conferences', attempt, retryInMs }) },
      onUnsaved: (failures, reason) => { c.emit('state:unsaved', { failures, reason }) },
      onSaved: failures => { c.emit('state:saved', { failures }) },
      onChange: () => { this.writers?.changed() },
      logger: c.logger
    }, init)
    this.writers = new MailboxWriters({
      state: () => this.state.state,
      keyId: account.keyId,
      keys: account.keys,
      store: async item => await c.mailbox.storeWriterList(account.keyId, item),
      remove: async ids => { await c.mailbox.remove(account.keyId, ids, account.keys, { signal: AbortSignal.timeout(LOGOUT_FLUSH_MS) }) },
      logger: c.logger
    })
    this.history = new History({ records: c.records, local: c.local, state: this.state, logger: c.logger }, owner, init)
    const seenKey = (id: string): string => `/seen/${account.keyId}/${id}`
    this.seen = {
      has: async id => await c.local.has(seenKey(id)),
      add: async id => { await c.local.put(seenKey(id), Date.now()) }
    }
    this.journal = new StateJournal(c.local, account.keyId, c.logger)
    const profile = async (u: string, options?: AbortOptions): Promise<UserProfile> => await c.profile(u, options)
    const presenceOf = async (keyId: string, options?: AbortOptions): ReturnType<Presence['read']> => {
      const p = await c.presence.read(keyId, options)
      const goneAt = this.gone.get(keyId)
      return p?.online === true && goneAt != null && goneAt >= p.updatedAt ? { ...p, online: false } : p
    }
    this.friends = new Friends({
      state: this.state,
      me,
      keys: account.keys,
      profile,
      presenceOf,
      deliver: async (kind: FriendKind, content: unknown, to: UserProfile, options?: AbortOptions): Promise<Delivery> => {
        // whoever is asked or accepted may write to our mailbox as soon as they know: the
        // list that names them goes to its holders first (a logout or a lost link right after
        // would leave them refused there until this peer is back)
        if (kind === FRIEND_REQUEST_KIND || kind === FRIEND_ACCEPT_KIND) await within(this.writers.flush(), WRITERS_FLUSH_MS, false, options)
        return await c.dispatch(this.seal(kind, content, to), { ...options, recipientBoxPublic: to.boxPublic })
      },
      onFriend: (friend, presence, announce) => { c.onFriend(this, friend, presence, announce === true) },
      emit: (type, detail) => { c.emit(type, detail) },
      logger: c.logger,
      ...(init.friendRequests != null ? { limits: init.friendRequests } : {})
    })
    this.receipts = new Receipts({
      me,
      local: c.local,
      friends: this.friends,
      keys: account.keys,
      seal: (kind, content, to) => this.seal(kind, content, to),
      dispatch: c.dispatch,
      readReceipts: c.readReceipts,
      conferenceReceipt: async (conference, toKeyId, body) => { await this.conferences.sendReceipt(conference, toKeyId, body) },
      emit: (type, detail) => { c.emit(type, detail) },
      logger: c.logger
    })
    this.dms = new DirectMessages({
      me,
      keys: account.keys,
      friends: this.friends,
      history: this.history,
      receipts: this.receipts,
      profile,
      seal: (kind, content, to) => this.seal(kind, content, to),
      dispatch: c.dispatch,
      emit: (type, detail) => { c.emit(type, detail) },
      logger: c.logger
    })
    this.conferences = new Conferences({
      me,
      keys: account.keys,
      state: this.state,
      history: this.history,
      records: c.records,
      local: c.local,
      friends: this.friends,
      profile,
      presenceOf,
      dispatch: c.dispatch,
      receipts: this.receipts,
      emit: (type, detail) => { c.emit(type, detail) },
      logger: c.logger
    })
    this.ready = this.state.load(options).then(() => { this.loaded = true }, err => {
      // a cancelled login is abandoned (its empty state never used); any other failure is logged
      if (options.signal?.aborted !== true) log.error('could not read the private state: %s', err.message)
    })
  }

  /** Seal `content` to `to`, signed by the logged-in account. */
  seal (kind: string, content: unknown, to: UserProfile): Envelope {
    return createEnvelope(kind, content, { username: this.session.account.username, keys: this.session.account.keys }, to)
  }

  /**
   * The account's box keys if it sent `envelope`: its outbox then seals the envelope into
   * the recipient's mailbox (Mailbox.store).
   */
  senderBoxKeys (envelope: Envelope): Pick<AccountKeys, 'boxPublic' | 'boxSecret'> | undefined {
    const account = this.session.account
    return envelope.from === account.username && bytesEqual(envelope.fromKey, account.keys.signPublic) ? account.keys : undefined
  }

  /** Stop background work; what is under way may finish. */
  deactivate (): void {
    this.ended = true
    this.fetchedAhead = undefined
    clearInterval(this.pollTimer)
    this.mailboxReads?.clear()
    this.stopStallWatch?.()
    this.writers.stop()
  }

  /**
   * Write pending history and private state (each within LOGOUT_FLUSH_MS, all of it cut
   * short when `options.signal` aborts: a program stopping), then close; never stops
   * half-way. Returns what did not finish. Its history entries stay marked here and the
   * next login on this peer writes them (History.resumeWrites), as it applies again the
   * envelopes whose changes were not written (StateJournal).
   */
  async close (options: AbortOptions = {}): Promise<string[]> {
    const unfinished: string[] = []
    // the mailbox read under way ends first (what it shows gets into the history); a stop
    // may cut that short: what the read hands over from then on is refused, and stays in
    // the mailbox for the next read (History.append)
    await abortable(this.draining, options).catch(() => {})
    // (local writes only: never cut short)
    await this.receipts.settled()
    // the senders the account came to know this session (a friendship accepted a moment ago)
    const writers = within(this.writers.flush(), LOGOUT_FLUSH_MS, false, options)
    if (!await this.history.close(LOGOUT_FLUSH_MS, options)) unfinished.push('history')
    if (!await this.state.flush(LOGOUT_FLUSH_MS, options)) unfinished.push('private state')
    this.state.close()
    if (!await writers) unfinished.push('mailbox writer list')
    this.writers.close()
    return unfinished
  }

  /** Write pending history and private state now; false if that did not finish (or `options.signal` aborted first). */
  async flush (options: AbortOptions = {}): Promise<boolean> {
    const history = await within(this.history.flush(), LOGOUT_FLUSH_MS, false, options)
    return await this.state.flush(LOGOUT_FLUSH_MS, options) && history
  }
}
