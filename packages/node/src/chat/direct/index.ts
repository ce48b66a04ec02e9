/**
 * Direct messages between friends: sent live, to the mailbox or kept in the outbox;
 * received live or from the mailbox, each shown once and kept in the history.
 */
export { DirectMessages } from './direct-messages.js'
export type { DirectMessagesComponents, ChatMessage, IncomingMessage, DirectMessageEvents } from './direct-messages.js'
export { Receipts, stateOfDelivery } from './receipts.js'
export type { ReceiptsComponents, ReceiptEvents, MessageState, MessageStateInfo, MessageStateChange } from './receipts.js'
