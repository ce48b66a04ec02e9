/**
 * Work a remote peer may ask of this one that costs more than an answer (a dial-back, a
 * hole punch's dial): at most one piece per peer per interval, and a number at once. The
 * peers remembered for the interval are bounded (the oldest forgotten first).
 */
import type { PeerId } from '@libp2p/interface'

export interface PeerWorkLimitInit {
  /** One piece of work per peer this often (ms). */
  intervalMs: number
  /** Pieces of work at once, from all peers. */
  concurrent: number
  /** Peers remembered for the interval. @default 1000 */
  remembered?: number
}

export class PeerWorkLimit {
  private readonly init: PeerWorkLimitInit
  private readonly last = new Map<string, number>()
  private running = 0

  constructor (init: PeerWorkLimitInit) {
    this.init = init
  }

  /** Pieces of work under way. */
  get active (): number { return this.running }

  /** Whether work for `peer` may start now; if so it counts as started: call `end()` once it is done. */
  begin (peer: PeerId, now = Date.now()): boolean {
    const key = peer.toString()
    const last = this.last.get(key)
    if (this.running >= this.init.concurrent || (last != null && now - last < this.init.intervalMs)) return false
    this.last.delete(key)
    this.last.set(key, now)
    if (this.last.size > (this.init.remembered ?? 1_000)) this.last.delete(this.last.keys().next().value!)
    this.running++
    return true
  }

  end (): void { this.running = Math.max(0, this.running - 1) }
}
