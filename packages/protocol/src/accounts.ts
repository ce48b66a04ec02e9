/** Rules for what a user types when registering: one clear message per problem. */
import { USERNAME_PATTERN, MAX_FULL_NAME_CHARS } from './limits.js'

export const MIN_PASSWORD_CHARS = 8
export const MAX_PASSWORD_CHARS = 72 // bcrypt uses only the first 72 bytes

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

export function checkPassword (password: string): void {
  if (password.length < MIN_PASSWORD_CHARS) throw new InvalidInputError(`password too short: at least ${MIN_PASSWORD_CHARS} characters`)
  if (Buffer.byteLength(password) > MAX_PASSWORD_CHARS) throw new InvalidInputError(`password too long: at most ${MAX_PASSWORD_CHARS} bytes`)
}

export function checkFullName (fullName: string): string {
  const trimmed = fullName.trim()
  if (trimmed.length === 0) throw new InvalidInputError('full name must not be empty')
  if (trimmed.length > MAX_FULL_NAME_CHARS) throw new InvalidInputError(`full name too long: at most ${MAX_FULL_NAME_CHARS} characters`)
  return trimmed
}
