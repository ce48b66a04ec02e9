/**
 * Named errors of the conferences part. Those that refuse what another peer sent carry
 * a `code` (a RefusalCode): it travels in the ack, and the sender decides on it.
 */
import { MAX_CONFERENCE_MEMBERS } from '@conf-chat/protocol'

/** No conference (of this user) has this id, or the conference an envelope names is not known here. */
export class UnknownConferenceError extends Error {
  override name = 'UnknownConferenceError'
  readonly code = 'unknown-conference' as const
  constructor (id: string) { super(`unknown conference: ${id}`) }
}

export class AmbiguousConferenceIdError extends Error {
  override name = 'AmbiguousConferenceIdError'
  constructor (id: string, matches: string[]) { super(`ambiguous conference id ${id}: ${matches.join(', ')}`) }
}

/** `username` is not a member of the conference (when an envelope was sent, or now). */
export class NotConferenceMemberError extends Error {
  override name = 'NotConferenceMemberError'
  readonly code = 'not-a-member' as const
  constructor (id: string, username: string) { super(`not a member of ${id}: ${username}`) }
}

/** Only the conference's owner changes its members. */
export class NotConferenceOwnerError extends Error {
  override name = 'NotConferenceOwnerError'
  readonly code = 'not-owner' as const
  constructor (id: string, owner: string) { super(`only the owner of ${id} (${owner}) can change its members`) }
}

export class AlreadyConferenceMemberError extends Error {
  override name = 'AlreadyConferenceMemberError'
  constructor (id: string, username: string) { super(`already a member of ${id}: ${username}`) }
}

export class ConferenceFullError extends Error {
  override name = 'ConferenceFullError'
  constructor () { super(`a conference has at most ${MAX_CONFERENCE_MEMBERS} members`) }
}

/** An envelope of a kind the conferences part has no handler for. */
export class NotConferenceEnvelopeError extends Error {
  override name = 'NotConferenceEnvelopeError'
  readonly code = 'unknown-kind' as const
  constructor (kind: string) { super(`not a conference envelope: ${kind}`) }
}
