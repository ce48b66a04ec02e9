import { it } from 'vitest'

/**
 * Stands for the tests of a describe block that need what this machine lacks
 * (`unavailable` says why): one failing test with the reason, never a skip or a silent
 * pass. CI (`.ci/run`) installs what these tests need.
 */
export function needs (what: string, unavailable: string): void {
  it(`needs ${what}`, () => { throw new Error(`${what} unavailable: ${unavailable}`) })
}
