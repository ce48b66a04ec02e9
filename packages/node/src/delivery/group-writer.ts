/**
 * Writes to the local store committed in groups: a write made while a commit is under way
 * waits for it, then goes out with every other write made meanwhile in one LevelDB batch;
 * a write made when none is under way goes at once. Each caller's promise resolves when
 * its own write is in the LevelDB log (it survives a kill of the process), as a single
 * put would. Under load (many envelopes sent at once) this turns one LevelDB write per
 * envelope into one per batch; alone, it costs nothing extra.
 */
import type { LocalStore } from '../storage/index.js'

interface Waiter { resolve: () => void, reject: (err: unknown) => void }

export class GroupWriter {
  private readonly store: Pick<LocalStore, 'writeMany'>
  private puts = new Map<string, unknown>()
  private deletes = new Set<string>()
  private waiters: Waiter[] = []
  private committing = false

  constructor (store: Pick<LocalStore, 'writeMany'>) {
    this.store = store
  }

  /** Store `value` under `key` (a later write of the same key in the same group wins). */
  async put (key: string, value: unknown): Promise<void> {
    this.deletes.delete(key)
    this.puts.set(key, value)
    await this.enqueue()
  }

  async delete (key: string): Promise<void> {
    this.puts.delete(key)
    this.deletes.add(key)
    await this.enqueue()
  }

  private async enqueue (): Promise<void> {
    const written = new Promise<void>((resolve, reject) => { this.waiters.push({ resolve, reject }) })
    if (!this.committing) void this.commit()
    await written
  }

  private async commit (): Promise<void> {
    this.committing = true
    try {
      while (this.waiters.length > 0) {
        const puts = [...this.puts]
        const deletes = [...this.deletes]
        const waiters = this.waiters
        this.puts = new Map()
        this.deletes = new Set()
        this.waiters = []
        try {
          await this.store.writeMany(puts, deletes)
          for (const w of waiters) w.resolve()
        } catch (err) {
          for (const w of waiters) w.reject(err)
        }
      }
    } finally {
      this.committing = false
    }
  }
}
