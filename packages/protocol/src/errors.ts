/** Named errors: callers and tests branch on `err.name`. */

export class InvalidRecordError extends Error {
  override name = 'InvalidRecordError'
  /** A refusal of this is final: the same bytes never become valid. */
  readonly code = 'malformed' as const
  constructor (message = 'Invalid record') { super(message) }
}

export class RecordConflictError extends Error {
  override name = 'RecordConflictError'
  constructor (message = 'Record conflicts with the stored one') { super(message) }
}

export class DecryptionError extends Error {
  override name = 'DecryptionError'
  /** A refusal of this is final: the same bytes never become valid. */
  readonly code = 'malformed' as const
  constructor (message = 'Could not decrypt') { super(message) }
}
