/**
 * Notices that this process stood still: stopped (SIGSTOP, a suspended laptop or VM) or
 * starved so hard that its timers did not run. Meanwhile other peers gave up on it: their
 * live sends found no ack within their time limit and went to its mailbox instead, and the
 * next periodic read of the mailbox may be minutes away. A tick every `intervalMs` that
 * comes more than `stallMs` late calls `onStall` with how long the process stood still.
 */
export interface StallWatchInit {
  /** How late a tick must be to count as a stall (ms). */
  stallMs: number
  onStall: (stalledMs: number) => void
  /** @default 1000 */
  intervalMs?: number
  /** A monotonic clock in ms. @default performance.now */
  now?: () => number
}

/** Start watching; returns the function that stops it. The timer never keeps the process alive. */
export function watchStalls (init: StallWatchInit): () => void {
  const { stallMs, onStall, intervalMs = 1000, now = () => performance.now() } = init
  let last = now()
  const timer = setInterval(() => {
    const t = now()
    const late = t - last - intervalMs
    last = t
    if (late > stallMs) onStall(late)
  }, intervalMs)
  timer.unref?.()
  return () => { clearInterval(timer) }
}
