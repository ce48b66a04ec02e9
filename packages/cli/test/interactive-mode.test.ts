/** The interactive mode as a whole: the joining spinner, the way in and out, Ctrl+C and stop signals as clean exits. */
import { describe, it, expect, afterEach } from 'vitest'
import { runInteractiveMode } from '../src/modes/interactive-mode.js'
import { LineTerminal } from '../src/terminal.js'
import { FakeNode } from './helpers/fake-node.js'
import { FakeTerminal, KEY } from './helpers/fake-terminal.js'

const BOOTSTRAP = '/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWQ8ixd8Mm6Gp4kH3SvnC4XgYoGqzUH7xvTEoHz7JcW9bE'

interface Fixture {
  node: FakeNode
  term: FakeTerminal
  lines: LineTerminal
  stop: AbortController
  run: () => Promise<void>
  join: () => void
}

let fx: Fixture | undefined
afterEach(() => {
  fx?.stop.abort()
  fx?.term.input.end()
})

function fixture (answers: Record<string, unknown> = {}, joined = true, term = new FakeTerminal()): Fixture {
  const node = new FakeNode(answers)
  const joining = new EventTarget()
  const app: any = { node, peer: node.peer, dataDir: '/nowhere', bootstrap: { addrs: [BOOTSTRAP], source: 'test' } }
  node.peer = {
    joined,
    waitJoined: async ({ signal }: { signal?: AbortSignal } = {}) => {
      if (node.peer.joined) return
      await new Promise<void>((resolve, reject) => {
        joining.addEventListener('joined', () => { resolve() })
        signal?.addEventListener('abort', () => { reject(signal.reason) })
      })
    }
  }
  app.peer = node.peer
  const lines = new LineTerminal({ input: term.input, output: term.output })
  const stop = new AbortController()
  fx = {
    node,
    term,
    lines,
    stop,
    run: async () => { await runInteractiveMode({ app, terminal: lines, signal: stop.signal, input: term.input, output: term.output }) },
    join: () => {
      node.peer.joined = true
      app.joinedVia = BOOTSTRAP
      joining.dispatchEvent(new Event('joined'))
    }
  }
  return fx
}

/** The fake node's answers for alice, who logs in (the session is set on the fixture's node) and out. */
function aliceAnswers (fx: () => Fixture, more: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    login: () => { fx().node.session = { account: { username: 'alice' } }; return { profile: { username: 'alice', fullName: 'Alice' } } },
    logout: () => { fx().node.session = undefined },
    whoami: { username: 'alice', fullName: 'Alice' },
    users: [],
    friends: [],
    friendRequests: { incoming: [], outgoing: [] },
    ...more
  }
}

/** Answer the welcome menu's Log in (the menu is shown) and wait for the user list. */
async function logInAsAlice (f: Fixture): Promise<void> {
  f.term.type(KEY.enter)
  await f.term.waitFor('Username')
  f.term.type('alice', KEY.enter)
  await f.term.waitFor('Password')
  f.term.type('password', KEY.enter)
  await f.term.waitFor('q quit')
}

describe('runInteractiveMode', () => {
  it('shows a spinner line until the peer has joined, then the welcome menu; Quit says goodbye', async () => {
    const f = fixture({}, false)
    const done = f.run()
    await f.term.waitFor(`Joining the network via ${BOOTSTRAP}…`)
    f.lines.notice('cannot reach any bootstrap peer (tried 1); retrying in 5s') // goes to the spinner, not the screen
    f.join()
    await f.term.waitFor(`✔ Joined the network via ${BOOTSTRAP}`)
    await f.term.waitFor(/Welcome to conf-chat\n❯ Log in/)
    f.term.type(KEY.up, KEY.enter)
    await done
    expect(f.term.text).toMatch(/Bye\.\n$/)
    expect(f.term.text).not.toContain('retrying')
  })

  it('after Ctrl+C in the main menu logs the user out and returns normally', async () => {
    const f: Fixture = fixture(aliceAnswers(() => f))
    const done = f.run()
    await f.term.waitFor('Welcome to conf-chat')
    await logInAsAlice(f)
    // the program's own notices land in the menu, not across it
    f.lines.notice('cannot reach any bootstrap peer (tried 1); retrying in 5s')
    await f.term.waitFor(/ {2}cannot reach any bootstrap peer \(tried 1\); retrying in 5s\n/)
    f.term.type(KEY.ctrlC)
    await done
    expect(f.node.callsOf('logout')).toHaveLength(1)
    expect(f.term.text).toMatch(/✔ Logged out alice\nBye\.\n$/)
  })

  it('leaves quietly when the program is stopped (SIGTERM) while a menu waits', async () => {
    const f = fixture()
    const done = f.run()
    await f.term.waitFor('Welcome to conf-chat')
    f.stop.abort()
    await done
    expect(f.node.calls).toEqual([])
    expect(f.term.text).toMatch(/Bye\.\n$/)
  })

  it('leaves quietly when the program is stopped while joining', async () => {
    const f = fixture({}, false)
    const done = f.run()
    await f.term.waitFor('Joining the network')
    f.stop.abort()
    await done
    expect(f.term.text).toMatch(/Bye\.\n$/)
  })

  it('goes back to the welcome menu when the account logs in on another peer', async () => {
    const f: Fixture = fixture(aliceAnswers(() => f))
    const done = f.run()
    await f.term.waitFor('Welcome to conf-chat')
    await logInAsAlice(f)
    f.node.session = undefined
    f.node.emit('session:ended', { username: 'alice', reason: 'takeover' })
    const welcome = await f.term.waitFor(/Welcome to conf-chat\n❯ Log in/)
    expect(welcome).toMatch(/! logged out: your account logged in on another peer\n[\s\S]*Welcome to conf-chat/)
    f.term.type(KEY.up, KEY.enter)
    await done
    expect(f.node.callsOf('logout')).toHaveLength(0)
  })

  it('on a TTY nobody is attached to (0×0): joins without animation, draws nothing until a terminal attaches, then the menu for its size', async () => {
    const f: Fixture = fixture(aliceAnswers(() => f, { users: [{ username: 'bob', fullName: 'Bob' }] }), false,
      new FakeTerminal({ tty: { columns: 0, rows: 0 } }))
    const done = f.run()
    await f.term.waitFor(`Joining the network via ${BOOTSTRAP}…`)
    f.join()
    await f.term.waitFor('Waiting for a terminal: the menu is drawn when one attaches\n')
    // the spinner's line once at the start and once at the end: no frames in between
    const frames = /[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]/g
    expect(f.term.rawText.match(frames) ?? []).toEqual([])
    expect(f.term.text).not.toContain('Welcome to conf-chat')
    const before = f.term.rawText.length
    await new Promise(resolve => setTimeout(resolve, 200)) // a detached peer writes nothing while it waits
    expect(f.term.rawText.length).toBe(before)

    f.term.resize(81, 25)
    f.term.resize(80, 24)
    await f.term.waitFor(/Welcome to conf-chat\n❯ Log in/)
    await logInAsAlice(f)
    // detached and attached again: the user list is drawn anew for the new terminal
    f.term.resize(121, 41)
    f.term.resize(120, 40)
    await f.term.waitFor(/bob[\s\S]*q quit/)
    f.term.type(KEY.ctrlC)
    await done
    expect(f.node.callsOf('logout')).toHaveLength(1)
  })
})
