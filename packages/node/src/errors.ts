/** Named errors of the core library: callers branch on `err.name`. */

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

export class UnknownUserError extends Error {
  override name = 'UnknownUserError'
  constructor (username: string) { super(`unknown user: ${username}`) }
}

export class WrongPasswordError extends Error {
  override name = 'WrongPasswordError'
  constructor () { super('wrong password') }
}

export class NameTakenError extends Error {
  override name = 'NameTakenError'
  constructor (username: string) { super(`name taken: ${username}`) }
}

export class NotLoggedInError extends Error {
  override name = 'NotLoggedInError'
  constructor () { super('not logged in') }
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
