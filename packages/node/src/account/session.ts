/**
 * The logged-in user of a peer, and what a handler of an inbound envelope is told about
 * it. Shared by the account and chat layers; defined here so that no layer needs the
 * ChatNode that wires them.
 */
import type { AbortOptions, PeerId } from '@libp2p/interface'
import type { Envelope } from '@conf-chat/protocol'
import type { Account, UserProfile } from './accounts.js'

export interface Session {
  account: Account
  /** When this login began (ms since epoch). */
  since: number
}

export type SessionEndReason = 'logout' | 'takeover' | 'stopped'

/** What the handler of one envelope kind is told about it. */
export interface EnvelopeContext {
  session: Session
  /** The verified sender (the user record's owner is the envelope's signer). */
  sender: UserProfile
  /** True for a live stream, false when read from a mailbox. */
  live: boolean
  /** The libp2p peer it came from, when live. */
  peer?: PeerId
}

/** Handles the envelopes of one kind; throws a refusal (an error with a code) to refuse one. */
export type EnvelopeKindHandler = (envelope: Envelope, ctx: EnvelopeContext, options: AbortOptions) => Promise<void>
