import type { RefusalCode } from '@conf-chat/protocol'

/** An envelope of a kind the friends part has no handler for. */
export class NotFriendEnvelopeError extends Error {
  override name = 'NotFriendEnvelopeError'
  readonly code: RefusalCode = 'unknown-kind'
  constructor (kind: string) { super(`not a friend envelope: ${kind}`) }
}
