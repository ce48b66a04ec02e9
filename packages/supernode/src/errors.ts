/** Named errors of the supernode: the top-level boundary prints their message as one line. */
import { createFatalBoundary, DataDirInUseError } from '@conf-chat/program'

/** The data directory is held by another running supernode. */
export { DataDirInUseError }

/** Errors whose message alone tells the user what went wrong (port taken, malformed address,
 * data directory in use): no stack trace. */
export const USER_ERRORS = new Set(['InvalidMultiaddrError', 'ListenError', 'DataDirInUseError'])

/** The supernode's error boundary (main.ts); `--log-level` decides on stack traces. */
export const fatal = createFatalBoundary({ userErrors: USER_ERRORS })
