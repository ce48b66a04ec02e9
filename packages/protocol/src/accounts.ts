/** Rules for what a user types when registering: one clear message per problem. */
import { USERNAME_PATTERN, MAX_FULL_NAME_CHARS } from './limits.js'
import { MIN_PASSWORD_SCORE, passwordStrength } from './password-strength.js'

export const MIN_PASSWORD_CHARS = 12
/** Argon2id takes any length (password.ts); the bound keeps a paste of a file out. */
export const MAX_PASSWORD_BYTES = 1024

export class InvalidInputError extends Error {
  override name = 'InvalidInputError'
  /** A refusal of this is final: the same bytes never become valid. */
  readonly code = 'malformed' as const
}

export function checkUsername (username: string): void {
  if (!USERNAME_PATTERN.test(username)) {
    throw new InvalidInputError('invalid username: 2-32 characters of a-z, 0-9, _ . - (not starting with . or -)')
  }
}

/** The length rules of a new password (cheap: checked as it is typed). */
export function checkPassword (password: string): void {
  if ([...password].length < MIN_PASSWORD_CHARS) throw new InvalidInputError(`password too short: at least ${MIN_PASSWORD_CHARS} characters`)
  if (Buffer.byteLength(password) > MAX_PASSWORD_BYTES) throw new InvalidInputError(`password too long: at most ${MAX_PASSWORD_BYTES} bytes`)
}

/**
 * The rules of a new password: its length, then its strength (zxcvbn score at least
 * MIN_PASSWORD_SCORE), with the user's name and username counted as known words. The
 * error says what makes it weak.
 */
export async function checkNewPassword (password: string, userInputs: string[] = []): Promise<void> {
  checkPassword(password)
  const strength = await passwordStrength(password, userInputs.filter(s => s !== ''))
  if (strength.score < MIN_PASSWORD_SCORE) {
    const why = strength.warning !== '' ? strength.warning : strength.suggestions[0] ?? 'it is easy to guess'
    throw new InvalidInputError(`password too weak: ${why.replace(/\.$/, '').replace(/^./, c => c.toLowerCase())} (add a few uncommon words)`)
  }
}

export function checkFullName (fullName: string): string {
  const trimmed = fullName.trim()
  if (trimmed.length === 0) throw new InvalidInputError('full name must not be empty')
  if (trimmed.length > MAX_FULL_NAME_CHARS) throw new InvalidInputError(`full name too long: at most ${MAX_FULL_NAME_CHARS} characters`)
  return trimmed
}
