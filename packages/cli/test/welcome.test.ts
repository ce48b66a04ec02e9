/** The welcome screen, driven by keys on injected streams: log in, register, mistakes, quit, Ctrl+C. */
import { describe, it, expect, afterEach } from 'vitest'
import { welcomeScreen } from '../src/tui/welcome.js'
import { isQuit } from '../src/tui/context.js'
import { screenFixture, type ScreenFixture } from './helpers/context.js'
import { KEY } from './helpers/fake-terminal.js'

let f: ScreenFixture
afterEach(() => { f?.cleanup() })

const profile = { username: 'alice', fullName: 'Alice Liddell' }

describe('welcomeScreen', () => {
  it('logs in with a masked password and a spinner line', async () => {
    f = screenFixture({ login: { profile, timings: {} } })
    const done = welcomeScreen(f.ctx)
    const menu = await f.term.waitFor('Quit')
    expect(menu).toMatch(/Welcome to conf-chat\n❯ Log in\n {2}Register\n {2}Quit/)
    f.term.type(KEY.enter)
    await f.term.waitFor('Username')
    f.term.type('alice', KEY.enter)
    await f.term.waitFor('Password')
    f.term.type('s3cret pass', KEY.enter)
    await expect(done).resolves.toBe('logged-in')
    expect(f.node.callsOf('login')).toEqual([['alice', 's3cret pass']])
    expect(f.term.text).not.toContain('s3cret')
    expect(f.term.text).toContain('***********')
    expect(f.term.text).toContain('Logging in as alice')
    expect(f.term.text).toContain('✔ Logged in as alice (Alice Liddell)')
  })

  it('shows a wrong password as one line and returns to the menu', async () => {
    f = screenFixture({ login: () => { throw Object.assign(new Error('wrong password'), { name: 'WrongPasswordError' }) } })
    const done = welcomeScreen(f.ctx)
    await f.term.waitFor('Quit')
    f.term.type(KEY.enter)
    await f.term.waitFor('Username')
    f.term.type('alice', KEY.enter)
    await f.term.waitFor('Password')
    f.term.type('nope nope', KEY.enter)
    await f.term.waitFor('✖ wrong password')
    await f.term.waitFor('Welcome to conf-chat')
    f.term.type(KEY.down, KEY.down, KEY.enter)
    await expect(done).resolves.toBe('quit')
  })

  // the strength check starts a worker that loads zxcvbn's dictionaries: seconds on a busy machine
  it('registers: checks the name and the repeated password before asking the network', { timeout: 30_000 }, async () => {
    f = screenFixture({ register: (input: any) => ({ username: input.username, fullName: input.fullName }) })
    const done = welcomeScreen(f.ctx)
    await f.term.waitFor('Quit')
    f.term.type(KEY.down, KEY.enter)
    await f.term.waitFor('Choose a username')
    f.term.type('Bad Name', KEY.enter)
    await f.term.waitFor('invalid username')
    // erase what was typed, then a good name
    f.term.type('\u0015', 'bob', KEY.enter)
    await f.term.waitFor('Choose a password')
    f.term.type('short', KEY.enter)
    await f.term.waitFor('password too short')
    // long enough, but a common password with the username in it
    f.term.type('\u0015', 'bobpassword1', KEY.enter)
    await f.term.waitFor('password too weak')
    f.term.type('\u0015', 'violet kettle harbour', KEY.enter)
    await f.term.waitFor('Type it again')
    f.term.type('violet kettle harbouq', KEY.enter)
    await f.term.waitFor('the two passwords differ')
    f.term.type('\u0015', 'violet kettle harbour', KEY.enter)
    await f.term.waitFor('Your full name')
    f.term.type('Bob Builder', KEY.enter)
    await expect(done).resolves.toBe('logged-in')
    expect(f.node.callsOf('register')).toEqual([[{ username: 'bob', password: 'violet kettle harbour', fullName: 'Bob Builder' }]])
    expect(f.term.text).toContain('✔ Registered bob (Bob Builder); logged in')
  })

  it('quits from the menu', async () => {
    f = screenFixture()
    const done = welcomeScreen(f.ctx)
    await f.term.waitFor('Quit')
    f.term.type(KEY.up, KEY.enter)
    await expect(done).resolves.toBe('quit')
    expect(f.node.calls).toEqual([])
  })

  it('treats Ctrl+C in a prompt as a way out, not an error', async () => {
    f = screenFixture()
    const done = welcomeScreen(f.ctx)
    await f.term.waitFor('Quit')
    f.term.type(KEY.enter)
    await f.term.waitFor('Username')
    f.term.type('ali', KEY.ctrlC)
    const err = await done.catch(e => e)
    expect(err.name).toBe('ExitPromptError')
    expect(isQuit(err)).toBe(true)
  })

  it('shows notices that waited before the menu', async () => {
    f = screenFixture()
    f.ctx.inbox.notice('logged out: your account logged in on another peer')
    const done = welcomeScreen(f.ctx)
    const screen = await f.term.waitFor('Quit')
    expect(screen).toMatch(/logged out: your account logged in on another peer\n[\s\S]*Welcome to conf-chat/)
    f.term.type(KEY.up, KEY.enter)
    await done
  })
})
