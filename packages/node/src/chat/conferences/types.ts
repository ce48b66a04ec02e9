/** The contract of the conferences part: what it needs, what it tells, what it returns. */
import type { AbortOptions, ComponentLogger } from '@libp2p/interface'
import type { AccountKeys, Envelope, FriendEntry, HistoryEntry, PrivateState } from '@conf-chat/protocol'
import type { PresenceInfo, StateMutation, UserProfile } from '../../account/index.js'
import type { Delivery, SendOptions } from '../../delivery/index.js'
import type { RecordStore } from '../../network/index.js'
import type { LocalStore } from '../../storage/index.js'
import type { IncomingMessage, DirectMessageEvents } from '../direct/index.js'

export interface ConferenceInfo {
  id: string
  /** The DHT key of its owner-signed record, `/cc-conf/<ownerKeyId>/<localId>`. */
  key: string
  name: string
  owner: string
  /** Current members, in the order they joined. */
  members: string[]
  createdAt: number
  /** Members online now (presence), this user included; set by `list()`. */
  online?: number
}

export interface ConferenceMemberInfo {
  username: string
  joinedAt: number
  owner: boolean
  online: boolean
}

/** A conference message as shown: an IncomingMessage (it sorts into the offline batch with direct ones) plus its conference. */
export interface ConferenceMessage extends IncomingMessage {
  conference: { id: string, name: string }
}

export function isConferenceMessage (m: IncomingMessage | ConferenceMessage): m is ConferenceMessage {
  return (m as ConferenceMessage).conference != null
}

export interface ConferenceDelivery {
  username: string
  delivery: Delivery
}

export interface ConferenceSendResult {
  /** The message's id (the same in every member's copy). */
  id: string
  conference: string
  sentAt: number
  /** One per other member: delivered live, queued (mailbox or outbox), or failed. */
  deliveries: ConferenceDelivery[]
}

export interface ConferenceChangeResult {
  conference: ConferenceInfo
  /** The users invited, removed, or (leave) this user. */
  usernames: string[]
  /** How each member was told. */
  deliveries: ConferenceDelivery[]
}

export interface ConferenceEvents {
  /** This user was invited (live, or read from the mailbox at login). */
  'conference:invited': CustomEvent<{ conference: ConferenceInfo, by: string }>
  /** A conference message arrived live; from the mailbox they come in `messages:offline`. */
  'conference:message': CustomEvent<ConferenceMessage>
  /** The owner invited others. */
  'conference:joined': CustomEvent<{ conference: ConferenceInfo, usernames: string[], by: string }>
  /** A member left. */
  'conference:left': CustomEvent<{ conference: ConferenceInfo, username: string }>
  /** The owner removed members; `you`: this user was among them. */
  'conference:removed': CustomEvent<{ conference: ConferenceInfo, usernames: string[], by: string, you: boolean }>
}

/** Tells the user: the conference events, and `messages:offline` for mailbox messages outside a batch. */
export type ConferenceEmit = <K extends keyof ConferenceEvents | 'messages:offline'>(type: K, detail: (ConferenceEvents & DirectMessageEvents)[K]['detail']) => void

/** The account's private state as the conferences part uses it (a PrivateStateStore). */
export interface ConferenceState {
  /** The current state; read only: change it with `update`. */
  readonly state: PrivateState
  /** Apply `mutate` at once; resolves when it is written (or failed to be, for now). */
  update: (mutate: StateMutation) => Promise<unknown>
}

/** The account's message history (a History): conversations keyed by a conversation name. */
export interface ConferenceHistory {
  /**
   * `unshown`: shown at the end of a mailbox read, kept as not shown until then. False when
   * the history is closing: the entry will not reach the DHT pages (see History).
   */
  append: (conversation: string, entry: HistoryEntry, isNew?: boolean, unshown?: { conference?: { id: string, name: string } }) => Promise<boolean>
  /** Whether this peer's copy of the conversation holds the message (after a takeover, also the DHT pages). */
  knows: (conversation: string, id: string, options?: AbortOptions) => Promise<boolean>
  /** Whether the conversation holds the message, here or in the DHT pages. */
  has: (conversation: string, id: string, options?: AbortOptions) => Promise<boolean>
  list: (conversation: string, options?: AbortOptions) => Promise<HistoryEntry[]>
}

/** The friends of the account (a Friends): nobody is put in a conference unless a friend asks. */
export interface ConferenceFriends {
  friend: (username: string, signPublic?: Uint8Array) => FriendEntry | undefined
  profileOf: (friend: FriendEntry) => UserProfile
}

export interface ConferencesComponents {
  me: { username: string, keyId: string }
  keys: AccountKeys
  state: ConferenceState
  history: ConferenceHistory
  /** The DHT's signed records (the `/cc-conf/...` membership records). */
  records: Pick<RecordStore, 'get' | 'put'>
  /** This peer's cache of the records. */
  local: Pick<LocalStore, 'get' | 'put'>
  friends: ConferenceFriends
  profile: (username: string, options?: AbortOptions) => Promise<UserProfile>
  presenceOf: (keyId: string, options?: AbortOptions) => Promise<PresenceInfo | undefined>
  /** Persist in the outbox and deliver (live, else mailbox, else retried). */
  dispatch: (envelope: Envelope, options?: SendOptions) => Promise<Delivery>
  emit: ConferenceEmit
  /** The states of the copies sent, and what is told read (without: none are kept). */
  receipts?: ConferenceReceipts
  /** @default defaultLogger() from @libp2p/logger */
  logger?: ComponentLogger
  /** The clock for join, leave, send and record times (ms since epoch). @default Date.now */
  now?: () => number
}

/** What conferences use of the chat layer's Receipts (direct/receipts.ts). */
export interface ConferenceReceipts {
  sending: (to: { keyId: string, username: string }, id: string, copyOf: { conference: string, mid: string }) => void
  delivery: (to: { keyId: string, username: string }, id: string, delivery: Pick<Delivery, 'status' | 'where' | 'reason'>) => Promise<void>
  shown: (from: { keyId: string, username: string }, id: string, live: boolean, conference: string) => void
  flushDelivered: () => void
}

export interface ConferencesInit {
  /**
   * Shortest time between two DHT reads of one conference's record caused by a message
   * from a sender not (yet) in this user's view, in ms.
   * @default 5000
   */
  refreshMinMs?: number
  /**
   * Presence lookups `list()` and `members()` run at once.
   * @default 8
   */
  presenceConcurrency?: number
  /**
   * Records read at once by `refreshAll()` (after login).
   * @default 4
   */
  refreshConcurrency?: number
}
