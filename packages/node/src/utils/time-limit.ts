/**
 * One way to put a time limit on work: a signal that aborts when the caller's signal does
 * or when `ms` have passed, whichever comes first. Every network call and every inbound
 * stream read goes through it, so a caller's cancellation always reaches the socket.
 */
import { setMaxListeners } from 'node:events'
import type { AbortOptions } from '@libp2p/interface'

/**
 * `signal`, allowed any number of listeners. A signal one task hands to all its parts
 * (an RPC to each of 20 holders, a handler per envelope in flight) has one listener per
 * part while they run; past 10 Node prints a MaxListenersExceededWarning (on the
 * terminal UI's screen). libp2p and kad-dht do the same with their own such signals.
 */
export function shared<T extends AbortSignal> (signal: T): T {
  setMaxListeners(Infinity, signal)
  return signal
}

/** An AbortController whose signal every task of a part listens to until the part stops. */
export function shutdownController (): AbortController {
  const controller = new AbortController()
  shared(controller.signal)
  return controller
}

/** Keeps a combined signal's time limit alive (see timeLimit). */
const LIMIT = Symbol('time limit')

/**
 * The caller's signal (if any) combined with a time limit of `ms`.
 *
 * The combined signal holds its time limit strongly: Node 20's `AbortSignal.any` holds its
 * sources weakly, and `AbortSignal.timeout`'s timer holds its signal weakly too, so a
 * limit nothing else referenced could be collected before it fired and the combined signal
 * would never abort (seen: a dial-back dial that outlived its 3 s limit by minutes).
 */
export function timeLimit (ms: number, options: AbortOptions = {}): AbortSignal {
  const limit = AbortSignal.timeout(ms)
  if (options.signal == null) return shared(limit)
  const combined = AbortSignal.any([options.signal, limit]) as AbortSignal & { [LIMIT]?: AbortSignal }
  combined[LIMIT] = limit
  return shared(combined)
}

/**
 * A time limit for a dial straight through a transport (`transportManager.dial`), which
 * hands its signal to `net.connect`: Node destroys a socket whenever that signal aborts,
 * even long after it connected, so the limit must be cleared once the dial is done
 * (libp2p's own dial queue clears its signals the same way). `stop` aborts it too, until cleared.
 */
export function dialLimit (ms: number, stop?: AbortSignal): { signal: AbortSignal, clear: () => void } {
  const controller = new AbortController()
  shared(controller.signal)
  const timer = setTimeout(() => { controller.abort(new DOMException(`dial took longer than ${ms} ms`, 'TimeoutError')) }, ms)
  const onStop = (): void => { controller.abort(stop?.reason) }
  if (stop?.aborted === true) onStop()
  else stop?.addEventListener('abort', onStop, { once: true })
  return {
    signal: controller.signal,
    clear: () => {
      clearTimeout(timer)
      stop?.removeEventListener('abort', onStop)
    }
  }
}

/** The caller's signal (if any) combined with another, e.g. a part's own stop signal. */
export function untilEither (options: AbortOptions, signal: AbortSignal): AbortSignal
export function untilEither (options: AbortOptions, signal: AbortSignal | undefined): AbortSignal | undefined
export function untilEither (options: AbortOptions, signal: AbortSignal | undefined): AbortSignal | undefined {
  if (signal == null) return options.signal
  return options.signal == null ? signal : shared(AbortSignal.any([options.signal, signal]))
}

/**
 * The result of `work`, or `fallback` if `ms` pass (or `options.signal` aborts) first. The
 * work itself goes on; only the waiting stops (used where a caller must not hang, as at
 * logout).
 */
export async function within<T> (work: Promise<T>, ms: number, fallback: T, options: AbortOptions = {}): Promise<T> {
  const signal = timeLimit(ms, options)
  if (signal.aborted) return fallback
  let onAbort: (() => void) | undefined
  const limit = new Promise<T>(resolve => {
    onAbort = () => { resolve(fallback) }
    signal.addEventListener('abort', onAbort, { once: true })
  })
  try {
    return await Promise.race([work, limit])
  } finally {
    if (onAbort != null) signal.removeEventListener('abort', onAbort)
  }
}

/** Whether `work` settled (resolved or rejected) within `ms`. */
export async function settledWithin (work: Promise<unknown>, ms: number, options: AbortOptions = {}): Promise<boolean> {
  return await within(work.then(() => true, () => true), ms, false, options)
}

/** Resolves after `ms`, or rejects when `options.signal` aborts first. */
export async function delay (ms: number, options: AbortOptions = {}): Promise<void> {
  options.signal?.throwIfAborted()
  await new Promise<void>((resolve, reject) => {
    const onAbort = (): void => { clearTimeout(timer); reject(options.signal?.reason) }
    const timer = setTimeout(() => { options.signal?.removeEventListener('abort', onAbort); resolve() }, ms)
    timer.unref?.()
    options.signal?.addEventListener('abort', onAbort, { once: true })
  })
}

/** Wait for `work`, or reject as soon as the caller's signal aborts (the work goes on for others). */
export async function abortable<T> (work: Promise<T>, options: AbortOptions): Promise<T> {
  const signal = options.signal
  if (signal == null) return await work
  signal.throwIfAborted()
  let onAbort: (() => void) | undefined
  const aborted = new Promise<never>((_resolve, reject) => {
    onAbort = () => { reject(signal.reason) }
    signal.addEventListener('abort', onAbort, { once: true })
  })
  try {
    return await Promise.race([work, aborted])
  } finally {
    if (onAbort != null) signal.removeEventListener('abort', onAbort)
  }
}
