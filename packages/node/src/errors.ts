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
