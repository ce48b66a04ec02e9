/** Named errors of the programs: the top-level boundary prints their message as one line. */

/** A mistake in the program's flags or environment (the user's, not a bug). */
export class ConfigError extends Error {
  override name = 'ConfigError'
}

/** The data directory is held by another running peer. */
export class DataDirInUseError extends Error {
  override name = 'DataDirInUseError'
}

/** A command was given the wrong arguments; an empty message means "show its usage". */
export class UsageError extends Error {
  override name = 'UsageError'
  constructor (message = '') { super(message) }
}

/** The input ended (or the program is stopping) while a command waited for a line. */
export class InputEndedError extends Error {
  override name = 'InputEndedError'
  constructor (message = 'input ended') { super(message) }
}

/** Errors whose message alone tells the user what went wrong: no stack trace. */
export const USER_ERRORS = new Set([
  'ConfigError', 'DataDirInUseError', 'InvalidMultiaddrError', 'ListenError'
])
