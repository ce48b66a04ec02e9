/** The events of the chat layer, which ChatNode dispatches to its listeners. */
import type { Delivery } from '../delivery/index.js'
import type { FriendEvents } from './friends/index.js'
import type { DirectMessageEvents, ReceiptEvents } from './direct/index.js'
import type { ConferenceEvents } from './conferences/index.js'

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
  /** The refusal's code (see @conf-chat/protocol's refusals). */
  code: string
  /** From a live stream (true) or a mailbox (false). */
  live: boolean
}

export interface MessagingEvents extends FriendEvents, DirectMessageEvents, ReceiptEvents, ConferenceEvents {
  /** A friend logged in or out (told directly by their peer). */
  'presence': CustomEvent<{ username: string, online: boolean }>
  /** A message of ours that waited in the outbox was delivered, queued in a mailbox, or failed. */
  'message:status': CustomEvent<MessageStatus>
  /** An envelope was dropped: forged sender, bad body, not a friend... */
  'envelope:refused': CustomEvent<RefusedEnvelope>
  /**
   * A read the user waits for could not tell (time limit, too few answers) and is made
   * again in `retryInMs`: never taken as "nothing there". `what`: what is being read.
   */
  'network:slow': CustomEvent<{ what: string, attempt: number, retryInMs: number }>
  /**
   * The private state (friends, requests, conferences) has failed to be written
   * `failures` times in a row (told at UNSAVED_AFTER_FAILURES, then every so many): the
   * changes are kept and tried again, but another peer would not see them yet.
   */
  'state:unsaved': CustomEvent<{ failures: number, reason: string }>
  /** The private state was written after `failures` failed writes that were told. */
  'state:saved': CustomEvent<{ failures: number }>
}

export type Emit = <K extends keyof MessagingEvents>(type: K, detail: MessagingEvents[K]['detail']) => void
