/**
 * End-to-end (issue 6): the real `node` program with its menus in a pseudo-terminal
 * (tmux), used as a person would: register, answer a friend request, open the user list,
 * chat with an online friend (a reply arrives while a message is half typed), go back,
 * quit; the offline path (the message goes to the mailbox, the friend gets it at login);
 * a conference made and used from the menus. The network is the real supernode program;
 * the friends are the real `node` program in command mode (friend-add, msg, conf-send,
 * logout, login).
 */
import { fileURLToPath } from 'node:url'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, it, expect, beforeAll, afterEach, inject } from 'vitest'
import { Programs, NODE_MAIN, type Program } from './helpers/programs.js'
import { TmuxScreen } from './helpers/tmux.js'
import { askFirstUser, register } from './helpers/tui-flows.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const TEST_TIMEOUT_MS = 180_000
/** Cheap password hashing for the programs of the test. */
const FAST_ENV = { CONF_CHAT_BCRYPT_COST: '4', CONF_CHAT_KDF_MEMORY: '8' }

let programs: Programs | undefined
const screens: TmuxScreen[] = []

beforeAll(() => {
  const buildError = inject('buildError')
  if (buildError !== '') throw new Error(buildError)
})

afterEach(async () => {
  for (const screen of screens.splice(0)) await screen.kill()
  await programs?.cleanup()
  programs = undefined
})

interface Network { home: string }

async function startNetwork (): Promise<Network> {
  programs = new Programs()
  const home = await programs.home()
  const supernode = programs.supernode({ home, env: { CONF_CHAT_PORT: String(await programs.freePort()) } })
  await supernode.waitForLine(/^address file: /)
  return { home }
}

/** The friend: the node program in command mode, with `username` registered and logged in. */
async function startFriend (net: Network, username: string, fullName: string): Promise<Program> {
  const friend = programs!.node({ home: net.home, env: FAST_ENV })
  await friend.waitForLine(/^joined the network via /)
  friend.send(`register ${username}`)
  friend.send(`kettle harbour of ${username}`)
  friend.send(fullName)
  await friend.waitForLine(new RegExp(`^\\[register\\] Registered ${username} `))
  return friend
}

/** The TUI program in a terminal of 100x30 (or `size`), with the test's home. */
async function startTui (net: Network, size: { width: number, height: number } = { width: 100, height: 30 }): Promise<TmuxScreen> {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('CONF_CHAT_') && k !== 'DEBUG' && k !== 'NO_COLOR') env[k] = v
  }
  Object.assign(env, { CONF_CHAT_HOME: net.home, TERM: 'xterm-256color', ...FAST_ENV })
  const screen = await TmuxScreen.start({ command: [process.execPath, NODE_MAIN], cwd: ROOT, env, ...size })
  screens.push(screen)
  return screen
}

/**
 * With TUI_CAPTURE_DIR set, the screen as it is now goes to `<dir>/<name>.txt` (the text
 * captures of README.md's screenshots come from a run with it).
 */
async function capture (tui: TmuxScreen, name: string): Promise<void> {
  const dir = process.env.TUI_CAPTURE_DIR
  if (dir == null || dir === '') return
  await writeFile(join(dir, `${name}.txt`), await tui.visible() + '\n')
}

/** The program ended by itself with exit code 0 and no stack trace or error on the screen. */
async function expectCleanExit (tui: TmuxScreen): Promise<string> {
  const exit = await tui.waitForExit()
  const all = await tui.everything()
  expect(exit, all).toBe(0)
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
    bob.send('friend-add alice hi, it is bob')
    await bob.waitForLine(/^\[friends\] Friend request sent to alice \(delivered\)$/)
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
    await bob.waitForLine(/^\[friends\] alice accepted: you are now friends$/)
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
    await bob.waitForLine(/^\[DM from alice\] \(\d\d:\d\d:\d\d\) hello bob$/)
    await tui.waitFor(/\] you: hello bob · delivered\n/)

    // a reply while a message is half typed: it shows above the line, the typing stays
    await tui.type('I am in the middle of typ')
    await tui.waitFor(/you › I am in the middle of typ$/)
    bob.send('msg alice hi alice, good to see you')
    await bob.waitForLine(/^\[msg\] to alice: delivered$/)
    const during = await tui.waitFor(/\] bob: hi alice, good to see you\n/)
    expect(during).toMatch(/\] bob: hi alice, good to see you\nyou › I am in the middle of typ$/)
    await tui.type('ing this')
    await tui.press('Enter')
    await bob.waitForLine(/^\[DM from alice\] \(\d\d:\d\d:\d\d\) I am in the middle of typing this$/)
    await tui.waitFor(/\] you: I am in the middle of typing this · delivered\nyou ›/)

    // the same with a line that wraps (the terminal is 100 columns wide)
    const long = 'a long message that goes on and on, past the right edge of the terminal, so that it takes two rows of the screen'
    await tui.type(long)
    await tui.waitFor(/you › a long message that goes on and on, .* two rows of the screen$/)
    bob.send('msg alice one more thing')
    await bob.waitForLine(/^\[msg\] to alice: delivered$/)
    const wrapped = await tui.waitFor(/\] bob: one more thing\n/)
    expect(wrapped).toMatch(/\] bob: one more thing\n+you › a long message that goes on and on, .* two rows of the screen$/)
    await tui.press('Enter')
    await bob.waitForLine(/^\[DM from alice\] \(\d\d:\d\d:\d\d\) a long message that goes on and on, .* two rows of the screen$/)

    // back to the list, then quit with q
    await tui.type('/q')
    await tui.press('Enter')
    await tui.waitFor(/pick a user to chat with\n(.*\n)* Friends\n❯ ● bob/)
    await tui.press('q')
    const all = await expectCleanExit(tui)
    expect(all).toMatch(/Logged out alice\nBye\./)
    // each message once, in the screen's own words (not command mode's lines)
    expect(all.match(/bob: hi alice, good to see you/g)).toHaveLength(1)
    expect(all).not.toMatch(/\[DM from|\[presence\]|\[friends\]/)
    // quitting logged alice out: her friend is told
    await bob.waitForLine(/^\[presence\] alice is offline$/)
    expect(bob.stderr, bob.transcript()).toEqual([])
  }, TEST_TIMEOUT_MS)

  it('sends to an offline friend\'s mailbox, and the friend gets it at the next login; Ctrl+C leaves cleanly', async () => {
    const net = await startNetwork()
    const bob = await startFriend(net, 'bob', 'Bob Builder')
    const tui = await startTui(net)
    await register(tui, 'alice', 'Alice Liddell')

    // alice picks bob, who is not a friend yet, and asks him from there
    await askFirstUser(tui, 'bob', 'Bob Builder')
    await bob.waitForLine(/^\[friends\] alice wants to be your friend \(friend-accept alice\)$/)
    bob.send('friend-accept alice')
    await bob.waitForLine(/^\[friends\] You and alice are now friends \(delivered\)$/)
    await tui.waitFor(/★ bob and you are friends now/)
    await tui.waitFor(/ Friends\n❯ ● bob +Bob Builder +online/)

    // bob logs out: alice is told at once, and the list says so
    bob.send('logout')
    await bob.waitForLine(/^\[logout\] Logged out bob$/)
    await tui.waitFor(/○ bob went offline/)
    await tui.waitFor(/❯ ○ bob +Bob Builder +offline/)
    await tui.press('Enter')
    await tui.waitFor(/── Chat with bob \(Bob Builder\) · offline ──/)
    await tui.waitFor(/bob is offline: what you send goes to their mailbox, and they get it at their next login\.[\s\S]*you ›/)
    await tui.type('are you there? call me')
    await tui.press('Enter')
    await tui.waitFor(/\] you: are you there\? call me · in their mailbox\n\s*↳ \(bob is offline: left in their mailbox\)/)

    // Ctrl+C in the chat screen: logged out, offline published, exit code 0, no stack trace
    await tui.press('C-c')
    const all = await expectCleanExit(tui)
    expect(all).toMatch(/Logged out alice\nBye\./)

    // bob logs in later and gets the message from the mailbox, once
    bob.send('login bob')
    bob.send('kettle harbour of bob')
    await bob.waitForLine(/^\[login\] Logged in as bob \(Bob Builder\)$/)
    await bob.waitForLine(/^\[offline\] You have 1 message\(s\):$/)
    await bob.waitForLine(/^ {2}\[\d\d:\d\d:\d\d\] \[DM from alice\] are you there\? call me$/)
    expect(bob.stderr, bob.transcript()).toEqual([])
  }, TEST_TIMEOUT_MS)

  it('creates a conference from the menus and chats in it while a member is offline; the member gets it at login', async () => {
    const net = await startNetwork()
    const bob = await startFriend(net, 'bob', 'Bob Builder')
    const carol = await startFriend(net, 'carol', 'Carol Ann')
    const tui = await startTui(net)
    await register(tui, 'alice', 'Alice Liddell')

    // both ask alice; she accepts both on the friend requests screen
    bob.send('friend-add alice')
    carol.send('friend-add alice')
    await tui.waitFor(/Friend requests \(2\)/)
    await tui.waitFor(/ Users\n❯ ● bob .*\n {2}● carol /)
    await tui.press('Down', 'Down', 'Enter')
    const accepted: string[] = []
    for (let i = 0; i < 2; i++) { // in the order they arrived
      const name = (await tui.waitFor(/❯ \? (bob|carol) asks to be friends/)).match(/❯ \? (bob|carol) asks/)![1]!
      await tui.press('Enter')
      await tui.waitFor(/❯ Accept/)
      await tui.press('Enter')
      await tui.waitFor(new RegExp(`✔ You and ${name} are friends now`))
      accepted.push(name)
    }
    expect(accepted.sort()).toEqual(['bob', 'carol'])
    await tui.waitFor(/No friend requests\n❯ Send a friend request…\n {2}Back/)
    await tui.press('Down', 'Enter')
    await bob.waitForLine(/^\[friends\] alice accepted: you are now friends$/)
    await carol.waitForLine(/^\[friends\] alice accepted: you are now friends$/)
    carol.send('logout')
    await carol.waitForLine(/^\[logout\] Logged out carol$/)

    // Conferences, then create one with both friends
    await tui.waitFor(/○ carol went offline/)
    await tui.waitFor(/❯ Friend requests\n {2}Conferences/)
    await tui.press('Down', 'Enter')
    await tui.waitFor(/No conferences yet\n❯ Create a conference…/)
    await tui.press('Enter')
    await tui.waitFor(/Conference name/)
    await tui.type('Weekend trip')
    await tui.press('Enter')
    await tui.waitFor(/Invite which friends\?[\s\S]*● bob[\s\S]*○ carol/)
    await tui.press('a') // all of them
    await tui.press('Enter')
    const created = await tui.waitFor(/✔ Created conference (conf-[0-9a-f]+) \(Weekend trip\) with participants: alice, bob, carol/)
    const id = created.match(/Created conference (conf-[0-9a-f]+)/)![1]!
    await bob.waitForLine(new RegExp(`^\\[conf\\] alice invited you to conference ${id} \\(Weekend trip\\)$`))

    // its chat: carol is offline, bob answers while alice types
    await tui.waitFor(/Conferences\n {2}# Weekend trip .*\n❯ Create a conference…/)
    await tui.press('Up', 'Enter')
    await tui.waitFor(/❯ Open the chat/)
    await tui.press('Enter')
    await tui.waitFor(new RegExp(`── # Weekend trip \\(${id}\\) · 3 members, 2 online ──[\\s\\S]*offline: carol: they get what you send at their next login\\.[\\s\\S]*you ›`))
    await tui.type('who brings the tent?')
    await tui.press('Enter')
    await bob.waitForLine(new RegExp(`^\\[CONF ${id} / from alice\\] \\(\\d\\d:\\d\\d:\\d\\d\\) who brings the tent\\?$`))
    await tui.waitFor(/\] you: who brings the tent\? · in their mailbox\n\s*↳ delivered to bob; left for carol \(offline\)/)
    await tui.type('I can bring the st')
    await tui.waitFor(/you › I can bring the st$/)
    bob.send(`conf-send ${id} I have one, and a stove`)
    await tui.waitFor(/\] bob: I have one, and a stove\nyou › I can bring the st$/)
    await tui.type('ove')
    await tui.press('Enter')
    await bob.waitForLine(new RegExp(`^\\[CONF ${id} / from alice\\] \\(\\d\\d:\\d\\d:\\d\\d\\) I can bring the stove$`))

    // back out and quit
    await tui.type('/q')
    await tui.press('Enter')
    await tui.waitFor(/Conferences\n❯ # Weekend trip/)
    await tui.press('Down', 'Down', 'Enter')
    await tui.waitFor(/pick a user to chat with\n/)
    await tui.press('q')
    await expectCleanExit(tui)

    // carol logs in and finds the conference's messages waiting, in order
    carol.send('login carol')
    carol.send('kettle harbour of carol')
    await carol.waitForLine(/^\[login\] Logged in as carol/)
    await carol.waitForLine(new RegExp(`^ {2}\\[\\d\\d:\\d\\d:\\d\\d\\] \\[CONF ${id} / from alice\\] who brings the tent\\?$`))
    await carol.waitForLine(new RegExp(`^ {2}\\[\\d\\d:\\d\\d:\\d\\d\\] \\[CONF ${id} / from bob\\] I have one, and a stove$`))
    await carol.waitForLine(new RegExp(`^ {2}\\[\\d\\d:\\d\\d:\\d\\d\\] \\[CONF ${id} / from alice\\] I can bring the stove$`))
    for (const p of [bob, carol]) expect(p.stderr, p.transcript()).toEqual([])
  }, TEST_TIMEOUT_MS)
  it('two users in two terminals: the list follows the network, a message goes delivered then read, the bell and Activity, Tab, scrollback to message 1 of 200, search', async () => {
    const net = await startNetwork()
    const carol = await startFriend(net, 'carol', 'Carol Ann')
    const bobTui = await startTui(net)
    await register(bobTui, 'bob', 'Bob Builder')
    const tui = await startTui(net, { width: 80, height: 24 })
    await register(tui, 'alice', 'Alice Liddell')
    // bob's list shows alice while he is on the menu: nobody pressed anything there
    await bobTui.waitFor(/ Users\n❯ ● alice +Alice Liddell +online/)
    await capture(bobTui, 'menu')

    // bob and carol ask alice; she accepts both on her Friend requests screen
    await askFirstUser(bobTui, 'alice', 'Alice Liddell')
    carol.send('friend-add alice')
    await carol.waitForLine(/^\[friends\] Friend request sent to alice/)
    await tui.waitFor(/Friend requests \(2\)/)
    await tui.waitFor(/ Users\n❯ ● bob .*\n {2}● carol /)
    await tui.press('Down', 'Down', 'Enter')
    for (let i = 0; i < 2; i++) {
      const name = (await tui.waitFor(/❯ \? (bob|carol) asks to be friends/)).match(/❯ \? (bob|carol) asks/)![1]!
      await tui.press('Enter')
      await tui.waitFor(/❯ Accept/)
      await tui.press('Enter')
      await tui.waitFor(new RegExp(`✔ You and ${name} are friends now`))
    }
    await tui.waitFor(/No friend requests\n❯ Send a friend request…\n {2}Back/)
    await tui.press('Down', 'Enter')
    await tui.waitFor(/ Friends\n {2}● bob .*\n {2}● carol [\s\S]*❯ Friend requests\n/)

    // alice opens bob's chat; Tab completes a command
    await tui.press('Up', 'Up', 'Enter')
    await tui.waitFor(/── Chat with bob \(Bob Builder\) · online ──[\s\S]*you ›/)
    await tui.type('/sea')
    await tui.press('Tab')
    await tui.waitFor(/you › \/search$/)
    await tui.press('C-u') // readline: the line is emptied
    await tui.type('hello bob')
    await tui.press('Enter')
    await tui.waitFor(/\] you: hello bob · delivered\n/)
    // bob opens the chat (his cursor is still on alice): alice's line changes to read
    await bobTui.waitFor(/ Friends\n❯ ● alice/)
    await bobTui.press('Enter')
    await bobTui.waitFor(/\] alice: hello bob\n/)
    const read = await tui.waitFor(/\] you: hello bob · read\n/)
    expect(read.match(/you: hello bob/g)).toHaveLength(1)
    await capture(tui, 'chat-read')

    // carol writes while alice is in bob's chat: the bell rings, a notice names her
    expect(await tui.bellFlag()).toBe(false)
    for (let i = 1; i <= 200; i++) carol.send(`msg alice line ${String(i).padStart(3, '0')}`)
    await carol.waitForLines(/^\[msg\] to alice: delivered$/, 200)
    await tui.waitFor(/✉ carol: line 200\n/)
    expect(await tui.bellFlag()).toBe(true)

    // back on the list, Activity counts them and a opens carol's chat
    await tui.type('/q')
    await tui.press('Enter')
    await tui.waitFor(/Activity {2}\(a\) \(200 new\)/)
    await capture(tui, 'menu-activity')
    await tui.press('a')
    // 24 rows: the title has scrolled off the top, the 20 newest are there, all new
    await tui.waitFor(/… 180 earlier messages \(PgUp or \/history scrolls back\)\n── 200 new ──\n\[\d\d:\d\d:\d\d\] carol: line 181\n[\s\S]*carol: line 200\n[\s\S]*you ›/)
    expect(await tui.everything()).toMatch(/── Chat with carol \(Carol Ann\) · online ──\n… 180 earlier messages/)
    await capture(tui, 'activity-chat')
    // scrolled back a page (21 rows of 24) at a time, to message 1
    for (let i = 0; i < 10; i++) await tui.press('PPage')
    const first = await tui.waitFor(/── messages 1-21 of 200 · 179 below · PgUp\/PgDn scroll ──/)
    expect(first).toMatch(/\] carol: line 001\n/)
    await capture(tui, 'scrolled-back')
    await tui.press('NPage')
    await tui.waitFor(/── messages 22-42 of 200/)
    // search
    await tui.type('/search line 150')
    await tui.press('Enter')
    await tui.waitFor(/── 1 message with "line 150" ──\n\[\d\d:\d\d:\d\d\] carol: line 150\n/)
    await capture(tui, 'search')
    await tui.type('/q')
    await tui.press('Enter')
    await tui.waitFor(/pick a user to chat with\n/)
    await tui.press('q')
    await expectCleanExit(tui)
    expect(carol.stderr, carol.transcript()).toEqual([])
  }, 300_000)
})
