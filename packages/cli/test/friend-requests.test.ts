/** Friend requests: answer incoming ones, withdraw one's own, ask someone; and the screen for a user who is not a friend. */
import { describe, it, expect, afterEach } from 'vitest'
import { friendRequestsScreen, strangerScreen, friendResultLine } from '../src/tui/friend-requests.js'
import { screenFixture, type ScreenFixture } from './helpers/context.js'
import { KEY } from './helpers/fake-terminal.js'

let f: ScreenFixture
afterEach(() => { f?.cleanup() })

const result = (username: string, action: string, status = 'delivered'): Record<string, unknown> =>
  ({ username, action, delivery: { id: 'x', status, where: status === 'delivered' ? 'live' : 'mailbox' } })

describe('friendRequestsScreen', () => {
  it('lists incoming and outgoing requests; accepting one updates the counter', async () => {
    let incoming = [{ username: 'bob', note: 'hi, it is bob', at: Date.now() }, { username: 'carol', at: Date.now() }]
    f = screenFixture({
      friendRequests: () => ({ incoming, outgoing: [{ username: 'dave', at: Date.now() }] }),
      acceptFriend: (u: string) => { incoming = incoming.filter(r => r.username !== u); return result(u, 'accepted') }
    })
    const done = friendRequestsScreen(f.ctx)
    const list = await f.term.waitFor('Back')
    expect(list).toMatch(/Friend requests\n❯ \? bob asks to be friends: "hi, it is bob" \(\d\d:\d\d:\d\d\)\n {2}\? carol asks to be friends/)
    expect(list).toMatch(/… you asked dave \(\d\d:\d\d:\d\d\), waiting for an answer\n {2}Send a friend request…\n {2}Back/)
    expect(f.ctx.inbox.requestCount).toBe(2)
    f.term.type(KEY.enter)
    await f.term.waitFor('Decide later')
    f.term.type(KEY.enter)
    await f.term.waitFor('✔ You and bob are friends now (told at once)')
    const again = await f.term.waitFor('Back')
    expect(again).not.toContain('bob asks')
    expect(f.ctx.inbox.requestCount).toBe(1)
    f.term.type(KEY.up, KEY.enter)
    await done
    expect(f.node.callsOf('acceptFriend')).toEqual([['bob']])
  })

  it('rejects, withdraws, and asks a new user with a note', async () => {
    f = screenFixture({
      friendRequests: { incoming: [{ username: 'bob', at: 1 }], outgoing: [{ username: 'dave', at: 1 }] },
      rejectFriend: (u: string) => result(u, 'rejected'),
      removeFriend: (u: string) => result(u, 'removed', 'queued'),
      addFriend: (u: string) => result(u, 'requested', 'queued')
    })
    const done = friendRequestsScreen(f.ctx)
    await f.term.waitFor('Back')
    f.term.type(KEY.enter) // bob
    await f.term.waitFor('Decide later')
    f.term.type(KEY.down, KEY.enter)
    // what cannot be undone asks first; no is the default
    await f.term.waitFor('Turn down bob? They are told. (y/N)')
    f.term.type('y', KEY.enter)
    await f.term.waitFor("✔ Turned down bob's request (told at once)")
    await f.term.waitFor('Back')
    f.term.type(KEY.down, KEY.enter) // dave
    await f.term.waitFor('Withdraw it')
    f.term.type(KEY.down, KEY.enter)
    await f.term.waitFor('Withdraw your request to dave? (y/N)')
    f.term.type('y', KEY.enter)
    await f.term.waitFor('✔ dave removed from your friends and requests (they will be told when they log in)')
    await f.term.waitFor('Back')
    f.term.type(KEY.down, KEY.down, KEY.enter) // Send a friend request…
    await f.term.waitFor('Username to ask')
    f.term.type('erin', KEY.enter)
    await f.term.waitFor('A note with the request')
    f.term.type('we met at the conference', KEY.enter)
    await f.term.waitFor('✔ Friend request sent to erin (they will be told when they log in)')
    await f.term.waitFor('Back')
    f.term.type(KEY.up, KEY.enter)
    await done
    expect(f.node.callsOf('rejectFriend')).toEqual([['bob']])
    expect(f.node.callsOf('removeFriend')).toEqual([['dave']])
    expect(f.node.callsOf('addFriend')).toEqual([['erin', 'we met at the conference']])
  })

  it('shows a refusal from the network as one line and stays on the screen', async () => {
    f = screenFixture({
      friendRequests: { incoming: [], outgoing: [] },
      addFriend: () => { throw Object.assign(new Error('unknown user: zed'), { name: 'UnknownUserError' }) }
    })
    const done = friendRequestsScreen(f.ctx)
    await f.term.waitFor(/No friend requests\n❯ Send a friend request…\n {2}Back/)
    f.term.type(KEY.enter)
    await f.term.waitFor('Username to ask')
    f.term.type('zed', KEY.enter)
    await f.term.waitFor('A note with the request')
    f.term.type(KEY.enter)
    await f.term.waitFor('✖ unknown user: zed')
    await f.term.waitFor('Back')
    f.term.type(KEY.down, KEY.enter)
    await done
    expect(f.node.callsOf('addFriend')).toEqual([['zed', undefined]])
  })
})

describe('strangerScreen', () => {
  it('offers to ask a user who is not a friend', async () => {
    f = screenFixture({ friendRequests: { incoming: [], outgoing: [] }, addFriend: (u: string) => result(u, 'requested') })
    const done = strangerScreen(f.ctx, 'bob')
    await f.term.waitFor(/bob is not your friend yet: messages go to friends only\n❯ Send bob a friend request\n {2}Back/)
    f.term.type(KEY.enter)
    await f.term.waitFor('A note with the request')
    f.term.type(KEY.enter)
    await done
    expect(f.term.text).toContain('✔ Friend request sent to bob (told at once)')
    expect(f.node.callsOf('addFriend')).toEqual([['bob', undefined]])
  })

  it('offers to answer when they asked first, and says so when we asked', async () => {
    f = screenFixture({ friendRequests: { incoming: [{ username: 'bob', at: 1 }], outgoing: [{ username: 'carol', at: 1 }] }, acceptFriend: (u: string) => result(u, 'accepted') })
    const bob = strangerScreen(f.ctx, 'bob')
    await f.term.waitFor(/bob asked to be friends\n❯ Accept/)
    f.term.type(KEY.enter)
    await bob
    expect(f.node.callsOf('acceptFriend')).toEqual([['bob']])
    await strangerScreen(f.ctx, 'carol')
    expect(f.term.text).toContain('You asked carol to be friends; you can chat once they accept.')
  })

  it('words every result of a friend action', () => {
    expect(friendResultLine(result('bob', 'requested', 'failed') as any)).toBe('Friend request sent to bob (could not tell them)')
    expect(friendResultLine(result('bob', 'rejected', 'queued') as any)).toBe("Turned down bob's request (they will be told when they log in)")
  })
})
