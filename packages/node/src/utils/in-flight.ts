/**
 * Work keyed by an id, run once at a time: a call for an id whose run is under way waits
 * for that run and shares its outcome instead of starting another. A receiver uses it for
 * copies of one envelope arriving together (live and from the mailbox, or a sender's
 * retry after its ack timed out): the second copy is acked only once the first one is
 * handled, and refused if that fails, never answered "done" while the first one could
 * still be lost.
 */
import type { AbortOptions } from '@libp2p/interface'
import { abortable } from './time-limit.js'

export class InFlight {
  private readonly runs = new Map<string, Promise<void>>()

  /** Run `work` for `id`, or wait for its run under way (`options.signal` ends only this wait). */
  async run (id: string, work: () => Promise<void>, options: AbortOptions = {}): Promise<void> {
    const running = this.runs.get(id)
    if (running != null) {
      await abortable(running, options)
      return
    }
    const run = work().finally(() => { this.runs.delete(id) })
    this.runs.set(id, run)
    await run
  }
}
