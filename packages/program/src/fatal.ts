/**
 * A program's one error boundary: a user's mistake (bad flag, port taken, malformed
 * address, data directory in use) is one clear line; anything else is one line too, with
 * the stack trace only at `--log-level debug` or `trace`.
 */

/** The data directory is held by another running program. */
export class DataDirInUseError extends Error {
  override name = 'DataDirInUseError'
}

export interface FatalBoundaryInit {
  /** Names of the errors whose message alone tells the user what went wrong: no stack trace. */
  userErrors: Iterable<string>
}

export interface FatalBoundary {
  /** Print the stack trace of an unexpected error too (`--log-level debug` or `trace`). */
  setShowStacks: (show: boolean) => void
  /** The one line that tells what went wrong. */
  fatalMessage: (err: any) => string
  /** Print `err` to stderr as the program's last words; returns the exit code. */
  reportFatal: (err: unknown) => number
  /** Errors that escape every handler still end the program with one line and exit code 1. */
  exitOnUncaught: () => void
}

/** libp2p's reason spans many lines; the system error code in it says what to do. */
function listenFailure (firstLine: string, full: string): string {
  const where = firstLine.match(/^cannot listen on \S+?:\d+/)?.[0] ?? firstLine
  if (/EADDRINUSE/.test(full)) return `${where}: the port is in use (choose another with --port)`
  if (/EADDRNOTAVAIL/.test(full)) return `${where}: no such address on this machine (check --host)`
  if (/EACCES/.test(full)) return `${where}: permission denied (choose a port above 1023)`
  return firstLine
}

export function createFatalBoundary (init: FatalBoundaryInit): FatalBoundary {
  const userErrors = new Set(init.userErrors)
  let showStacks = false

  const fatalMessage = (err: any): string => {
    const message = String(err?.message ?? err).split('\n')[0] ?? ''
    if (userErrors.has(err?.name)) {
      if (err.name === 'ListenError') return listenFailure(message, String(err.message))
      return message
    }
    return `unexpected error: ${message}`
  }

  const reportFatal = (err: unknown): number => {
    process.stderr.write(`error: ${fatalMessage(err)}\n`)
    if (showStacks && !userErrors.has((err as any)?.name) && (err as any)?.stack != null) {
      process.stderr.write(`${(err as any).stack}\n`)
    }
    return 1
  }

  return {
    setShowStacks: show => { showStacks = show },
    fatalMessage,
    reportFatal,
    exitOnUncaught: () => {
      const die = (err: unknown): void => { process.exit(reportFatal(err)) }
      process.on('uncaughtException', die)
      process.on('unhandledRejection', die)
    }
  }
}
