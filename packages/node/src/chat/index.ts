/**
 * The chat layer: friends, direct messages, conferences and history of the logged-in
 * user, presence notices between friends, and the mailbox reader.
 */
export { Messaging, DEFAULT_MAILBOX_POLL_MS, type MessagingInit, type MessagingComponents } from './messaging.js'
export type { MessagingEvents, MessageStatus, RefusedEnvelope, Emit } from './events.js'
export { IncompleteHistoryError, type HistoryInit } from './history.js'
export type { FriendActionResult, FriendInfo, FriendRequests, FriendRequestInfo, FriendEvents } from './friends/index.js'
export type { ChatMessage, IncomingMessage, DirectMessageEvents, ReceiptEvents, MessageState, MessageStateInfo, MessageStateChange } from './direct/index.js'
export { stateOfDelivery } from './direct/index.js'
export {
  isConferenceMessage, UnknownConferenceError, AmbiguousConferenceIdError, NotConferenceMemberError, NotConferenceOwnerError,
  AlreadyConferenceMemberError, ConferenceFullError,
  type ConferenceInfo, type ConferenceMemberInfo, type ConferenceMessage, type ConferenceDelivery, type ConferenceSendResult,
  type ConferenceChangeResult, type ConferenceEvents
} from './conferences/index.js'
