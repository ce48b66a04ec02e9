/** Change password, on injected streams. */
import { describe, it, expect, afterEach } from 'vitest'
import { passwdScreen } from '../src/tui/passwd.js'
import { screenFixture, type ScreenFixture } from './helpers/context.js'
import { KEY } from './helpers/fake-terminal.js'

let f: ScreenFixture
afterEach(() => { f?.cleanup() })

describe('passwdScreen', () => {
  // the strength check starts a worker that loads zxcvbn's dictionaries: seconds on a busy machine
  it('asks the old password and the new one twice, masked, then changes it', { timeout: 30_000 }, async () => {
    f = screenFixture({ changePassword: undefined })
    const done = passwdScreen(f.ctx)
    await f.term.waitFor('Current password')
    f.term.type('old secret', KEY.enter)
    await f.term.waitFor('New password')
    f.term.type('password1234', KEY.enter)
    await f.term.waitFor('password too weak')
    f.term.type('\u0015', 'new secret of the kettle', KEY.enter)
    await f.term.waitFor('New password again')
    f.term.type('new secret?', KEY.enter)
    await f.term.waitFor('the two passwords differ')
    f.term.type('\u0015', 'new secret of the kettle', KEY.enter)
    await done
    expect(f.node.callsOf('changePassword')).toEqual([['old secret', 'new secret of the kettle']])
    expect(f.term.text).toContain('✔ Password changed')
    expect(f.term.text).not.toMatch(/old secret|new secret/)
  })

  it('shows a wrong current password as one line', async () => {
    f = screenFixture({ changePassword: () => { throw Object.assign(new Error('wrong password'), { name: 'WrongPasswordError' }) } })
    const done = passwdScreen(f.ctx)
    await f.term.waitFor('Current password')
    f.term.type('not it', KEY.enter)
    await f.term.waitFor('New password')
    f.term.type('new secret of the kettle', KEY.enter)
    await f.term.waitFor('New password again')
    f.term.type('new secret of the kettle', KEY.enter)
    await done
    expect(f.term.text).toContain('✖ wrong password')
  })
})
