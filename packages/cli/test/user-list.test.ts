/** The user selection screen: order, marks, counters, keys, and live updates while it waits. */
import { describe, it, expect } from 'vitest'
import { render } from '@inquirer/testing'
import pc from 'picocolors'
import { userListPrompt, orderUsers, type UserListView, type UserEntry } from '../src/tui/user-list.js'

const colors = pc.createColors(false)

function entry (username: string, friend: boolean, online: boolean, unread = 0): UserEntry {
  return { username, fullName: username.toUpperCase(), friend, online, unread }
}

/** A view the test can change, and the prompt's subscription to it. */
function liveView (initial: UserListView): { view: () => UserListView, subscribe: (f: () => void) => () => void, set: (v: UserListView) => void } {
  let current = initial
  const listeners = new Set<() => void>()
  return {
    view: () => current,
    subscribe: f => { listeners.add(f); return () => { listeners.delete(f) } },
    set: v => { current = v; for (const f of listeners) f() }
  }
}

describe('orderUsers', () => {
  it('puts friends first, online before offline, by name, without the user, with unread counts', () => {
    const users = [
      { username: 'alice', fullName: 'Alice', online: true },
      { username: 'zed', fullName: 'Zed', online: true },
      { username: 'bob', fullName: 'Bob', online: false },
      { username: 'carol', fullName: 'Carol', online: false },
      { username: 'dave', fullName: 'Dave', online: false }
    ]
    const friends = [
      { username: 'dave', since: 1, online: true }, // the friend list's presence wins over the directory's
      { username: 'carol', since: 1, online: false },
      { username: 'erin', since: 1, online: false } // not (yet) in the directory
    ]
    const ordered = orderUsers(users, friends, 'alice', u => (u === 'carol' ? 3 : 0))
    expect(ordered.map(u => [u.username, u.friend, u.online, u.unread])).toEqual([
      ['dave', true, true, 0],
      ['carol', true, false, 3],
      ['erin', true, false, 0],
      ['zed', false, true, 0],
      ['bob', false, false, 0]
    ])
    expect(ordered.find(u => u.username === 'dave')?.fullName).toBe('Dave')
  })
})

describe('userListPrompt', () => {
  const view: UserListView = {
    users: [entry('bob', true, true, 2), entry('carol', true, false), entry('dave', false, true)],
    requestCount: 1,
    notices: []
  }

  it('shows friends then others with online/offline marks, unread counts and the friend request count', async () => {
    const live = liveView(view)
    const { answer, events, getScreen } = await render(userListPrompt, { message: 'alice · pick a user', colors, ...live })
    const screen = getScreen()
    expect(screen).toMatch(/Friends\n❯ ● bob +BOB +online +2 new\n {2}○ carol +CAROL +offline\n Others\n {2}● dave +DAVE +online/)
    expect(screen).toContain('Friend requests (1)')
    expect(screen).toContain('r refresh · q quit')
    events.keypress('down')
    events.keypress('enter')
    await expect(answer).resolves.toEqual({ type: 'chat', username: 'carol' })
    expect(getScreen()).toMatch(/alice · pick a user carol$/)
  })

  it('refreshes with r and quits with q', async () => {
    const refresh = await render(userListPrompt, { message: 'm', colors, ...liveView(view) })
    refresh.events.keypress('r')
    await expect(refresh.answer).resolves.toEqual({ type: 'refresh' })
    const quit = await render(userListPrompt, { message: 'm', colors, ...liveView(view) })
    quit.events.keypress('down')
    quit.events.keypress('q')
    await expect(quit.answer).resolves.toEqual({ type: 'quit' })
  })

  it('reaches the other screens from the list', async () => {
    const { answer, events, getScreen } = await render(userListPrompt, { message: 'm', colors, ...liveView(view) })
    for (let i = 0; i < 3; i++) events.keypress('down')
    expect(getScreen()).toMatch(/❯ Friend requests \(1\)/)
    events.keypress('enter')
    await expect(answer).resolves.toEqual({ type: 'requests' })
  })

  it('shows notices and counters that arrive while it waits, and keeps the cursor on its user', async () => {
    const live = liveView(view)
    const { answer, events, getScreen } = await render(userListPrompt, { message: 'm', colors, ...live })
    events.keypress('down') // carol
    // carol comes online (moves up among friends) and writes twice; a new friend request arrives
    live.set({
      users: [entry('carol', true, true, 2), entry('bob', true, true, 2), entry('dave', false, true)],
      requestCount: 2,
      notices: ['● carol is online', '[12:00:01] ✉ carol: hi', '[12:00:02] ✉ carol: there?']
    })
    const screen = getScreen()
    expect(screen).toContain('● carol is online\n  [12:00:01] ✉ carol: hi\n  [12:00:02] ✉ carol: there?')
    expect(screen).toMatch(/❯ ● carol +CAROL +online +2 new/)
    expect(screen).toContain('Friend requests (2)')
    events.keypress('enter')
    await expect(answer).resolves.toEqual({ type: 'chat', username: 'carol' })
  })

  it('shows only the newest notices, saying how many came before', async () => {
    const notices = Array.from({ length: 8 }, (_, i) => `notice ${i + 1}`)
    const { getScreen, answer, events } = await render(userListPrompt, { message: 'm', colors, maxNotices: 3, ...liveView({ ...view, notices }) })
    expect(getScreen()).toContain('… 5 earlier notices\n  notice 6\n  notice 7\n  notice 8')
    events.keypress('q')
    await answer
  })

  it('says so when nobody else is registered, and still offers the other screens', async () => {
    const { getScreen, answer, events } = await render(userListPrompt, { message: 'm', colors, ...liveView({ users: [], requestCount: 0, notices: [] }) })
    expect(getScreen()).toContain('(nobody else yet: the list shows users as they join)')
    expect(getScreen()).toMatch(/❯ Friend requests\n {2}Conferences\n {2}Activity {2}\(a\)\n/)
    events.keypress('enter')
    await expect(answer).resolves.toEqual({ type: 'requests' })
  })
})
