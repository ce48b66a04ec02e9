/** History, on injected streams. */
import { describe, it, expect, afterEach } from 'vitest'
import { historyScreen } from '../src/tui/history.js'
import { screenFixture, type ScreenFixture } from './helpers/context.js'
import { KEY } from './helpers/fake-terminal.js'

let f: ScreenFixture
afterEach(() => { f?.cleanup() })

describe('historyScreen', () => {
  it('lets the user pick a friend and prints the whole conversation with times', async () => {
    const today = (s: number): number => { const d = new Date(); d.setHours(9, 30, s, 0); return d.getTime() }
    f = screenFixture({
      friends: [{ username: 'bob', since: 1, online: true }, { username: 'carol', since: 1, online: false }],
      conferences: [],
      history: (u: string) => u === 'carol'
        ? [{ id: '1', from: 'alice', to: 'carol', text: 'lunch?', sentAt: today(1), direction: 'out', state: 'read' },
            { id: '2', from: 'carol', to: 'alice', text: 'yes!', sentAt: today(2), direction: 'in' }]
        : []
    })
    const done = historyScreen(f.ctx)
    await f.term.waitFor(/Whose conversation\?\n❯ bob\n {2}carol\n {2}Back/)
    f.term.type(KEY.down, KEY.enter)
    await done
    expect(f.term.text).toContain('── History with carol: 2 messages ──\n[09:30:01] you: lunch? · read\n[09:30:02] carol: yes!\n── end ──')
  })

  it('says there is no history without friends', async () => {
    f = screenFixture({ friends: [], conferences: [] })
    await historyScreen(f.ctx)
    expect(f.term.text).toContain('No history yet')
  })
})
