/** Asking a running program again until its answer is the one expected. */

export async function sleep (ms: number): Promise<void> { await new Promise(resolve => setTimeout(resolve, ms)) }

/**
 * Ask again (a second apart) until `check` holds or `timeoutMs` passed: the last answer,
 * and how long it took. The caller asserts on the answer (a timeout is not an error here,
 * so the assertion can say what was seen).
 */
export async function until<T> (ask: () => Promise<T>, check: (v: T) => boolean, timeoutMs: number): Promise<{ value: T, ms: number }> {
  const start = Date.now()
  for (;;) {
    const value = await ask()
    if (check(value) || Date.now() - start > timeoutMs) return { value, ms: Date.now() - start }
    await sleep(1_000)
  }
}
