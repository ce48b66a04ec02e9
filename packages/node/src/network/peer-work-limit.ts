/**
 * Work a remote peer may ask of this one that costs more than an answer (a dial-back, a
 * hole punch's dial): at most one piece per key per interval, and a number at once. A key
 * is the asking peer's id, and may be more: peer ids are free to make, so a caller that
 * knows where a request came from passes that host too (the dial-back: one per source IP
 * as well as per peer id). The keys remembered for the interval are bounded (the oldest
 * forgotten first).
 */
import type { PeerId } from '@libp2p/interface'

export interface PeerWorkLimitInit {
  /** One piece of work per key this often (ms). */
  intervalMs: number
  /** Pieces of work at once, from all peers. */
  concurrent: number
  /** Keys remembered for the interval. @default 1000 */
  remembered?: number
}

/** What a piece of work is counted under: a peer, or a string such as the host it came from. */
export type WorkKey = PeerId | string

export class PeerWorkLimit {
  private readonly init: PeerWorkLimitInit
  private readonly last = new Map<string, number>()
  private running = 0

  constructor (init: PeerWorkLimitInit) {
    this.init = init
  }

  /** Pieces of work under way. */
  get active (): number { return this.running }

  /**
   * Whether work asked under `keys` may start now: none of them used in the interval, and
   * a place free. If so it counts as started under every key: call `end()` once it is done.
   */
  begin (keys: WorkKey | WorkKey[], now = Date.now()): boolean {
    const names = (Array.isArray(keys) ? keys : [keys]).map(k => k.toString())
    if (this.running >= this.init.concurrent || names.some(name => this.recent(name, now))) return false
    for (const name of names) this.remember(name, now)
    this.running++
    return true
  }

  end (): void { this.running = Math.max(0, this.running - 1) }

  private recent (name: string, now: number): boolean {
    const last = this.last.get(name)
    return last != null && now - last < this.init.intervalMs
  }

  private remember (name: string, now: number): void {
    this.last.delete(name)
    this.last.set(name, now)
    if (this.last.size > (this.init.remembered ?? 1_000)) this.last.delete(this.last.keys().next().value!)
  }
}
