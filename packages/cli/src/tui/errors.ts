/** How a screen tells a normal way out (Ctrl+C, the program stopping, the session ending) from a failure. */

/** A prompt given up because the session ended (the account logged in on another peer). */
export class SessionEndedError extends Error {
  override name = 'SessionEndedError'
  constructor (message = 'the session ended') { super(message) }
}

export function isSessionEnded (err: any): boolean {
  return err?.name === 'SessionEndedError' || err?.cause?.name === 'SessionEndedError'
}

/** The program is stopping while a screen waits for something other than a prompt. */
export class ProgramStoppingError extends Error {
  override name = 'ProgramStoppingError'
  constructor () { super('the program is stopping') }
}

/** Ctrl+C in a prompt (ExitPromptError) or the program stopping (AbortPromptError): a normal way to leave. */
export function isQuit (err: any): boolean {
  if (err?.name === 'ExitPromptError' || err?.name === 'ProgramStoppingError') return true
  return err?.name === 'AbortPromptError' && !isSessionEnded(err)
}
