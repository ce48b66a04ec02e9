/**
 * What this peer writes into its own store through the write guard, which the guard's
 * responsibility check lets through: a peer may keep a copy of what it wrote or read,
 * while PUT_VALUE from the network must find it among the closest to the key.
 *
 * - the values of its puts under way (kad-dht stores our own copy first);
 * - during its reads, a replacement of a copy it already holds (kad-dht corrects our
 *   stale copy at the end of a read).
 *
 * Exact values and existing copies only: a key this peer reads because a stranger named
 * it (a writer's name a holder checks) does not open that key to anyone's PUT_VALUE.
 */
import { bytesEqual } from '@conf-chat/protocol'

export class OwnWrites {
  private readonly puts = new Map<string, Uint8Array[]>()
  private readonly reads = new Map<string, number>()

  /** Whether a write of `value` under `key` (where `stored` is what this peer holds) is this peer's own. */
  isOwn (key: string, value: Uint8Array, stored: unknown): boolean {
    return this.puts.get(key)?.some(v => bytesEqual(v, value)) === true || (this.reads.has(key) && stored != null)
  }

  /** Run `fn` while `value` is this peer's own put of `key`. */
  async put<T> (key: string, value: Uint8Array, fn: () => Promise<T>): Promise<T> {
    this.puts.set(key, [...(this.puts.get(key) ?? []), value])
    try {
      return await fn()
    } finally {
      const left = (this.puts.get(key) ?? []).filter(v => v !== value)
      if (left.length > 0) this.puts.set(key, left)
      else this.puts.delete(key)
    }
  }

  /** Run `fn` while this peer reads `key`. */
  async read<T> (key: string, fn: () => Promise<T>): Promise<T> {
    this.reads.set(key, (this.reads.get(key) ?? 0) + 1)
    try {
      return await fn()
    } finally {
      const n = (this.reads.get(key) ?? 1) - 1
      if (n > 0) this.reads.set(key, n)
      else this.reads.delete(key)
    }
  }
}
