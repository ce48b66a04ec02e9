/** The terminal the menus draw on: real size or not, and drawing the open prompt again for a new size. */
import { describe, it, expect } from 'vitest'
import { animated, CLEAR_SCREEN, detachedTty, hasRealSize, select, input, waitForRealSize } from '../src/tui/screen.js'
import { FakeTerminal, KEY } from './helpers/fake-terminal.js'

const count = (text: string, part: string): number => text.split(part).length - 1

describe('terminal size', () => {
  it('is real only for a TTY with columns and rows; animation only there and never with TERM=dumb', () => {
    const detached = new FakeTerminal({ tty: { columns: 0, rows: 0 } }).output
    const attached = new FakeTerminal({ tty: { columns: 80, rows: 24 } }).output
    const pipe = new FakeTerminal().output
    expect([hasRealSize(detached), hasRealSize(attached), hasRealSize(pipe)]).toEqual([false, true, false])
    expect([detachedTty(detached), detachedTty(attached), detachedTty(pipe)]).toEqual([true, false, false])
    expect(animated(attached, { TERM: 'xterm' })).toBe(true)
    expect(animated(attached, { TERM: 'dumb' })).toBe(false)
    expect(animated(detached, { TERM: 'xterm' })).toBe(false)
  })

  it('waits for a real size: not for a resize that leaves it 0×0, and not past the abort', async () => {
    const term = new FakeTerminal({ tty: { columns: 0, rows: 0 } })
    let sized = false
    const waiting = waitForRealSize(term.output, new AbortController().signal).then(() => { sized = true })
    term.resize(0, 0)
    await new Promise(resolve => setImmediate(resolve))
    expect(sized).toBe(false)
    term.resize(120, 40)
    await waiting
    expect(sized).toBe(true)

    const stop = new AbortController()
    const other = new FakeTerminal({ tty: { columns: 0, rows: 0 } })
    const stopped = waitForRealSize(other.output, stop.signal)
    stop.abort(new Error('stopping'))
    await expect(stopped).rejects.toThrow('stopping')
    expect(other.output.listenerCount('resize')).toBe(0)
  })
})

describe('prompts drawn again', () => {
  it('clears the screen and asks again when the terminal gets a new size; the answer still comes', async () => {
    const term = new FakeTerminal({ tty: { columns: 80, rows: 24 } })
    const answer = select({ message: 'Welcome', choices: [{ value: 'a', name: 'Log in' }, { value: 'b', name: 'Register' }] },
      { input: term.input, output: term.output })
    await term.waitFor(/Welcome\n❯ Log in/)
    expect(count(term.rawText, CLEAR_SCREEN)).toBe(0)
    term.resize(101, 31) // docker attach: one larger first, then the attaching terminal's size
    term.resize(100, 30)
    await term.waitFor(/Welcome\n❯ Log in/)
    expect(count(term.rawText, CLEAR_SCREEN)).toBeGreaterThanOrEqual(1)
    term.type(KEY.down, KEY.enter)
    expect(await answer).toBe('b')
    expect(term.output.listenerCount('resize')).toBe(0)
  })

  it('ends as before when the caller aborts, and does not redraw for a size of 0×0', async () => {
    const term = new FakeTerminal({ tty: { columns: 80, rows: 24 } })
    const stop = new AbortController()
    const asked = input({ message: 'Username' }, { input: term.input, output: term.output, signal: stop.signal })
    await term.waitFor('Username')
    term.resize(0, 0)
    await new Promise(resolve => setImmediate(resolve))
    expect(count(term.rawText, CLEAR_SCREEN)).toBe(0)
    stop.abort()
    await expect(asked).rejects.toMatchObject({ name: 'AbortPromptError' })
    expect(term.output.listenerCount('resize')).toBe(0)
  })
})
