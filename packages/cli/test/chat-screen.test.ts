/** The chat screen on injected streams: history, sending, live messages above the input line, offline friends, leaving. */
import { describe, it, expect, afterEach } from 'vitest'
import { stripVTControlCharacters } from 'node:util'
import { chatScreen } from '../src/tui/chat-screen.js'
import { screenFixture, type ScreenFixture } from './helpers/context.js'
import { FakeTerminal, KEY } from './helpers/fake-terminal.js'
import { CLEAR_SCREEN } from '../src/tui/screen.js'

let f: ScreenFixture
afterEach(() => { f?.cleanup() })

/** Today at 12:00:ss, local time (the screen shows the date only for other days). */
const at = (s: number): number => { const d = new Date(); d.setHours(12, 0, s, 0); return d.getTime() }
const msg = (id: string, from: string, to: string, text: string, s: number): Record<string, unknown> =>
  ({ id, from, to, text, sentAt: at(s), direction: from === 'alice' ? 'out' : 'in' })

const history = [
  msg('1', 'alice', 'bob', 'hi bob', 1),
  msg('2', 'bob', 'alice', 'hi alice', 2),
  msg('3', 'bob', 'alice', 'are you there?', 3)
]

describe('chatScreen', () => {
  it('shows the history with the unread ones marked, sends what is typed, shows replies as they come, and goes back with /q', async () => {
    f = screenFixture({
      history,
      presenceOf: { online: true },
      sendMessage: (_to: string, text: string) => ({ id: `sent-${text}`, status: 'delivered', where: 'live' })
    })
    f.node.emit('message', { ...msg('3', 'bob', 'alice', 'are you there?', 3), live: true }) // unread, already in the history
    expect(f.ctx.inbox.unread('bob')).toBe(1)
    const done = chatScreen(f.ctx, 'bob', 'Bob Builder')
    const opening = await f.term.waitFor('you › ')
    expect(opening).toContain('── Chat with bob (Bob Builder) · online ──')
    expect(opening).toMatch(/\[12:00:01\] you: hi bob\n\[12:00:02\] bob: hi alice\n── 1 new ──\n\[12:00:03\] bob: are you there\?\n/)
    expect(opening).not.toContain('offline')

    f.term.type('yes, here', KEY.enter)
    await f.term.waitFor(/you: yes, here\n/)
    // a reply while the next message is half typed: it shows above the line, and the typing goes on
    f.term.type('half a sen')
    await f.term.waitFor('half a sen')
    f.node.emit('message', { ...msg('4', 'bob', 'alice', 'great!', 4), live: true })
    await f.term.waitFor(/\[12:00:04\] bob: great!\n(\s*)you › half a sen/)
    f.term.type('tence', KEY.enter)
    await f.term.waitFor('you: half a sentence')
    f.term.type('/q', KEY.enter)
    await expect(done).resolves.toBe('back')
    expect(f.node.callsOf('sendMessage')).toEqual([['bob', 'yes, here'], ['bob', 'half a sentence']])
    expect(f.ctx.inbox.unread('bob')).toBe(0)
    // messages from others while the chat was open are counted for later
    f.node.emit('message', { ...msg('5', 'bob', 'alice', 'bye', 5), live: true })
    expect(f.ctx.inbox.unread('bob')).toBe(1)
  })

  it('is drawn again for a new terminal size (an attach): the title and the last lines, then what was being typed', async () => {
    f = screenFixture({
      history,
      presenceOf: { online: true },
      sendMessage: (_to: string, text: string) => ({ id: `sent-${text}`, status: 'delivered', where: 'live' })
    }, new FakeTerminal({ tty: { columns: 80, rows: 24 } }))
    const done = chatScreen(f.ctx, 'bob')
    await f.term.waitFor('you › ')
    f.term.type('sent before', KEY.enter)
    await f.term.waitForScreen(/you: sent before · delivered\n/)
    f.node.emit('message', { ...msg('4', 'bob', 'alice', 'a live one', 4), live: true })
    await f.term.waitFor('bob: a live one')
    f.term.type('half typ')
    await f.term.waitFor('half typ')
    const cleared = f.term.rawText.length
    f.term.resize(100, 30)
    const redrawn = await f.term.waitFor('you › half typ')
    expect(f.term.rawText.slice(cleared)).toContain(CLEAR_SCREEN)
    expect(redrawn).toMatch(/── Chat with bob · online ──[\s\S]*bob: are you there\?[\s\S]*you: sent before · delivered\n[\s\S]*bob: a live one[\s\S]*you › half typ$/)
    f.term.type('ed', KEY.enter)
    await f.term.waitForScreen(/you: half typed · delivered\n/)
    f.term.type('/q', KEY.enter)
    await expect(done).resolves.toBe('back')
    expect(f.term.output.listenerCount('resize')).toBe(0)
  })

  it('shows the state of each message the user sent and changes it in place; what it shows from the friend is told read', async () => {
    f = screenFixture({
      history: [{ ...msg('1', 'alice', 'bob', 'hi bob', 1), state: 'delivered' }, msg('2', 'bob', 'alice', 'hi alice', 2)],
      presenceOf: { online: false },
      sendMessage: () => ({ id: 'q1', status: 'queued', where: 'mailbox' }),
      markRead: () => 1
    }, new FakeTerminal({ tty: { columns: 80, rows: 24 } }))
    const done = chatScreen(f.ctx, 'bob')
    const opening = await f.term.waitFor('you › ')
    expect(opening).toContain('you: hi bob · delivered\n')
    // opening the chat tells bob that what it shows is read
    expect(f.node.callsOf('markRead')).toEqual([['bob']])
    f.term.type('are you there?', KEY.enter)
    await f.term.waitForScreen(/you: are you there\? · in their mailbox\n/)
    // bob's peer reads its mailbox, then bob opens the chat: each line changes where it is
    f.node.emit('message:state', { id: 'q1', to: 'bob', state: 'delivered' })
    f.node.emit('message:state', { id: '1', to: 'bob', state: 'read' })
    await f.term.waitForScreen(/you: hi bob · read\n[\s\S]*you: are you there\? · delivered\n/)
    f.node.emit('message:state', { id: 'q1', to: 'bob', state: 'read' })
    const screen = await f.term.waitForScreen(/you: are you there\? · read\n[\s\S]*you ›$/)
    // in place: one line each, the rest of the screen as it was, and never drawn anew
    expect(screen.match(/are you there\?/g)).toHaveLength(1)
    expect(screen.match(/you: hi bob/g)).toHaveLength(1)
    expect(screen).toMatch(/── Chat with bob · offline ──\n\[12:00:01\] you: hi bob · read\n\[12:00:02\] bob: hi alice\n/)
    expect(f.term.rawText).not.toContain(CLEAR_SCREEN)
    // a state of a message to someone else changes nothing here
    f.node.emit('message:state', { id: '2', to: 'carol', state: 'read' })
    // a message from bob shown here is read at once
    f.node.emit('message', { ...msg('5', 'bob', 'alice', 'yes!', 5), live: true })
    await f.term.waitFor('bob: yes!')
    await f.node.waitForCalls('markRead', 2)
    f.term.type('/q', KEY.enter)
    await expect(done).resolves.toBe('back')
  })

  it('the chat line: /help lists its commands, Tab completes commands and names, ↑ recalls what was typed, /search finds messages', async () => {
    f = screenFixture({
      history: [msg('1', 'bob', 'alice', 'the Zoo opens at nine', 1), msg('2', 'alice', 'bob', 'see you there', 2), msg('3', 'bob', 'alice', 'zoo tickets: 2', 3)],
      presenceOf: { online: true },
      sendMessage: (_to: string, text: string) => ({ id: `sent-${text}`, status: 'delivered', where: 'live' })
    }, new FakeTerminal({ tty: { columns: 80, rows: 24 } }))
    const done = chatScreen(f.ctx, 'bob')
    await f.term.waitFor('you › ')
    f.term.type('/help', KEY.enter)
    const help = await f.term.waitFor(/Start a message with \/\/ to send a leading \/\./)
    for (const command of ['/q', '/help', '/history', '/search <text>']) expect(help).toContain(`  ${command}`)
    // Tab: the command, then a username
    f.term.type('/sea', KEY.tab)
    await f.term.waitFor('you › /search')
    f.term.type(' zoo', KEY.enter)
    const found = await f.term.waitFor(/── 2 messages with "zoo" ──\n\[12:00:01\] bob: the Zoo opens at nine\n\[12:00:03\] bob: zoo tickets: 2\n/)
    expect(found).not.toContain('see you there\n[12')
    f.term.type('hi b', KEY.tab)
    await f.term.waitFor('you › hi bob')
    f.term.type(KEY.enter)
    await f.term.waitForScreen(/you: hi bob · delivered\n/)
    // ↑ brings back the last line typed (on any chat screen of this run)
    f.term.type(KEY.up)
    await f.term.waitFor('you › hi bob')
    f.term.type(KEY.enter)
    await f.node.waitForCalls('sendMessage', 2)
    expect(f.node.callsOf('sendMessage')).toEqual([['bob', 'hi bob'], ['bob', 'hi bob']])
    expect(f.ctx.typed?.slice(0, 2)).toEqual(['hi bob', '/search zoo'])
    f.term.type('/q', KEY.enter)
    await expect(done).resolves.toBe('back')
  })

  it('PgUp scrolls back through the whole conversation, to message 1 of 200; PgDn comes back to the live view', async () => {
    const long = Array.from({ length: 200 }, (_, i) => msg(String(i + 1), i % 2 === 0 ? 'bob' : 'alice', 'x', `message ${i + 1}`, 0))
    f = screenFixture({ history: long, presenceOf: { online: true } }, new FakeTerminal({ tty: { columns: 80, rows: 24 } }))
    const done = chatScreen(f.ctx, 'bob')
    const opening = await f.term.waitFor('you › ')
    expect(opening).toContain('… 180 earlier messages (PgUp or /history scrolls back)')
    expect(opening).not.toContain('message 180\n')
    // a page is the screen's rows less three: 21 messages
    f.term.type(KEY.pageUp)
    let page = await f.term.waitFor(/── messages 159-179 of 200 · 21 below · PgUp\/PgDn scroll ──\n/)
    expect(page).toMatch(/bob: message 159\n[\s\S]*you: message 178\n\[12:00:00\] bob: message 179\n──/)
    for (let i = 0; i < 9; i++) f.term.type(KEY.pageUp)
    page = await f.term.waitFor(/── messages 1-21 of 200 · 179 below/)
    expect(page).toMatch(/bob: message 1\n/)
    // a message that arrives meanwhile is counted below, not drawn over the page
    f.node.emit('message', { ...msg('201', 'bob', 'alice', 'are you reading old stuff?', 5), live: true })
    await f.term.waitFor(/── messages 1-21 of 201 · 180 below/)
    for (let i = 0; i < 10; i++) f.term.type(KEY.pageDown)
    await f.term.waitFor(/bob: are you reading old stuff\?\n(\s*)you › $/)
    // the last drawing is the live view: no page line
    const lastDrawing = stripVTControlCharacters(f.term.rawText.slice(f.term.rawText.lastIndexOf(CLEAR_SCREEN)))
    expect(lastDrawing).toContain('bob: are you reading old stuff?')
    expect(lastDrawing).not.toContain('── messages')
    // /history goes to the first page too
    f.term.type('/history', KEY.enter)
    await f.term.waitFor(/── messages 1-21 of 201/)
    // a search from there shows under the live view
    f.term.type('/search message 199', KEY.enter)
    const found = await f.term.waitForScreen(/── 1 message with "message 199" ──\n\[12:00:00\] bob: message 199\nyou ›$/)
    expect(found).not.toContain('── messages')
    f.term.type('/q', KEY.enter)
    await expect(done).resolves.toBe('back')
  })

  it('changes a line that wraps in place, with nothing of the old state left on it; a send that ends after /q draws nothing', async () => {
    let finish!: (d: unknown) => void
    f = screenFixture({
      history: [],
      presenceOf: { online: false },
      sendMessage: (_to: string, text: string) => text === 'slow'
        ? new Promise(resolve => { finish = resolve })
        : { id: 'w1', status: 'queued', where: 'mailbox' }
    }, new FakeTerminal({ tty: { columns: 80, rows: 24 } }))
    const done = chatScreen(f.ctx, 'bob')
    await f.term.waitFor('you › ')
    const long = 'a message long enough to take two rows of an eighty-column terminal, as this one does'
    f.term.type(long, KEY.enter)
    await f.term.waitForScreen(/two rows of an eighty-column terminal, as this one does · in their mailbox\n/)
    f.node.emit('message:state', { id: 'w1', to: 'bob', state: 'read' })
    const screen = await f.term.waitForScreen(/as this one does · read\n/)
    expect(screen).not.toMatch(/· read.*mailbox|· readheir/)
    expect(screen.match(/as this one does/g)).toHaveLength(1)
    // leave while a send is under way: when it ends, the list's screen is not written on
    f.term.type('slow', KEY.enter)
    await f.node.waitForCalls('sendMessage', 2)
    f.term.type('/q', KEY.enter)
    await expect(done).resolves.toBe('back')
    const after = f.term.rawText.length
    finish({ id: 's1', status: 'delivered', where: 'live' })
    f.node.emit('message:state', { id: 's1', to: 'bob', state: 'read' })
    await new Promise(resolve => setImmediate(resolve))
    expect(f.term.rawText.slice(after)).not.toContain('slow')
  })

  it('pages by rows: messages that take two rows fill a page with fewer of them, and every message is on some page', async () => {
    const text = (i: number): string => `message ${String(i).padStart(2, '0')} ` + 'x'.repeat(70)
    const long = Array.from({ length: 30 }, (_, i) => msg(String(i + 1), 'bob', 'alice', text(i + 1), 0))
    f = screenFixture({ history: long, presenceOf: { online: true } }, new FakeTerminal({ tty: { columns: 80, rows: 24 } }))
    const done = chatScreen(f.ctx, 'bob')
    await f.term.waitFor('you › ')
    // 21 rows a page: 10 messages of 2 rows
    f.term.type(KEY.pageUp)
    let page = await f.term.waitForScreen(/── messages 11-20 of 30 · 10 below/)
    expect(page).toMatch(/^\[12:00:00\] bob: message 11 x+\n[\s\S]*bob: message 20 x+\n──/)
    f.term.type(KEY.pageUp)
    page = await f.term.waitForScreen(/── messages 1-10 of 30 · 20 below/)
    expect(page).toMatch(/^\[12:00:00\] bob: message 01 x+\n/)
    f.term.type('/q', KEY.enter)
    await done
  })

  it('shows a friend\'s control characters as symbols: no escape sequence reaches the terminal', async () => {
    f = screenFixture({ history: [msg('1', 'bob', 'alice', 'line one\nline two \u001b]52;c;ZXZpbA==\u0007\u001b[2J', 1)], presenceOf: { online: true } })
    const done = chatScreen(f.ctx, 'bob')
    const opening = await f.term.waitFor('you › ')
    expect(opening).toContain('bob: line one␊line two ␛]52;c;ZXZpbA==␇␛[2J')
    expect(f.term.rawText).not.toContain('\u001b]52')
    f.term.type('/q', KEY.enter)
    await done
  })

  it('says a friend is offline and that messages go to their mailbox', async () => {
    f = screenFixture({
      history: [],
      presenceOf: { online: false },
      sendMessage: () => ({ id: 'q1', status: 'queued', where: 'mailbox' })
    })
    const done = chatScreen(f.ctx, 'carol')
    const opening = await f.term.waitFor('you › ')
    expect(opening).toContain('── Chat with carol · offline ──')
    expect(opening).toContain('(no messages yet)')
    expect(opening).toContain('carol is offline: what you send goes to their mailbox')
    f.term.type('see you later', KEY.enter)
    await f.term.waitFor('↳ (carol is offline: left in their mailbox)')
    f.term.type(KEY.ctrlD)
    await expect(done).resolves.toBe('back')
  })

  it('shows a refused message as one line and goes on', async () => {
    f = screenFixture({
      history: [],
      presenceOf: { online: true },
      sendMessage: () => { throw Object.assign(new Error('not a friend: carol'), { name: 'NotFriendError' }) }
    })
    const done = chatScreen(f.ctx, 'carol')
    await f.term.waitFor('you › ')
    f.term.type('hello?', KEY.enter)
    await f.term.waitFor('↳ ✖ not a friend: carol')
    f.term.type('/what', KEY.enter)
    await f.term.waitFor('/what: no such command here (/help lists them')
    f.term.type('/q', KEY.enter)
    await expect(done).resolves.toBe('back')
    expect(f.node.callsOf('sendMessage')).toEqual([['carol', 'hello?']])
  })

  it('shows notices (other users, presence) above the line while open', async () => {
    f = screenFixture({ history: [], presenceOf: { online: true } })
    const done = chatScreen(f.ctx, 'bob')
    await f.term.waitFor('you › ')
    f.node.emit('message', { ...msg('9', 'dave', 'alice', 'psst', 9), live: true })
    await f.term.waitFor('✉ dave: psst')
    f.node.emit('presence', { username: 'bob', online: false })
    await f.term.waitFor('○ bob went offline')
    await f.term.waitFor("what you send now goes to bob's mailbox")
    f.term.type('/q', KEY.enter)
    await done
    expect(f.ctx.inbox.unread('dave')).toBe(1)
  })

  it('quits on Ctrl+C, and when the session ends goes back', async () => {
    f = screenFixture({ history: [], presenceOf: { online: true } })
    const quit = chatScreen(f.ctx, 'bob')
    await f.term.waitFor('you › ')
    f.term.type('typed', KEY.ctrlC)
    await expect(quit).resolves.toBe('quit')

    const ended = chatScreen(f.ctx, 'bob')
    await f.term.waitFor('you › ')
    f.node.emit('session:ended', { username: 'alice', reason: 'takeover' })
    await expect(ended).resolves.toBe('back')
  })
})
