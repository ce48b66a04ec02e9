/**
 * Why a peer refused an envelope, a set item or a request, as a code both sides agree on:
 * the sender decides what to do (drop, keep and retry, stop at once) on the code and its
 * `final` flag, never on the other peer's wording.
 */

/** Refusals that cannot change on a later try: the sender drops the envelope. */
const FINAL_CODES = [
  /** The signature does not verify, or the signer does not own the sender's name. */
  'bad-signature',
  /** Bigger than the protocol allows. */
  'too-large',
  /** Not a valid frame, envelope, record or body. */
  'malformed',
  /** Addressed to someone else than the user logged in on the receiving peer. */
  'not-for-recipient',
  /** The sender's name is not registered (known absent, not merely unread). */
  'unknown-sender',
  /** The recipient does not exist (known absent). */
  'unknown-recipient',
  /** The recipient does not take envelopes of this kind from this sender: not a friend. */
  'not-a-friend',
  /** The sender is not a member of the conference. */
  'not-a-member',
  /** Only the conference owner may do this. */
  'not-owner',
  /** Older than what the recipient already applied (a replay or an out-of-date change). */
  'stale',
  /** The recipient already has it (a tombstone says it was delivered and removed). */
  'already-delivered',
  /** The recipient knows the sender's name with another key (pinned at first contact). */
  'key-changed'
] as const

/** Refusals that may change: the sender keeps the envelope and tries again later. */
const PASSING_CODES = [
  /** Nobody is logged in on the receiving peer, or another user is (it may change). */
  'not-logged-in',
  /** The receiver is not ready yet (still loading its state). */
  'not-ready',
  /** The recipient knows no such conference yet (its invite may still be on the way). */
  'unknown-conference',
  /** The receiver does not know this kind (an older program): a newer one may. */
  'unknown-kind',
  /** Too much from this sender for now. */
  'rate-limited',
  /**
   * The mailbox's owner does not (yet) list the sender among the people it knows, and
   * takes only friend requests from strangers: a friendship just
   * begun may not have reached the holders yet, so the sender keeps the envelope.
   */
  'not-listed',
  /** The receiver or holder is full for now. */
  'full',
  /** Anything else: a fault on the receiving side. */
  'internal'
] as const

export type FinalRefusalCode = typeof FINAL_CODES[number]
export type RefusalCode = FinalRefusalCode | typeof PASSING_CODES[number]

export const REFUSAL_CODES: readonly RefusalCode[] = [...FINAL_CODES, ...PASSING_CODES]

const finalCodes = new Set<string>(FINAL_CODES)
const allCodes = new Set<string>(REFUSAL_CODES)

export function isRefusalCode (value: unknown): value is RefusalCode {
  return typeof value === 'string' && allCodes.has(value)
}

/** Whether a refusal with this code can never turn into an acceptance. */
export function isFinalRefusal (code: RefusalCode): boolean {
  return finalCodes.has(code)
}

/** A refusal as it travels between peers (in an ack or a set response). */
export interface Refusal {
  code: RefusalCode
  final: boolean
  /** Words for the log; never decides anything. */
  reason: string
}

/** Longest `reason` sent or accepted in a refusal. */
export const MAX_REFUSAL_REASON_CHARS = 200

/** A refusal for `code`, its reason cut to what the other side accepts. */
export function refusal (code: RefusalCode, reason: string): Refusal {
  return { code, final: isFinalRefusal(code), reason: reason.slice(0, MAX_REFUSAL_REASON_CHARS) }
}
