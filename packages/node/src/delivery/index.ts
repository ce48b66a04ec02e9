/**
 * The delivery layer: envelopes to a user's peer over the chat protocol (Messenger, with
 * coded acks), to their mailbox on the set store when they are offline (Mailbox), kept
 * and retried until one of the two took them (Outbox); inbound envelopes go to one
 * handler per kind (EnvelopeRouter). It knows peers, sets and envelopes, not accounts.
 */
export {
  Messenger, CHAT_PROTOCOL, CHAT_WINDOW, DEFAULT_ACK_TIMEOUT_MS, DEFAULT_INBOUND_IDLE_MS, DEFAULT_HANDLE_TIMEOUT_MS
} from './messenger.js'
export type {
  MessengerComponents, MessengerInit, DeliveryResult, EnvelopeReceiver, ReceiveAnswer, Ack
} from './messenger.js'
export {
  Outbox, DEFAULT_OUTBOX_RETRY_MS, DEFAULT_OUTBOX_RETRY_MAX_MS, DEFAULT_OUTBOX_MAX_AGE_MS, DEFAULT_PRESENCE_CACHE_MS, DEFAULT_MAILBOX_TIMEOUT_MS
} from './outbox.js'
export type {
  OutboxComponents, OutboxInit, OutboxListener, SendOptions, Delivery, DeliveryStatus, PeerLocation, QueuedEnvelope, RetryOptions
} from './outbox.js'
export { Mailbox, LOGIN_HOLDERS_MAX_AGE_MS } from './mailbox.js'
export type { MailboxComponents, StoredReport, FetchedMail, StoreOptions, FetchOptions } from './mailbox.js'
export { EnvelopeRouter, DuplicateKindHandlerError } from './router.js'
export type { KindHandler, HandleOptions } from './router.js'
