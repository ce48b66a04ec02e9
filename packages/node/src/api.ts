/**
 * The contract of the core library: what a program (the terminal UI, the benchmarks,
 * the tests) may rely on. The implementation is chat-node.ts; `createChatNode` in
 * index.ts makes one.
 */
import type { AbortOptions, TypedEventTarget } from '@libp2p/interface'
import type { ChatPeer, ChatPeerInit } from './network/index.js'
import type { DeliveryResult, Delivery, QueuedEnvelope, MessengerInit } from './delivery/index.js'
import type { AccountsInit, PresenceInit, PresenceInfo, DirectoryUser, LoginTimings, UserProfile, Session, SessionEndReason } from './account/index.js'
import type {
  MessagingInit, MessagingEvents, FriendActionResult, FriendInfo, FriendRequests, ChatMessage, IncomingMessage,
  ConferenceChangeResult, ConferenceInfo, ConferenceMemberInfo, ConferenceMessage, ConferenceSendResult
} from './chat/index.js'

export interface ChatNodeInit extends ChatPeerInit, AccountsInit, PresenceInit, MessengerInit, MessagingInit {}

export type ChatNodeStatus = 'stopped' | 'starting' | 'started' | 'stopping'

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

/**
 * One running peer and at most one logged-in user on it. Every async method takes
 * `options` last; its `signal` cancels the network work under way. Methods that need a
 * user throw NotLoggedInError without one; every method but `start` throws
 * NotStartedError before `start()`.
 */
export interface ChatNode extends TypedEventTarget<ChatNodeEvents> {
  readonly status: ChatNodeStatus
  /** The libp2p peer in the project's DHT. */
  readonly peer: ChatPeer
  /** The logged-in user, if any. */
  readonly session: Session | undefined

  start: () => Promise<this>
  /** Logs the user out (friends told), stops the peer; `options.signal` cuts the logout's writes short (unwritten history stays marked here for the next login). */
  stop: (options?: AbortOptions) => Promise<void>

  /** Register a new account and log it in on this peer. */
  register: (input: { username: string, password: string, fullName: string }, options?: AbortOptions) => Promise<UserProfile>
  /** Log in from this peer: works for an account made on any peer of the network. */
  login: (username: string, password: string, options?: AbortOptions) => Promise<{ profile: UserProfile, timings: LoginTimings }>
  logout: (options?: AbortOptions) => Promise<void>
  changePassword: (oldPassword: string, newPassword: string, options?: AbortOptions) => Promise<void>
  whoami: () => WhoAmI

  /** Registered users whose name starts with `prefix`, with online status, online first. */
  users: (prefix?: string, options?: AbortOptions) => Promise<DirectoryUser[]>
  /** Users by username prefix or by a part of the full name (any case). */
  searchUsers: (text: string, options?: AbortOptions) => Promise<DirectoryUser[]>
  /** A user's verified profile (public keys). Throws UnknownUserError. */
  profile: (username: string, options?: AbortOptions) => Promise<UserProfile>
  presenceOf: (username: string, options?: AbortOptions) => Promise<PresenceInfo | undefined>

  /** Ask `username` to be friends (accepts instead if they asked us). */
  addFriend: (username: string, note?: string, options?: AbortOptions) => Promise<FriendActionResult>
  acceptFriend: (username: string, options?: AbortOptions) => Promise<FriendActionResult>
  rejectFriend: (username: string, options?: AbortOptions) => Promise<FriendActionResult>
  /** End a friendship, or withdraw a request of ours. */
  removeFriend: (username: string, options?: AbortOptions) => Promise<FriendActionResult>
  friendRequests: (options?: AbortOptions) => Promise<FriendRequests>
  /** Friends with online/offline status. */
  friends: (options?: AbortOptions) => Promise<FriendInfo[]>
  onlineFriends: (options?: AbortOptions) => Promise<FriendInfo[]>

  /** Send a direct message to a friend: delivered live, queued (mailbox or outbox), or failed. */
  sendMessage: (username: string, text: string, options?: AbortOptions) => Promise<Delivery>
  /**
   * The conversation with `username`, both directions, oldest first; each message sent
   * from this peer with its state (`message:state` events tell each change).
   */
  history: (username: string, options?: AbortOptions) => Promise<ChatMessage[]>
  /**
   * The user has seen the conversation with `username`: what was shown from them is read,
   * and they are told so (a signed `read` receipt) unless `readReceipts` is off. Resolves
   * with how many messages the receipt named.
   */
  markRead: (username: string, options?: AbortOptions) => Promise<number>
  /** Whether `read` receipts are sent (ChatNodeInit's `readReceipts`, default true); may be changed at any time. */
  readReceipts: boolean
  /** Read the mailbox now (also done at login and periodically). */
  checkMailbox: (options?: AbortOptions) => Promise<IncomingMessage[]>
  /** What this peer's outbox still has to send. */
  queued: (options?: AbortOptions) => Promise<QueuedEnvelope[]>
  /** Write pending history and private state now (before a planned stop). Resolves whether all was written. */
  flush: (options?: AbortOptions) => Promise<boolean>

  // `id` is a conference id (`conf-` and 16 hex digits) or a unique start of one.
  /** Create a conference with friends; each is told (live, or at their next login). */
  createConference: (name: string, usernames: string[], options?: AbortOptions) => Promise<ConferenceChangeResult>
  /** The user's conferences with their members and how many are online. */
  conferences: (options?: AbortOptions) => Promise<ConferenceInfo[]>
  conferenceMembers: (id: string, options?: AbortOptions) => Promise<{ conference: ConferenceInfo, members: ConferenceMemberInfo[] }>
  /** Send to every other member: live to those online, to the mailboxes of the others. */
  sendConferenceMessage: (id: string, text: string, options?: AbortOptions) => Promise<ConferenceSendResult>
  /** The owner invites more friends: they get what is sent from now on. */
  inviteToConference: (id: string, usernames: string[], options?: AbortOptions) => Promise<ConferenceChangeResult>
  /** The owner removes members. */
  removeFromConference: (id: string, usernames: string[], options?: AbortOptions) => Promise<ConferenceChangeResult>
  /** Leave a conference: the others are told, and nothing sent afterwards reaches this user. */
  leaveConference: (id: string, options?: AbortOptions) => Promise<ConferenceChangeResult>
  /**
   * The user has seen the conference's chat: each member whose messages were shown is told
   * (a `read` receipt) unless `readReceipts` is off; a message the user sends there moves
   * to delivered and read per member (`message:state` events with `conference` and `mid`).
   */
  markConferenceRead: (id: string, options?: AbortOptions) => Promise<number>
  /** The messages this member sent and received in a conference, oldest first, from any peer. */
  conferenceHistory: (id: string, options?: AbortOptions) => Promise<{ conference: ConferenceInfo, messages: ConferenceMessage[] }>
}

export type { DeliveryResult }
