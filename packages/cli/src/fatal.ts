/**
 * The programs' one error boundary: a user's mistake (bad flag, port taken, malformed
 * address) is one clear line; anything else is one line too, with the stack trace only
 * at `--log-level debug` or `trace`.
 */
import { USER_ERRORS } from './errors.js'

let showStacks = false

export function setShowStacks (show: boolean): void { showStacks = show }

/** libp2p's reason spans many lines; the system error code in it says what to do. */
function listenFailure (firstLine: string, full: string): string {
  const where = firstLine.match(/^cannot listen on \S+?:\d+/)?.[0] ?? firstLine
  if (/EADDRINUSE/.test(full)) return `${where}: the port is in use (choose another with --port)`
  if (/EADDRNOTAVAIL/.test(full)) return `${where}: no such address on this machine (check --host)`
  if (/EACCES/.test(full)) return `${where}: permission denied (choose a port above 1023)`
  return firstLine
}

export function fatalMessage (err: any): string {
  const message = String(err?.message ?? err).split('\n')[0] ?? ''
  if (USER_ERRORS.has(err?.name)) {
    if (err.name === 'ListenError') return listenFailure(message, String(err.message))
    return message
  }
  return `unexpected error: ${message}`
}

/** Print `err` to stderr as the program's last words; returns the exit code. */
export function reportFatal (err: unknown): number {
  process.stderr.write(`error: ${fatalMessage(err)}\n`)
  if (showStacks && !USER_ERRORS.has((err as any)?.name) && (err as any)?.stack != null) {
    process.stderr.write(`${(err as any).stack}\n`)
  }
  return 1
}

/** Errors that escape every handler still end the program with one line and exit code 1. */
export function exitOnUncaught (): void {
  const die = (err: unknown): void => { process.exit(reportFatal(err)) }
  process.on('uncaughtException', die)
  process.on('unhandledRejection', die)
}
