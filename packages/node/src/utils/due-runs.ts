/**
 * Runs a task at the times it is asked for, "in `delayMs`", merging requests that fall
 * close together. A run due sooner never stands in for one asked for later: a later
 * request waits for something (a sender's put to land) that a sooner run may not see.
 */
export interface DueRunsInit {
  /** Requests for times this close (ms) to a run already due share that run. @default 1000 */
  mergeMs?: number
  /** A clock in ms. @default Date.now */
  now?: () => number
}

export class DueRuns {
  private readonly run: () => void
  private readonly mergeMs: number
  private readonly now: () => number
  /** Each timer and the time it is due. */
  private readonly due = new Map<NodeJS.Timeout, number>()

  constructor (run: () => void, init: DueRunsInit = {}) {
    this.run = run
    this.mergeMs = init.mergeMs ?? 1000
    this.now = init.now ?? Date.now
  }

  /** Run in `delayMs`, unless a run is already due within `mergeMs` of then. */
  request (delayMs: number): void {
    const at = this.now() + delayMs
    for (const t of this.due.values()) if (Math.abs(t - at) <= this.mergeMs) return
    const timer = setTimeout(() => {
      this.due.delete(timer)
      this.run()
    }, delayMs)
    timer.unref?.()
    this.due.set(timer, at)
  }

  /** How many runs are due. */
  get pending (): number { return this.due.size }

  /** Cancel every run that is due. */
  clear (): void {
    for (const timer of this.due.keys()) clearTimeout(timer)
    this.due.clear()
  }
}
