/** The contract of the friends part: what it needs, what it tells, what it returns. */
import type { AbortOptions, ComponentLogger } from '@libp2p/interface'
import type { AccountKeys, FriendEntry, FriendKind, PrivateState } from '@conf-chat/protocol'
import type { PresenceInfo, StateMutation, UserProfile } from '../../account/index.js'
import type { Delivery } from '../../delivery/index.js'

export interface FriendInfo {
  username: string
  /** Friends since (ms since epoch). */
  since: number
  note?: string
  online: boolean
}

export interface FriendRequestInfo {
  username: string
  note?: string
  at: number
}

export interface FriendRequests {
  incoming: FriendRequestInfo[]
  outgoing: FriendRequestInfo[]
}

export interface FriendActionResult {
  username: string
  /** What happened: a request sent, a friendship begun, a request turned down, a friend removed. */
  action: 'requested' | 'accepted' | 'rejected' | 'removed'
  /** How the other side was told. */
  delivery: Delivery
}

export interface FriendEvents {
  'friend:request': CustomEvent<FriendRequestInfo>
  /** A friendship began: they accepted our request (or asked while we asked them). */
  'friend:accepted': CustomEvent<{ username: string }>
  'friend:rejected': CustomEvent<{ username: string }>
  'friend:removed': CustomEvent<{ username: string }>
  /**
   * A friend envelope came from `username` under another key than the one we first knew
   * them by (fingerprints of both): refused, nothing applied.
   */
  'friend:key-changed': CustomEvent<{ username: string, pinned: string, found: string }>
}

/** The account's private state as the friends part uses it (a PrivateStateStore). */
export interface FriendState {
  /** The current state; read only: change it with `update`. */
  readonly state: PrivateState
  /** Apply `mutate` at once, before it returns; resolves when it is written (or failed to be, for now). */
  update: (mutate: StateMutation) => Promise<unknown>
}

export type DeliverFriendEnvelope = (kind: FriendKind, content: unknown, to: UserProfile, options?: AbortOptions) => Promise<Delivery>
export type FriendEmit = <K extends keyof FriendEvents>(type: K, detail: FriendEvents[K]['detail']) => void
/**
 * A friend's presence was read (`presence`), or a friendship began (`announce`: the
 * other side's envelope began it, so they know us already and may hear we are online).
 */
export type OnFriend = (friend: FriendEntry, presence?: PresenceInfo, announce?: boolean) => void

/** What strangers may leave in the private state (friend-state.ts: DEFAULT_REQUEST_LIMITS). */
export interface RequestLimits {
  /** Incoming requests waiting for an answer. */
  maxIncoming: number
  /** How long an incoming request waits; also how old a friend envelope may be. */
  ttlMs: number
}

export interface FriendsComponents {
  state: FriendState
  me: { username: string, keyId: string }
  keys: Pick<AccountKeys, 'boxPublic' | 'boxSecret'>
  profile: (username: string, options?: AbortOptions) => Promise<UserProfile>
  presenceOf: (keyId: string, options?: AbortOptions) => Promise<PresenceInfo | undefined>
  /** Seal, sign, persist in the outbox and deliver. */
  deliver: DeliverFriendEnvelope
  onFriend: OnFriend
  emit: FriendEmit
  /** @default defaultLogger() from @libp2p/logger */
  logger?: ComponentLogger
  /** The clock for request and friendship times (ms since epoch). @default Date.now */
  now?: () => number
  /** What strangers may leave in the private state. @default DEFAULT_REQUEST_LIMITS */
  limits?: RequestLimits
}
