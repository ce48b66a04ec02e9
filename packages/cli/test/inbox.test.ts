/** The inbox: events that arrive while the user is in the menus are counted or queued, never lost. */
import { describe, it, expect, afterEach } from 'vitest'
import { screenFixture, type ScreenFixture } from './helpers/context.js'
import { Inbox } from '../src/tui/inbox.js'

let f: ScreenFixture
afterEach(() => { f?.cleanup() })

const dm = (from: string, text: string, id = `${from}-${text}`): Record<string, unknown> =>
  ({ id, from, to: 'alice', text, sentAt: Date.UTC(2030, 0, 1, 12, 0, 1), direction: 'in', live: true })

describe('Inbox', () => {
  it('counts messages unread per user and queues a notice for each, in order', () => {
    f = screenFixture()
    // a screen re-renders on each change: it must see every message, the counts already updated
    const seen: number[] = []
    f.ctx.inbox.subscribe(() => { seen.push(f.ctx.inbox.unreadTotal) })
    f.node.emit('message', dm('bob', 'hi'))
    f.node.emit('message', dm('bob', 'there?'))
    f.node.emit('message', dm('carol', 'hello'))
    expect(f.ctx.inbox.unread('bob')).toBe(2)
    expect(f.ctx.inbox.unread('carol')).toBe(1)
    expect(f.ctx.inbox.unreadTotal).toBe(3)
    expect(seen).toEqual([1, 2, 3])
    expect(f.ctx.inbox.pendingNotices.map(n => n.replace(/^\[[\d:]+\] /, ''))).toEqual(['✉ bob: hi', '✉ bob: there?', '✉ carol: hello'])
    expect(f.ctx.inbox.takeNotices()).toHaveLength(3)
    expect(f.ctx.inbox.pendingNotices).toEqual([])
    f.ctx.inbox.markRead('bob')
    expect(f.ctx.inbox.unread('bob')).toBe(0)
    expect(f.ctx.inbox.unread('carol')).toBe(1)
  })

  it('rings the bell for a message not on screen, once a conversation until it is opened; never for the open chat\'s own', () => {
    f = screenFixture()
    let rings = 0
    const inbox = new Inbox(f.node.asNode(), f.ctx.colors, () => { rings++ })
    inbox.start()
    try {
      f.node.emit('message', dm('bob', 'hi'))
      f.node.emit('message', dm('bob', 'there?'))
      expect(rings).toBe(1)
      // a batch with a conversation that had nothing unread: once
      f.node.emit('messages:offline', { messages: [dm('bob', 'a'), dm('carol', 'b'), dm('carol', 'c')] })
      expect(rings).toBe(2)
      f.node.emit('messages:offline', { messages: [dm('carol', 'd')] })
      expect(rings).toBe(2)
      const unfocus = inbox.focus({ username: 'bob', onMessage: () => {}, onNotice: () => {} })
      f.node.emit('message', dm('bob', 'on screen'))
      expect(rings).toBe(2)
      unfocus()
      // bob's chat was opened: his next message rings again
      f.node.emit('message', dm('bob', 'after'))
      expect(rings).toBe(3)
      inbox.markRead('bob')
      // activity: the conversations with unread messages, the one that waited longest first
      expect(inbox.nextActivity()).toEqual({ username: 'carol' })
      inbox.markRead('carol')
      expect(inbox.nextActivity()).toBeUndefined()
    } finally {
      inbox.stop()
    }
  })

  it('counts a batch of offline messages per sender with one notice', () => {
    f = screenFixture()
    f.node.emit('messages:offline', { messages: [dm('bob', 'a'), dm('carol', 'b'), dm('bob', 'c')] })
    expect(f.ctx.inbox.unread('bob')).toBe(2)
    expect(f.ctx.inbox.unread('carol')).toBe(1)
    expect(f.ctx.inbox.pendingNotices).toEqual(['✉ while you were away: 3 messages from bob (2), carol (1)'])
  })

  it('gives an open chat its partner\'s messages and every notice, and counts only the others', () => {
    f = screenFixture()
    f.node.emit('message', dm('bob', 'before')) // waiting when the chat opens: the chat shows bob's messages itself
    f.node.emit('presence', { username: 'dave', online: true })
    const messages: string[] = []
    const notices: string[] = []
    const presence: boolean[] = []
    const unfocus = f.ctx.inbox.focus({ username: 'bob', onMessage: m => { messages.push(m.text) }, onNotice: l => { notices.push(l) }, onPresence: o => { presence.push(o) } })
    expect(f.ctx.inbox.unread('bob')).toBe(0)
    expect(notices).toEqual(['● dave is online'])
    f.node.emit('message', dm('bob', 'live'))
    f.node.emit('messages:offline', { messages: [dm('bob', 'stored')] })
    f.node.emit('message', dm('carol', 'psst'))
    f.node.emit('presence', { username: 'bob', online: false })
    expect(messages).toEqual(['live', 'stored'])
    expect(notices.slice(1).map(n => n.replace(/^\[[\d:]+\] /, ''))).toEqual(['✉ carol: psst', '○ bob went offline'])
    expect(presence).toEqual([false])
    expect(f.ctx.inbox.unread('bob')).toBe(0)
    expect(f.ctx.inbox.unread('carol')).toBe(1)
    unfocus()
    f.node.emit('message', dm('bob', 'after'))
    expect(f.ctx.inbox.unread('bob')).toBe(1)
    expect(f.ctx.inbox.pendingNotices).toHaveLength(1)
  })

  it('keeps the incoming friend request count and tells of answers', () => {
    f = screenFixture()
    f.ctx.inbox.setIncomingRequests(['erin'])
    f.node.emit('friend:request', { username: 'bob', note: 'hi, it is bob', at: 1 })
    f.node.emit('friend:request', { username: 'bob', at: 2 }) // the same user twice counts once
    expect(f.ctx.inbox.requestCount).toBe(2)
    const version = f.ctx.inbox.friendsVersion
    f.node.emit('friend:accepted', { username: 'carol' })
    f.node.emit('friend:rejected', { username: 'dave' })
    f.node.emit('friend:removed', { username: 'erin' })
    expect(f.ctx.inbox.requestCount).toBe(1)
    expect(f.ctx.inbox.friendsVersion).toBe(version + 2)
    expect(f.ctx.inbox.pendingNotices).toEqual([
      '? friend request from bob: "hi, it is bob" (see Friend requests)',
      '? friend request from bob (see Friend requests)',
      '★ carol and you are friends now',
      'dave turned down your friend request',
      'erin is no longer your friend'
    ])
  })

  it('remembers presence announced since the list was loaded', () => {
    f = screenFixture()
    f.node.emit('presence', { username: 'bob', online: true })
    expect(f.ctx.inbox.onlineNow('bob')).toBe(true)
    expect(f.ctx.inbox.onlineNow('carol')).toBeUndefined()
    f.ctx.inbox.forgetPresence()
    expect(f.ctx.inbox.onlineNow('bob')).toBeUndefined()
  })

  it('tells what became of queued direct messages, and nothing of friend envelopes', () => {
    f = screenFixture()
    f.node.emit('message:status', { id: '1', kind: 'dm', to: 'bob', status: 'delivered', where: 'live' })
    f.node.emit('message:status', { id: '2', kind: 'dm', to: 'bob', status: 'queued', where: 'mailbox' })
    f.node.emit('message:status', { id: '3', kind: 'dm', to: 'bob', status: 'failed', reason: 'too old' })
    f.node.emit('message:status', { id: '4', kind: 'friend-request', to: 'bob', status: 'delivered', where: 'live' })
    expect(f.ctx.inbox.pendingNotices).toEqual([
      '✓ your queued message to bob was delivered',
      'your queued message to bob is in their mailbox',
      '✖ your message to bob could not be sent: too old'
    ])
  })

  it('aborts the session signal when the session ends, and starts a new one at the next login', () => {
    f = screenFixture()
    f.node.emit('message', dm('bob', 'hi'))
    const first = f.ctx.inbox.sessionSignal
    f.node.emit('session:ended', { username: 'alice', reason: 'takeover' })
    expect(first.aborted).toBe(true)
    expect(first.reason.name).toBe('SessionEndedError')
    expect(f.ctx.inbox.pendingNotices.at(-1)).toBe('! logged out: your account logged in on another peer')
    expect(f.ctx.inbox.unread('bob')).toBe(0)
    f.node.emit('session:started', { username: 'alice' })
    expect(f.ctx.inbox.sessionSignal.aborted).toBe(false)
  })
})

describe('Inbox and conferences', () => {
  const conf = { id: 'conf-0123456789abcdef', name: 'Team' }
  const cm = (from: string, text: string): Record<string, unknown> => ({ ...dm(from, text), id: `c-${from}-${text}`, conference: conf })

  it('counts conference messages per conference, apart from direct ones', () => {
    f = screenFixture()
    f.node.emit('conference:message', cm('bob', 'hello team'))
    f.node.emit('messages:offline', { messages: [dm('bob', 'private'), cm('carol', 'a'), cm('bob', 'b')] })
    expect(f.ctx.inbox.conferenceUnread(conf.id)).toBe(3)
    expect(f.ctx.inbox.conferenceUnreadTotal).toBe(3)
    expect(f.ctx.inbox.unread('bob')).toBe(1)
    expect(f.ctx.inbox.unread('carol')).toBe(0)
    expect(f.ctx.inbox.pendingNotices.map(n => n.replace(/^\[[\d:]+\] /, ''))).toEqual([
      '✉ bob in Team: hello team',
      '✉ while you were away: 1 message from bob (1); 2 conference messages in Team (2)'
    ])
    f.ctx.inbox.markConferenceRead(conf.id)
    expect(f.ctx.inbox.conferenceUnread(conf.id)).toBe(0)
  })

  it('gives an open conference chat its messages, not those of a direct chat with the same sender', () => {
    f = screenFixture()
    f.node.emit('conference:message', cm('bob', 'before')) // waiting: the conference chat shows it itself
    const got: string[] = []
    const notices: string[] = []
    f.ctx.inbox.focus({ conference: conf.id, onMessage: m => { got.push(m.text) }, onNotice: l => { notices.push(l) } })
    expect(notices).toEqual([])
    f.node.emit('conference:message', cm('bob', 'live'))
    f.node.emit('message', dm('bob', 'direct'))
    expect(got).toEqual(['live'])
    expect(f.ctx.inbox.unread('bob')).toBe(1)
    expect(f.ctx.inbox.conferenceUnread(conf.id)).toBe(0)
  })

  it('tells of invites and member changes, and marks the conference list stale', () => {
    f = screenFixture()
    const version = f.ctx.inbox.conferencesVersion
    const conference = { ...conf, key: 'k', owner: 'bob', members: ['bob', 'alice'], createdAt: 1 }
    f.node.emit('conference:invited', { conference, by: 'bob' })
    f.node.emit('conference:joined', { conference, usernames: ['carol', 'dave'], by: 'bob' })
    f.node.emit('conference:left', { conference, username: 'carol' })
    f.node.emit('conference:removed', { conference, usernames: ['dave'], by: 'bob', you: false })
    f.node.emit('conference:removed', { conference, usernames: ['alice'], by: 'bob', you: true })
    expect(f.ctx.inbox.conferencesVersion).toBe(version + 5)
    expect(f.ctx.inbox.pendingNotices).toEqual([
      '★ bob invited you to the conference Team (conf-0123456789abcdef)',
      'carol, dave joined Team (invited by bob)',
      'carol left Team',
      'bob removed dave from Team',
      '! bob removed you from Team'
    ])
  })
})
