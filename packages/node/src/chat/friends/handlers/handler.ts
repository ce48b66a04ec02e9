/** What every friend-envelope handler is given and implements. */
import type { AbortOptions, ComponentLogger } from '@libp2p/interface'
import type { AccountKeys, Envelope } from '@conf-chat/protocol'
import type { StateMutation, UserProfile } from '../../../account/index.js'
import type { DeliverFriendEnvelope, FriendEmit, FriendState, OnFriend, RequestLimits } from '../types.js'

/** One inbound friend envelope, already checked (for us, signed by the owner of `from`) and not stale. */
export interface FriendEnvelope {
  envelope: Envelope
  /** The verified sender. */
  sender: UserProfile
  /** Records the envelope as the last applied from its sender: run it inside the state change the handler makes. */
  seen: StateMutation
}

/**
 * A handler changes the private state with `state.update` and does not await the write:
 * the change is applied in memory at once, the envelope is kept on this peer until the
 * change is written (Messaging's StateJournal), and its ack (or its removal from the
 * mailbox) never waits on the DHT.
 */
export interface FriendEnvelopeHandler {
  handle: (input: FriendEnvelope, options?: AbortOptions) => Promise<void>
}

/** Everything a handler may need; each one picks its part. */
export interface FriendHandlerComponents {
  state: FriendState
  keys: Pick<AccountKeys, 'boxPublic' | 'boxSecret'>
  deliver: DeliverFriendEnvelope
  onFriend: OnFriend
  emit: FriendEmit
  logger: ComponentLogger
  now: () => number
  limits: RequestLimits
}
