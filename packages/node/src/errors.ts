/**
 * Named errors of the core library: callers branch on `err.name`. An error that refuses
 * an envelope (or anything another peer sent) carries a `code` (a RefusalCode): it travels
 * in the ack and the sender decides on it, never on the message text.
 */
import { isRefusalCode, isFinalRefusal, refusal, type Refusal, type RefusalCode } from '@conf-chat/protocol'

export class InvalidMultiaddrError extends Error {
  override name = 'InvalidMultiaddrError'
}

export class ListenError extends Error {
  override name = 'ListenError'
}

export class NotStartedError extends Error {
  override name = 'NotStartedError'
  constructor (message = 'The peer is not started') { super(message) }
}

/**
 * No account has this name. No refusal code of its own: it is thrown for senders,
 * recipients and names typed by the user alike, so a caller that refuses an envelope
 * because of it throws a RefusalError with the code that fits ('unknown-sender',
 * 'unknown-recipient'), the UnknownUserError as its cause.
 */
export class UnknownUserError extends Error {
  override name = 'UnknownUserError'
  constructor (username: string) { super(`unknown user: ${username}`) }
}

export class WrongPasswordError extends Error {
  override name = 'WrongPasswordError'
  constructor () { super('wrong password') }
}

/**
 * The replicas of a name disagree about who owns it: more than one key claims it. Never
 * settled by counting replicas (peers near the key, run by one attacker, can outnumber
 * the honest ones); the name is not used until the claims agree. `fingerprints`: the
 * claiming keys' fingerprints.
 */
export class ContestedNameError extends Error {
  override name = 'ContestedNameError'
  readonly fingerprints: string[]
  constructor (username: string, fingerprints: string[]) {
    super(`name contested: ${fingerprints.length} keys claim ${username} (${fingerprints.join('; ')}); not used until the network agrees`)
    this.fingerprints = fingerprints
  }
}

/**
 * A user's key is not the one we first knew them by (pinned at first contact): the name
 * was taken over, or lookups are answered by someone else. Nothing is sent to the new key.
 */
export class KeyChangedError extends Error {
  override name = 'KeyChangedError'
  readonly code = 'key-changed' as const
  readonly pinned: string
  readonly found: string
  constructor (username: string, pinned: string, found: string) {
    super(`key changed: you know ${username} as ${pinned}, the network now says ${found}; nothing sent to the new key`)
    this.pinned = pinned
    this.found = found
  }
}

export class NameTakenError extends Error {
  override name = 'NameTakenError'
  constructor (username: string) { super(`name taken: ${username}`) }
}

/** A method that needs a logged-in user was called without one. */
export class NotLoggedInError extends Error {
  override name = 'NotLoggedInError'
  readonly code = 'not-logged-in' as const
  constructor () { super('not logged in') }
}

/** A logout, a stop or a login on another peer ended the session while its login ran. */
export class SessionEndedError extends Error {
  override name = 'SessionEndedError'
  readonly code = 'session-ended' as const
  constructor (reason: string) { super(`the session ended while the login ran (${reason})`) }
}

export class AlreadyLoggedInError extends Error {
  override name = 'AlreadyLoggedInError'
  constructor (username: string) { super(`already logged in as ${username}: log out first`) }
}

export class NetworkUnreachableError extends Error {
  override name = 'NetworkUnreachableError'
  constructor (message = 'network not reachable: no other peer answered') { super(message) }
}

export class NotFriendError extends Error {
  override name = 'NotFriendError'
  readonly code = 'not-a-friend' as const
  constructor (username: string) { super(`not a friend: ${username}`) }
}

export class AlreadyFriendsError extends Error {
  override name = 'AlreadyFriendsError'
  constructor (username: string) { super(`already friends with ${username}`) }
}

export class NoFriendRequestError extends Error {
  override name = 'NoFriendRequestError'
  constructor (username: string) { super(`no friend request from ${username}`) }
}

export class SelfFriendError extends Error {
  override name = 'SelfFriendError'
  constructor () { super('you cannot be your own friend') }
}

export class MailboxUnreachableError extends Error {
  override name = 'MailboxUnreachableError'
  constructor (message = 'mailbox not reachable: no other peer holds it') { super(message) }
}

/** A refusal with a code, for what has no named error of its own. `final` follows the code. */
export class RefusalError extends Error {
  override name = 'RefusalError'
  readonly code: RefusalCode
  readonly final: boolean
  constructor (code: RefusalCode, message: string = code, options?: ErrorOptions) {
    super(message, options)
    this.code = code
    this.final = isFinalRefusal(code)
  }
}

/** An envelope arrived while nobody is logged in on this peer. */
export class NoSessionError extends Error {
  override name = 'NoSessionError'
  readonly code = 'not-logged-in' as const
  constructor (message = 'no user logged in here') { super(message) }
}

/** An envelope addressed to another user than the one logged in on this peer. */
export class NotForRecipientError extends Error {
  override name = 'NotForRecipientError'
  readonly code = 'not-for-recipient' as const
  constructor (message = 'not for the user logged in here') { super(message) }
}

/** The envelope's signer does not own the sender's name. */
export class ForgedSenderError extends Error {
  override name = 'ForgedSenderError'
  readonly code = 'bad-signature' as const
  constructor (username: string) { super(`forged sender: ${username} does not own the signing key`) }
}

/** Older than what this peer already applied (a replay, or an out-of-date change). */
export class StaleError extends Error {
  override name = 'StaleError'
  readonly code = 'stale' as const
  constructor (message = 'older than what is already applied') { super(message) }
}

/** No handler for this envelope kind here (a newer peer may have one). */
export class UnknownKindError extends Error {
  override name = 'UnknownKindError'
  readonly code = 'unknown-kind' as const
  constructor (kind: string) { super(`unknown envelope kind ${String(kind).slice(0, 40)}`) }
}

/**
 * What to tell the other peer about anything thrown (or returned) while handling what it
 * sent: the error's `code` when it is a refusal code, else 'internal' (not final: a fault
 * here may pass). The reason is the error's message, cut to what the other side accepts.
 */
export function refusalOf (err: unknown): Refusal {
  const e = (typeof err === 'object' && err !== null ? err : {}) as { code?: unknown, message?: unknown, reason?: unknown, name?: unknown }
  const code: RefusalCode = isRefusalCode(e.code) ? e.code : 'internal'
  const text = [e.message, e.reason, e.name].find((t): t is string => typeof t === 'string' && t !== '') ??
    (typeof err === 'string' && err !== '' ? err : code)
  return refusal(code, text)
}
