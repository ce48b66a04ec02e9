import { it } from 'vitest'

/** Whether this run is CI's (`.ci/run` sets CI=true), which installs everything the tests need. */
export const IN_CI = process.env.CI === 'true'

/**
 * Stands for the tests of a describe block that need what this machine lacks
 * (`unavailable` says why): on a developer's machine one test reported as skipped with the
 * reason in its name, never a silent pass; in CI, which must provide it, a failing test.
 */
export function needs (what: string, unavailable: string): void {
  if (IN_CI) it(`needs ${what}`, () => { throw new Error(`${what} unavailable in CI: ${unavailable}`) })
  else it.skip(`needs ${what}, skipped: ${unavailable}`, () => {})
}
