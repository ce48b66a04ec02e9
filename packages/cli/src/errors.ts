/** Named errors of the programs: the top-level boundary prints their message as one line. */
import { createFatalBoundary, DataDirInUseError } from '@conf-chat/program'

/** The data directory is held by another running peer. */
export { DataDirInUseError }

/** A mistake in the program's flags or environment (the user's, not a bug). */
export class ConfigError extends Error {
  override name = 'ConfigError'
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

/** The node program's error boundary (main.ts); `--log-level` decides on stack traces. */
export const fatal = createFatalBoundary({ userErrors: USER_ERRORS })
