/** Conferences on injected streams: the list, a conference chat, creating one, members, inviting, leaving. */
import { describe, it, expect, afterEach } from 'vitest'
import { conferencesScreen, conferenceChatScreen, conferenceState, deliveriesNote } from '../src/tui/conferences.js'
import { screenFixture, type ScreenFixture } from './helpers/context.js'
import { FakeTerminal, KEY } from './helpers/fake-terminal.js'

let f: ScreenFixture
afterEach(() => { f?.cleanup() })

const today = (s: number): number => { const d = new Date(); d.setHours(10, 0, s, 0); return d.getTime() }
const TEAM = { id: 'conf-0123456789abcdef', key: 'k', name: 'Team', owner: 'alice', members: ['alice', 'bob', 'carol'], createdAt: 1, online: 2 }
const conference = { id: TEAM.id, name: TEAM.name }
const delivered = (username: string): any => ({ username, delivery: { id: 'm', status: 'delivered', where: 'live' } })
const queued = (username: string): any => ({ username, delivery: { id: 'm', status: 'queued', where: 'mailbox' } })

function fixture (extra: Record<string, unknown> = {}, term?: FakeTerminal): ScreenFixture {
  return screenFixture({
    whoami: { username: 'alice', fullName: 'Alice' },
    conferences: [TEAM],
    friends: [{ username: 'bob', since: 1, online: true }, { username: 'carol', since: 1, online: false }, { username: 'dave', since: 1, online: true }],
    conferenceHistory: {
      conference: TEAM,
      messages: [{ id: 'h1', from: 'bob', to: 'alice', text: 'welcome all', sentAt: today(1), direction: 'in', live: false, conference }]
    },
    conferenceMembers: {
      conference: TEAM,
      members: [
        { username: 'alice', joinedAt: 1, owner: true, online: true },
        { username: 'bob', joinedAt: 1, owner: false, online: true },
        { username: 'carol', joinedAt: 1, owner: false, online: false }
      ]
    },
    sendConferenceMessage: (_id: string, text: string) => ({ id: `s-${text}`, conference: TEAM.id, sentAt: 1, deliveries: [delivered('bob'), queued('carol')] }),
    ...extra
  }, term)
}

describe('conferencesScreen', () => {
  it('lists conferences with unread counts and opens one\'s chat: history, members, live messages, sending', async () => {
    f = fixture()
    f.node.emit('conference:message', { id: 'u1', from: 'bob', to: 'alice', text: 'agenda?', sentAt: today(2), direction: 'in', live: true, conference })
    const done = conferencesScreen(f.ctx)
    const list = await f.term.waitFor('Back')
    expect(list).toMatch(/Conferences\n❯ # Team {2}conf-0123456789abcdef · 3 members, 2 online · owner alice 1 new\n {2}Create a conference…\n {2}Back/)
    f.term.type(KEY.enter)
    await f.term.waitFor(/# Team \(conf-0123456789abcdef\)\n❯ Open the chat\n {2}Members\n {2}Invite friends…\n {2}Leave the conference\n {2}Back/)
    f.term.type(KEY.enter)
    const opening = await f.term.waitFor('you › ')
    expect(opening).toContain('── # Team (conf-0123456789abcdef) · 3 members, 2 online ──')
    expect(opening).toContain('[10:00:01] bob: welcome all')
    expect(opening).toContain('members: ● alice  ● bob  ○ carol')
    expect(opening).toContain('offline: carol: they get what you send at their next login.')
    f.term.type('hello team', KEY.enter)
    await f.term.waitFor('↳ delivered to bob; left for carol (offline)')
    f.node.emit('conference:message', { id: 'l1', from: 'carol', to: 'alice', text: 'back online', sentAt: today(3), direction: 'in', live: true, conference })
    f.node.emit('message', { id: 'd1', from: 'bob', to: 'alice', text: 'a private word', sentAt: today(4), direction: 'in', live: true })
    await f.term.waitFor('[10:00:03] carol: back online')
    await f.term.waitFor('✉ bob: a private word')
    // /members, and Tab completes a member's name
    f.term.type('/members', KEY.enter)
    await f.term.waitFor(/3 members:\n {2}● alice \(owner\)\n {2}● bob\n {2}○ carol\n/)
    f.term.type('thanks ca', KEY.tab)
    await f.term.waitFor('you › thanks carol')
    f.term.type(KEY.enter)
    await f.node.waitForCalls('sendConferenceMessage', 2)
    f.term.type('/q', KEY.enter)
    await f.term.waitFor(/Conferences\n❯ # Team/)
    expect(f.ctx.inbox.conferenceUnread(TEAM.id)).toBe(0)
    expect(f.ctx.inbox.unread('bob')).toBe(1)
    f.term.type(KEY.up, KEY.enter)
    await expect(done).resolves.toBe('back')
    expect(f.node.callsOf('sendConferenceMessage')).toEqual([[TEAM.id, 'hello team'], [TEAM.id, 'thanks carol']])
  })

  it('a message\'s line sums its copies\' states: delivered to all, then read by some, then by all; opening the chat tells the members it was read', async () => {
    f = fixture({
      sendConferenceMessage: (_id: string, text: string) => ({ id: `mid-${text}`, conference: TEAM.id, sentAt: 1, deliveries: [delivered('bob'), delivered('carol')] }),
      markConferenceRead: 1
    }, new FakeTerminal({ tty: { columns: 100, rows: 30 } }))
    const done = conferenceChatScreen(f.ctx, TEAM)
    await f.term.waitFor('you › ')
    expect(f.node.callsOf('markConferenceRead')).toEqual([[TEAM.id]])
    f.term.type('dinner at eight?', KEY.enter)
    await f.term.waitForScreen(/you: dinner at eight\? · delivered\n/)
    f.node.emit('message:state', { id: 'e-carol', to: 'carol', state: 'read', conference: TEAM.id, mid: 'mid-dinner at eight?' })
    await f.term.waitForScreen(/you: dinner at eight\? · read by 1 of 2\n/)
    // another conference's, or a direct message's, changes nothing here
    f.node.emit('message:state', { id: 'e-x', to: 'bob', state: 'read', conference: 'conf-ffffffffffffffff', mid: 'mid-dinner at eight?' })
    f.node.emit('message:state', { id: 'e-bob', to: 'bob', state: 'read', conference: TEAM.id, mid: 'mid-dinner at eight?' })
    const screen = await f.term.waitForScreen(/you: dinner at eight\? · read\n/)
    expect(screen.match(/dinner at eight/g)).toHaveLength(1)
    f.term.type('/q', KEY.enter)
    await expect(done).resolves.toBe('back')
  })

  it('creates a conference from a name and picked friends', async () => {
    f = fixture({
      conferences: [],
      createConference: (name: string, members: string[]) => ({
        conference: { ...TEAM, name, members: ['alice', ...members] }, usernames: members, deliveries: members.map(delivered)
      })
    })
    const done = conferencesScreen(f.ctx)
    await f.term.waitFor(/No conferences yet\n❯ Create a conference…/)
    f.term.type(KEY.enter)
    await f.term.waitFor('Conference name')
    f.term.type('Book club', KEY.enter)
    await f.term.waitFor('Invite which friends?')
    f.term.type(KEY.enter)
    await f.term.waitFor('pick at least one friend')
    f.term.type(' ', KEY.down, KEY.down, ' ', KEY.enter) // bob and dave
    await f.term.waitFor('✔ Created conference conf-0123456789abcdef (Book club) with participants: alice, bob, dave')
    await f.term.waitFor('Back')
    f.term.type(KEY.down, KEY.enter)
    await done
    expect(f.node.callsOf('createConference')).toEqual([['Book club', ['bob', 'dave']]])
  })

  it('shows the members, invites friends who are not in, and leaves after a confirmation', async () => {
    f = fixture({
      inviteToConference: (_id: string, users: string[]) => ({ conference: TEAM, usernames: users, deliveries: users.map(queued) }),
      leaveConference: () => ({ conference: TEAM, usernames: ['alice'], deliveries: [delivered('bob'), delivered('carol')] })
    })
    const done = conferencesScreen(f.ctx)
    await f.term.waitFor('Back')
    f.term.type(KEY.enter)
    await f.term.waitFor('Open the chat')
    f.term.type(KEY.down, KEY.enter) // Members
    await f.term.waitFor(/── Team: 3 members ──\n● alice \(owner\) {2}online\n● bob {2}online\n○ carol {2}offline/)
    await f.term.waitFor('Back')
    f.term.type(KEY.enter)
    await f.term.waitFor('Open the chat')
    f.term.type(KEY.down, KEY.down, KEY.enter) // Invite friends…
    const picking = await f.term.waitFor('Invite which friends?')
    f.term.type(' ', KEY.enter)
    await f.term.waitFor('✔ Invited dave to Team (left for dave (offline))')
    expect(picking).not.toMatch(/[●○] (bob|carol)\n/)
    await f.term.waitFor('Back')
    f.term.type(KEY.enter)
    await f.term.waitFor('Open the chat')
    f.term.type(KEY.down, KEY.down, KEY.down, KEY.enter) // Leave
    await f.term.waitFor('Leave Team?')
    f.term.type('y', KEY.enter)
    await f.term.waitFor('✔ Left Team')
    await f.term.waitFor('Back')
    f.term.type(KEY.up, KEY.enter)
    await done
    expect(f.node.callsOf('inviteToConference')).toEqual([[TEAM.id, ['dave']]])
    expect(f.node.callsOf('leaveConference')).toEqual([[TEAM.id]])
  })

  it('names only the members a message did not reach live', () => {
    expect(deliveriesNote([delivered('bob'), delivered('carol')])).toBeUndefined()
    expect(deliveriesNote([delivered('bob'), { username: 'dave', delivery: { id: 'm', status: 'failed', reason: 'no route' } }]))
      .toBe('delivered to bob; ✖ not sent to dave: no route')
  })
  it('a conference message\'s state: delivered when every copy is, in their mailboxes while one waits there, not sent when none could be', () => {
    const failed = (username: string): any => ({ username, delivery: { id: 'm', status: 'failed', reason: 'refused' } })
    expect(conferenceState([delivered('bob'), delivered('carol')])).toEqual({ state: 'delivered' })
    expect(conferenceState([delivered('bob'), queued('carol')])).toEqual({ state: 'queued', where: 'mailbox' })
    expect(conferenceState([failed('bob'), failed('carol')])).toEqual({ state: 'failed' })
  })
})
