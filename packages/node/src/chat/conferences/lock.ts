/**
 * Runs the tasks of one key one at a time, in the order they were queued; tasks of other
 * keys run alongside. A failed task does not stop the next one. The conferences part
 * keys it by conference id, so that two changes of one conference never interleave.
 */
export class KeyedLock {
  private readonly tails = new Map<string, Promise<unknown>>()

  /** Run `fn` once every task queued before it under `key` has settled; resolves or rejects as `fn` does. */
  async run<T> (key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve()
    const run = previous.catch(() => {}).then(fn)
    const tail = run.catch(() => {})
    this.tails.set(key, tail)
    void tail.then(() => { if (this.tails.get(key) === tail) this.tails.delete(key) })
    return await run
  }

  /** Whether a task of `key` is queued or running. */
  busy (key: string): boolean {
    return this.tails.has(key)
  }
}
