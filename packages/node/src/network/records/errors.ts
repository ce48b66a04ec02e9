/**
 * The record store's own errors. Callers branch on `err.name`.
 */

/**
 * A read could not tell whether the record exists: its time limit passed, or too few
 * holders answered, and none of those that did gave a valid record. Never the same as
 * "no record": a caller must not decide on it as if the record were absent (no "name
 * free", no "no friends", no final refusal); it retries, waits, or shows "unknown". An
 * envelope refused because of it is refused with the passing code `not-ready`.
 */
export class UnknownRecordError extends Error {
  override name = 'UnknownRecordError'
  readonly code = 'not-ready'
  readonly key: string
  constructor (key: string, detail: string) {
    super(`could not read ${key.slice(0, 80)} from the network (${detail}); try again`)
    this.key = key
  }
}
