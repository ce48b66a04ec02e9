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
