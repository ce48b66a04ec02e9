/**
 * @conf-chat/node: the core library of conf-chat. `createChatNode` makes a peer of the
 * chat network that a program drives through the ChatNode interface and its events.
 * The network layer on its own (the supernode is a peer with no user) is
 * `@conf-chat/node/network`.
 */
import './polyfill.js'
import { DefaultChatNode } from './chat-node.js'
import type { ChatNode, ChatNodeInit } from './api.js'

export type { ChatNode, ChatNodeInit, ChatNodeEvents, ChatNodeStatus, WhoAmI, DeliveryResult } from './api.js'
export * from './errors.js'
export { DEFAULT_HOST, DEFAULT_SUPERNODE_PORT, DEFAULT_PRESENCE_TTL_MS, DEFAULT_PRESENCE_REFRESH_MS, DEFAULT_STORAGE_BUDGET_BYTES } from './constants.js'
export { parseBootstrapAddrs, UnknownRecordError, type ChatPeer, type ChatPeerInit, type ChatPeerEvents } from './network/index.js'
export type { Delivery, DeliveryStatus, QueuedEnvelope } from './delivery/index.js'
export { CHAT_PROTOCOL } from './delivery/index.js'
export type { UserProfile, PresenceInfo, DirectoryUser, LoginTimings, Session, SessionEndReason } from './account/index.js'
export {
  isConferenceMessage, IncompleteHistoryError, stateOfDelivery, UnknownConferenceError, AmbiguousConferenceIdError, NotConferenceMemberError, NotConferenceOwnerError,
  AlreadyConferenceMemberError, ConferenceFullError,
  type MessagingEvents, type MessageStatus, type RefusedEnvelope, type FriendActionResult, type FriendInfo, type FriendRequests,
  type FriendRequestInfo, type ChatMessage, type IncomingMessage, type MessageState, type MessageStateInfo, type MessageStateChange, type ConferenceInfo, type ConferenceMemberInfo, type ConferenceMessage,
  type ConferenceDelivery, type ConferenceSendResult, type ConferenceChangeResult
} from './chat/index.js'

/** A chat peer, not yet started: `await createChatNode(init).start()`. */
export function createChatNode (init: ChatNodeInit): ChatNode {
  return new DefaultChatNode(init)
}
