/**
 * End-to-end (issue 6): the real `node` program with its menus in a pseudo-terminal
 * (tmux), used as a person would: register, answer a friend request, open the user list,
 * chat with an online friend (a reply arrives while a message is half typed), go back,
 * quit; and the offline path (the message goes to the mailbox, the friend gets it at
 * login). The network is the real supernode program; the friend is a ChatNode in a
 * process of its own (test/helpers/worker.ts), driven over IPC.
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, it, expect, beforeAll, afterEach, inject } from 'vitest'
import { Programs, NODE_MAIN } from './helpers/programs.js'
import { TmuxScreen } from './helpers/tmux.js'
import { ChatWorker } from './helpers/worker.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const TEST_TIMEOUT_MS = 180_000
/** Cheap password hashing for the programs of the test. */
const FAST_ENV = { CONF_CHAT_BCRYPT_COST: '4' }

let programs: Programs | undefined
let screen: TmuxScreen | undefined
const workers: ChatWorker[] = []

beforeAll(() => {
  const buildError = inject('buildError')
  if (buildError !== '') throw new Error(buildError)
})

afterEach(async () => {
  await screen?.kill()
  screen = undefined
  await Promise.all(workers.splice(0).map(async w => { await w.kill() }))
  await programs?.cleanup()
  programs = undefined
})

/** Poll `check` until it gives a value (a failed wait says what it waited for). */
async function until<T> (what: string, check: () => T | undefined | Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      const v = await check()
      if (v !== undefined) return v
    } catch (err) { last = err }
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}${last != null ? `: ${String(last)}` : ''}`)
    await new Promise(resolve => setTimeout(resolve, 200))
  }
}

interface Network { home: string, bootstrap: string[] }

async function startNetwork (): Promise<Network> {
  programs = new Programs()
  const home = await programs.home()
  const supernode = programs.supernode({ home, env: { CONF_CHAT_PORT: String(await programs.freePort()) } })
  await supernode.waitForLine(/^address file: /)
  const { multiaddrs } = JSON.parse(await readFile(join(home, 'supernode.json'), 'utf8'))
  return { home, bootstrap: multiaddrs }
}

/** The friend: a peer process of its own with `username` registered and logged in. */
async function startFriend (net: Network, username: string, fullName: string): Promise<ChatWorker> {
  const worker = await ChatWorker.start({ dataDir: join(net.home, `friend-${username}`), host: '127.0.0.1', port: 0, bootstrap: net.bootstrap, bcryptCost: 4 })
  workers.push(worker)
  // until the peer has joined, registering says the network is not reachable
  await until(`${username} to register`, async () => await worker.call('register', { username, password: `password of ${username}`, fullName }))
  return worker
}

function eventOf (worker: ChatWorker, event: string, match: (detail: any) => boolean): any {
  return worker.events.find(e => e.event === event && match(e.detail))?.detail
}

/** The TUI program in a terminal of 100x30, with the test's home. */
async function startTui (net: Network): Promise<TmuxScreen> {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('CONF_CHAT_') && k !== 'DEBUG' && k !== 'NO_COLOR') env[k] = v
  }
  Object.assign(env, { CONF_CHAT_HOME: net.home, TERM: 'xterm-256color', ...FAST_ENV })
  screen = await TmuxScreen.start({ command: [process.execPath, NODE_MAIN], cwd: ROOT, env })
  return screen
}

async function register (tui: TmuxScreen, username: string, fullName: string): Promise<void> {
  await tui.waitFor(/Welcome to conf-chat\n❯ Log in\n {2}Register\n {2}Quit/)
  await tui.press('Down', 'Enter')
  await tui.waitFor(/Choose a username/)
  await tui.type(username)
  await tui.press('Enter')
  await tui.waitFor(/Choose a password/)
  await tui.type('a good password')
  await tui.press('Enter')
  await tui.waitFor(/Type it again/)
  await tui.type('a good password')
  await tui.press('Enter')
  await tui.waitFor(/Your full name/)
  await tui.type(fullName)
  await tui.press('Enter')
  await tui.waitFor(new RegExp(`✔ Registered ${username} \\(${fullName}\\); logged in`))
  await tui.waitFor(/pick a user to chat with\n/)
}

/** The program ended by itself with exit code 0 and no stack trace or error on the screen. */
async function expectCleanExit (tui: TmuxScreen): Promise<string> {
  expect(await tui.waitForExit()).toBe(0)
  const all = await tui.everything()
  expect(all).not.toMatch(/\n\s+at .+:\d+:\d+\)?\n/) // a stack frame
  expect(all).not.toMatch(/error:|Error\b/)
  return all
}

describe('the terminal UI in a pseudo-terminal', () => {
  it('registers, answers a friend request, chats live with an online friend while replies arrive, goes back, quits', async () => {
    const net = await startNetwork()
    const bob = await startFriend(net, 'bob', 'Bob Builder')
    const tui = await startTui(net)
    await tui.waitFor(/Joined the network via/)
    await register(tui, 'alice', 'Alice Liddell')

    // a friend request arrives while the menu waits: a notice and a counter, at once
    await bob.call('addFriend', 'alice', 'hi, it is bob')
    const menu = await tui.waitFor(/Friend requests \(1\)/)
    expect(menu).toContain('? friend request from bob: "hi, it is bob" (see Friend requests)')
    expect(menu).toMatch(/● bob +Bob Builder +online/)

    // answer it on the friend requests screen
    await tui.press('Down', 'Enter') // bob, then Friend requests
    await tui.waitFor(/❯ \? bob asks to be friends: "hi, it is bob"/)
    await tui.press('Enter')
    await tui.waitFor(/❯ Accept/)
    await tui.press('Enter')
    await tui.waitFor(/✔ You and bob are friends now \(told at once\)/)
    await until('bob to hear that alice accepted', () => eventOf(bob, 'friend:accepted', d => d.username === 'alice'))
    // the screen again, with no request left: leave it
    await tui.waitFor(/No friend requests\n❯ Send a friend request…\n {2}Back/)
    await tui.press('Down', 'Enter')
    // the user list: bob is a friend now, online, first; the cursor is still on Friend requests
    const list = await tui.waitFor(/ Friends\n {2}● bob +Bob Builder +online[\s\S]*❯ Friend requests\n/)
    expect(list).toMatch(/r refresh · q quit/)
    await tui.press('Up')
    await tui.waitFor(/ Friends\n❯ ● bob +Bob Builder +online/)

    // the chat screen
    await tui.press('Enter')
    await tui.waitFor(/── Chat with bob \(Bob Builder\) · online ──[\s\S]*you ›/)
    await tui.type('hello bob')
    await tui.press('Enter')
    const first = await until('bob to get the first message', () => eventOf(bob, 'message', d => d.text === 'hello bob'))
    expect(first.from).toBe('alice')
    expect(first.live).toBe(true)
    await tui.waitFor(/\] you: hello bob\n/)

    // a reply while a message is half typed: it shows above the line, the typing stays
    await tui.type('I am in the middle of typ')
    await tui.waitFor(/you › I am in the middle of typ$/)
    await bob.call('sendMessage', 'alice', 'hi alice, good to see you')
    const during = await tui.waitFor(/\] bob: hi alice, good to see you\n/)
    expect(during).toMatch(/\] bob: hi alice, good to see you\nyou › I am in the middle of typ$/)
    await tui.type('ing this')
    await tui.press('Enter')
    await until('bob to get the second message', () => eventOf(bob, 'message', d => d.text === 'I am in the middle of typing this'))
    await tui.waitFor(/\] you: I am in the middle of typing this\nyou ›/)

    // back to the list, then quit with q
    await tui.type('/q')
    await tui.press('Enter')
    await tui.waitFor(/pick a user to chat with\n(.*\n)* Friends\n❯ ● bob/)
    await tui.press('q')
    const all = await expectCleanExit(tui)
    expect(all).toMatch(/Logged out alice\nBye\./)
    // quitting logged alice out: her friend is told
    await until('bob to see alice go offline', () => eventOf(bob, 'presence', d => d.username === 'alice' && d.online === false))
  }, TEST_TIMEOUT_MS)

  it('sends to an offline friend\'s mailbox, and the friend gets it at the next login; Ctrl+C leaves cleanly', async () => {
    const net = await startNetwork()
    const bob = await startFriend(net, 'bob', 'Bob Builder')
    const tui = await startTui(net)
    await register(tui, 'alice', 'Alice Liddell')

    // alice picks bob, who is not a friend yet, and asks him from there
    await tui.press('r')
    await tui.waitFor(/ Users\n❯ ● bob +Bob Builder +online/)
    await tui.press('Enter')
    await tui.waitFor(/bob is not your friend yet[\s\S]*❯ Send bob a friend request/)
    await tui.press('Enter')
    await tui.waitFor(/A note with the request/)
    await tui.press('Enter')
    await tui.waitFor(/✔ Friend request sent to bob/)
    await until('bob to get the request', () => eventOf(bob, 'friend:request', d => d.username === 'alice'))
    await bob.call('acceptFriend', 'alice')
    await tui.waitFor(/★ bob and you are friends now/)
    await tui.waitFor(/ Friends\n❯ ● bob +Bob Builder +online/)

    // bob logs out: alice is told at once, and the list says so
    await bob.call('logout')
    await tui.waitFor(/○ bob went offline/)
    await tui.waitFor(/❯ ○ bob +Bob Builder +offline/)
    await tui.press('Enter')
    await tui.waitFor(/── Chat with bob \(Bob Builder\) · offline ──/)
    await tui.waitFor(/bob is offline: what you send goes to their mailbox, and they get it at their next login\.[\s\S]*you ›/)
    await tui.type('are you there? call me')
    await tui.press('Enter')
    await tui.waitFor(/\] you: are you there\? call me\n\s*↳ \(bob is offline: left in their mailbox\)/)

    // Ctrl+C in the chat screen: logged out, offline published, exit code 0, no stack trace
    await tui.press('C-c')
    const all = await expectCleanExit(tui)
    expect(all).toMatch(/Logged out alice\nBye\./)

    // bob logs in later and gets the message from the mailbox, once
    await bob.call('login', 'bob', 'password of bob')
    const batch = await until('bob to get his offline messages', () => eventOf(bob, 'messages:offline', d => d.messages.length > 0))
    expect(batch.messages.map((m: any) => [m.from, m.text])).toEqual([['alice', 'are you there? call me']])
  }, TEST_TIMEOUT_MS)
})
