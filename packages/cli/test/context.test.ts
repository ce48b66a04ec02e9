/** What the screens share: colours only where they belong, the spinner's ways out, quit vs session end. */
import { describe, it, expect, afterEach } from 'vitest'
import { colorsFor, isQuit, isSessionEnded, withSpinner, SessionEndedError, ProgramStoppingError, validator } from '../src/tui/context.js'
import { screenFixture, type ScreenFixture } from './helpers/context.js'

let f: ScreenFixture
afterEach(() => { f?.cleanup() })

describe('colorsFor', () => {
  const tty = { isTTY: true } as any
  it('colours a terminal, not a pipe, and never with NO_COLOR or TERM=dumb', () => {
    expect(colorsFor(tty, { TERM: 'xterm' }).red('x')).not.toBe('x')
    expect(colorsFor({ isTTY: false } as any, { TERM: 'xterm' }).red('x')).toBe('x')
    expect(colorsFor(tty, { TERM: 'xterm', NO_COLOR: '1' }).red('x')).toBe('x')
    expect(colorsFor(tty, { TERM: 'dumb' }).red('x')).toBe('x')
    expect(colorsFor({ isTTY: false } as any, { FORCE_COLOR: '1' }).red('x')).not.toBe('x')
  })
})

describe('isQuit', () => {
  it('takes Ctrl+C and a stopping program as a way out, and a session ended elsewhere as not', () => {
    expect(isQuit(Object.assign(new Error('x'), { name: 'ExitPromptError' }))).toBe(true)
    expect(isQuit(new ProgramStoppingError())).toBe(true)
    expect(isQuit(Object.assign(new Error('x'), { name: 'AbortPromptError' }))).toBe(true)
    const ended = Object.assign(new Error('x'), { name: 'AbortPromptError', cause: new SessionEndedError() })
    expect(isQuit(ended)).toBe(false)
    expect(isSessionEnded(ended)).toBe(true)
    expect(isQuit(new Error('wrong password'))).toBe(false)
  })
})

describe('withSpinner', () => {
  it('replaces its line with the result, or with the error', async () => {
    f = screenFixture()
    await expect(withSpinner(f.ctx, 'Working…', Promise.resolve(42), n => `got ${n}`)).resolves.toBe(42)
    await expect(withSpinner(f.ctx, 'Failing…', Promise.reject(new Error('network not reachable\nmore')))).rejects.toThrow('network not reachable')
    expect(f.term.text).toBe('- Working…\n✔ got 42\n- Failing…\n✖ network not reachable\n')
  })

  it('ends the wait when the program stops, and a later failure of the work goes unnoticed', async () => {
    f = screenFixture()
    let fail: (err: Error) => void = () => {}
    const work = new Promise<never>((_resolve, reject) => { fail = reject })
    const waiting = withSpinner(f.ctx, 'Logging in…', work)
    f.stop.abort()
    await expect(waiting).rejects.toBeInstanceOf(ProgramStoppingError)
    const unhandled: unknown[] = []
    const onUnhandled = (reason: unknown): void => { unhandled.push(reason) }
    process.on('unhandledRejection', onUnhandled)
    try {
      fail(new Error('too late')) // the race holds on to it: no unhandled rejection
      // Node reports unhandled rejections once the microtasks are done, before the next macrotask
      await new Promise(resolve => setImmediate(resolve))
      expect(unhandled).toEqual([])
    } finally {
      process.off('unhandledRejection', onUnhandled)
    }
  })
})

describe('validator', () => {
  it('turns a rule that throws, or rejects, into an inquirer validate', async () => {
    const v = validator(s => { if (s.length < 3) throw new Error('too short') })
    expect(await v('ab')).toBe('too short')
    expect(await v('abc')).toBe(true)
    const later = validator(async s => { await Promise.resolve(); if (s === 'weak') throw new Error('too weak') })
    expect(await later('weak')).toBe('too weak')
    expect(await later('strong')).toBe(true)
  })
})
