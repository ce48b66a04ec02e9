/** The main menu loop: the list, a chat and back, counters while it waits, log out, quit, a session ended elsewhere. */
import { describe, it, expect, afterEach } from 'vitest'
import { mainMenu } from '../src/tui/main-menu.js'
import { screenFixture, type ScreenFixture } from './helpers/context.js'
import { KEY } from './helpers/fake-terminal.js'

let f: ScreenFixture
afterEach(() => { f?.cleanup() })

function network (extra: Record<string, unknown> = {}): ScreenFixture {
  return screenFixture({
    whoami: { username: 'alice', fullName: 'Alice Liddell' },
    users: [
      { username: 'alice', fullName: 'Alice Liddell', online: true },
      { username: 'bob', fullName: 'Bob Builder', online: true },
      { username: 'carol', fullName: 'Carol Ann', online: false },
      { username: 'dave', fullName: 'Dave Doe', online: true }
    ],
    friends: [{ username: 'bob', since: 1, online: true }, { username: 'carol', since: 1, online: false }],
    friendRequests: { incoming: [{ username: 'dave', at: 1 }], outgoing: [] },
    history: [],
    presenceOf: { online: false },
    conferences: [],
    sendMessage: { id: 'm', status: 'queued', where: 'mailbox' },
    logout: undefined,
    ...extra
  })
}

const dm = (from: string, text: string): Record<string, unknown> =>
  ({ id: `${from}-${text}`, from, to: 'alice', text, sentAt: Date.now(), direction: 'in', live: true })

describe('mainMenu', () => {
  it('lists friends first, counts what arrives while it waits, opens a chat and comes back to the same user', async () => {
    f = network()
    const done = mainMenu(f.ctx)
    const list = await f.term.waitFor('q quit')
    expect(list).toMatch(/alice \(Alice Liddell\) · pick a user to chat with\n Friends\n❯ ● bob +Bob Builder +online *\n {2}○ carol +Carol Ann +offline *\n Others\n {2}● dave +Dave Doe +online/)
    expect(list).toContain('Friend requests (1)')
    expect(list).not.toMatch(/[●○] alice/)

    f.node.emit('message', dm('carol', 'are you there?'))
    f.node.emit('presence', { username: 'carol', online: true })
    const live = await f.term.waitFor(/● carol is online\n[\s\S]*q quit/)
    expect(live).toContain('✉ carol: are you there?')
    expect(live).toMatch(/ Friends\n❯ ● bob .*\n {2}● carol +Carol Ann +online +1 new/)

    f.term.type(KEY.down, KEY.enter)
    await f.term.waitFor('── Chat with carol (Carol Ann)')
    f.term.type('/q', KEY.enter)
    const back = await f.term.waitFor('q quit')
    expect(back).toMatch(/❯ ● carol +Carol Ann +online *\n/)
    expect(back).not.toContain('1 new')
    f.term.type('q')
    await expect(done).resolves.toBe('quit')
  })

  it('moves a user among the friends as soon as a friendship begins', async () => {
    let friends = [{ username: 'bob', since: 1, online: true }]
    f = network({ friends: () => friends })
    const done = mainMenu(f.ctx)
    await f.term.waitFor(/ Others\n {2}● dave/)
    friends = [...friends, { username: 'dave', since: 2, online: true }]
    f.node.emit('friend:accepted', { username: 'dave' })
    const screen = await f.term.waitFor(/ Friends\n❯ ● bob .*\n {2}● dave +Dave Doe +online/)
    expect(screen).toContain('★ dave and you are friends now')
    f.term.type('q')
    await done
  })

  it('follows the network while open: a user who registers and asks to be friends appears at once, and users coming online at the next refresh; the cursor stays on its user', async () => {
    let users = [
      { username: 'alice', fullName: 'Alice Liddell', online: true },
      { username: 'bob', fullName: 'Bob Builder', online: true },
      { username: 'carol', fullName: 'Carol Ann', online: false }
    ]
    f = network({ users: () => users, friendRequests: { incoming: [], outgoing: [] } })
    f.ctx.listRefreshMs = 100
    const done = mainMenu(f.ctx)
    await f.term.waitFor('q quit')
    f.term.type(KEY.down)
    await f.term.waitFor(/❯ ○ carol/)
    // erin registers and asks alice: the request names a user the list does not have
    users = [...users, { username: 'erin', fullName: 'Erin Eve', online: true }]
    f.node.emit('friend:request', { username: 'erin', keyId: 'k', at: 1 })
    let screen = await f.term.waitFor(/ Others\n {2}● erin +Erin Eve +online/)
    expect(screen).toMatch(/❯ ○ carol/)
    expect(screen).toContain('Friend requests (1)')
    // frank registers and comes online, nobody tells alice's peer: the periodic read finds him
    users = [...users, { username: 'frank', fullName: 'Frank Fu', online: true }]
    screen = await f.term.waitFor(/● frank +Frank Fu +online/)
    expect(screen).toMatch(/❯ ○ carol/)
    f.term.type('q')
    await done
  })

  it('a jumps to the conversation with unread messages that waited longest, then the next; then says there are none', async () => {
    const conference = { id: 'conf-00000000000000aa', name: 'team', owner: 'bob', members: ['alice', 'bob'], online: 1 }
    f = network({
      conferences: [conference],
      conferenceHistory: { conference, messages: [] },
      conferenceMembers: { conference, members: [] }
    })
    const done = mainMenu(f.ctx)
    await f.term.waitFor('q quit')
    f.node.emit('message', dm('carol', 'first'))
    f.node.emit('conference:message', { ...dm('bob', 'in the team'), conference: { id: conference.id, name: 'team' } })
    f.node.emit('message', dm('carol', 'second'))
    await f.term.waitFor(/Activity {2}\(a\) \(3 new\)/)
    f.term.type('a')
    await f.term.waitFor('── Chat with carol (Carol Ann)')
    f.term.type('/q', KEY.enter)
    await f.term.waitFor(/Activity {2}\(a\) \(1 new\)/)
    f.term.type('a')
    await f.term.waitFor('── # team (conf-00000000000000aa)')
    f.term.type('/q', KEY.enter)
    await f.term.waitFor('q quit')
    f.term.type('a')
    await f.term.waitFor('No unread messages.')
    f.term.type('q')
    await expect(done).resolves.toBe('quit')
  })

  it('Settings switches the bell and read receipts for this run', async () => {
    f = network()
    f.ctx.settings = { bell: true }
    const done = mainMenu(f.ctx)
    await f.term.waitFor('q quit')
    for (let i = 0; i < 8; i++) f.term.type(KEY.down)
    await f.term.waitFor('❯ Settings')
    f.term.type(KEY.enter)
    await f.term.waitFor('Bell for a message not on screen: on')
    f.term.type(KEY.enter)
    await f.term.waitFor('Bell for a message not on screen: off')
    expect(f.ctx.settings.bell).toBe(false)
    f.term.type(KEY.down, KEY.enter)
    await f.term.waitFor('Read receipts (friends see when you read their messages): off')
    expect(f.node.readReceipts).toBe(false)
    f.term.type(KEY.down, KEY.enter)
    await f.term.waitFor('q quit')
    f.term.type('q')
    await expect(done).resolves.toBe('quit')
  })

  it('refreshes with r, and logs out from its entry', async () => {
    f = network()
    const done = mainMenu(f.ctx)
    await f.term.waitFor('q quit')
    expect(f.node.callsOf('users')).toHaveLength(1)
    f.term.type('r')
    await f.term.waitFor('q quit')
    expect(f.node.callsOf('users')).toHaveLength(2)
    for (let i = 0; i < 10; i++) f.term.type(KEY.down) // bob carol dave, Friend requests, Conferences, Activity, History, Change password, Settings, Refresh, Log out
    await f.term.waitFor('❯ Log out')
    f.term.type(KEY.enter)
    await expect(done).resolves.toBe('logged-out')
    expect(f.node.callsOf('logout')).toHaveLength(1)
    expect(f.term.text).toContain('✔ Logged out alice')
  })

  it('ends when the account logs in on another peer', async () => {
    f = network()
    const done = mainMenu(f.ctx)
    await f.term.waitFor('q quit')
    f.node.emit('session:ended', { username: 'alice', reason: 'takeover' })
    await expect(done).resolves.toBe('session-ended')
  })

  it('says what could not be loaded and still shows the rest', async () => {
    f = network({ users: () => { throw Object.assign(new Error('network not reachable'), { name: 'NetworkUnreachableError' }) } })
    const done = mainMenu(f.ctx)
    const screen = await f.term.waitFor('q quit')
    expect(screen).toContain('✖ network not reachable')
    expect(screen).toMatch(/ Friends\n❯ ● bob/)
    f.term.type('q')
    await done
  })
})
