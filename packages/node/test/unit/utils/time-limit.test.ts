import { describe, it, expect } from 'vitest'
import { timeLimit, untilEither, shutdownController } from '../../../src/utils/index.js'

/** MaxListenersExceededWarnings Node emits while `fn` runs (they come on the next tick). */
async function listenerWarnings (fn: () => void): Promise<string[]> {
  const warnings: Error[] = []
  const onWarning = (w: Error): void => { warnings.push(w) }
  process.on('warning', onWarning)
  try {
    fn()
    await new Promise(resolve => setImmediate(resolve))
  } finally {
    process.off('warning', onWarning)
  }
  return warnings.filter(w => w.name === 'MaxListenersExceededWarning').map(w => w.message)
}

const listen = (signal: AbortSignal, n: number): void => {
  for (let i = 0; i < n; i++) signal.addEventListener('abort', () => {})
}

describe('signals shared by the parts of a task', () => {
  it('take a listener per part without a warning: time limits, combined signals and shutdown signals', async () => {
    const caller = new AbortController()
    expect(await listenerWarnings(() => {
      listen(timeLimit(60_000), 30)
      listen(timeLimit(60_000, { signal: caller.signal }), 30)
      listen(untilEither({ signal: caller.signal }, new AbortController().signal), 30)
      listen(shutdownController().signal, 30)
    })).toEqual([])
  })

  it('still abort as before', () => {
    const caller = new AbortController()
    const limit = timeLimit(60_000, { signal: caller.signal })
    const stop = shutdownController()
    const either = untilEither({ signal: caller.signal }, stop.signal)
    caller.abort(new Error('gave up'))
    expect(limit.aborted).toBe(true)
    expect(either.aborted).toBe(true)
    expect(stop.signal.aborted).toBe(false)
  })
})
