/**
 * End-to-end (issue 4): a supernode and three `node` programs in command mode: friend-add,
 * friend-accept, a live message, logout, an offline message, login on another peer.
 */
import { describe, it, expect, beforeAll, afterEach, inject } from 'vitest'
import { Programs, type Program } from './helpers/programs.js'
import { befriend, registerAs } from './helpers/command-flows.js'

let programs: Programs

beforeAll(() => {
  const buildError = inject('buildError')
  if (buildError !== '') throw new Error(buildError)
})

afterEach(async () => { await programs?.cleanup() })

const ENV = { CONF_CHAT_BCRYPT_COST: '4', CONF_CHAT_KDF_MEMORY: '8', CONF_CHAT_PRESENCE_TTL: '30' }

describe('friends and direct messages through the node program', () => {
  it('friends, a live message, an offline message read at login on another peer, history', async () => {
    programs = new Programs()
    const home = await programs.home()
    const supernode = programs.supernode({ home, env: { CONF_CHAT_PORT: String(await programs.freePort()) } })
    await supernode.waitForLine(/^address file: /)
    const [a, b, c] = [programs.node({ home, env: ENV }), programs.node({ home, env: ENV }), programs.node({ home, env: ENV })] as [Program, Program, Program]
    for (const p of [a, b, c]) await p.waitForLine(/^joined the network via /)

    for (const [p, name] of [[a, 'alice'], [b, 'bob']] as const) {
      p.send(`register ${name}`)
      p.send(`${name}'s violet kettle`)
      p.send(`${name[0]!.toUpperCase()}${name.slice(1)}`)
      await p.waitForLine(new RegExp(`^\\[register\\] Registered ${name} `))
    }
    a.send('msg bob hello before friendship')
    await a.waitForLine(/^\[error\] not a friend: bob$/)

    a.send('friend-add bob from the e2e test')
    await a.waitForLine(/^\[friends\] Friend request sent to bob \(delivered\)$/)
    await b.waitForLine(/^\[friends\] alice wants to be your friend: from the e2e test/)
    b.send('friend-accept alice')
    await b.waitForLine(/^\[friends\] You and alice are now friends/)
    await a.waitForLine(/^\[friends\] bob accepted: you are now friends$/)

    a.send('msg bob hi bob, live')
    await a.waitForLine(/^\[msg\] to bob: delivered$/)
    await b.waitForLine(/^\[DM from alice\] \(\d\d:\d\d:\d\d\) hi bob, live$/)
    b.send('msg alice hi alice')
    await a.waitForLine(/^\[DM from bob\] \(\d\d:\d\d:\d\d\) hi alice$/)

    b.send('logout')
    await b.waitForLine(/^\[logout\] Logged out bob$/)
    await a.waitForLine(/^\[presence\] bob is offline$/)
    a.send('msg bob first while you were away')
    await a.waitForLine(/^\[msg\] to bob: queued for offline delivery$/)
    a.send('msg bob second while you were away')
    await a.waitForLine(/^\[msg\] to bob: queued for offline delivery$/)

    // bob logs in on the third peer
    c.send('login bob')
    c.send("bob's violet kettle")
    await c.waitForLine(/^\[login\] Logged in as bob/)
    await c.waitForLine(/^\[offline\] You have 2 message\(s\):$/)
    await c.waitForLine(/^ {2}\[\d\d:\d\d:\d\d\] \[DM from alice\] first while you were away$/)
    await c.waitForLine(/^ {2}\[\d\d:\d\d:\d\d\] \[DM from alice\] second while you were away$/)
    await a.waitForLine(/^\[presence\] bob is online$/)
    // bob's peer read them from the mailbox: alice is told each reached him
    await a.waitForLines(/^\[msg\] to bob: delivered$/, 3) // the first, live, then the two from the mailbox

    c.send('history alice')
    await c.waitForLine(/^\[history\] 4 message\(s\) with alice$/)
    await c.waitForLine(/^ {2}\[\d\d:\d\d:\d\d\] alice: hi bob, live$/)
    await c.waitForLine(/^ {2}\[\d\d:\d\d:\d\d\] bob: hi alice$/)
    // reading the conversation tells alice (the two shown on this peer)
    await a.waitForLines(/^\[msg\] to bob: read$/, 2)
    a.send('history bob')
    await a.waitForLine(/^ {2}\[\d\d:\d\d:\d\d\] alice: hi bob, live \(delivered\)$/)
    await a.waitForLine(/^ {2}\[\d\d:\d\d:\d\d\] alice: second while you were away \(read\)$/)
    c.send('friends')
    await c.waitForLine(/^ {2}alice \(online\)$/)
    // shown once: nothing more arrives from the mailbox on the next check
    expect(c.stdout.filter(l => l.includes('[DM from alice] first while you were away'))).toHaveLength(1)
    for (const p of [a, b, c]) expect(p.stderr, p.transcript()).toEqual([])
  }, 240_000)

  it('a peer that stood still (SIGSTOP) shows what a friend sent meanwhile soon after it goes on, not at its next mailbox poll', async () => {
    programs = new Programs()
    const home = await programs.home()
    const supernode = programs.supernode({ home, env: { CONF_CHAT_PORT: String(await programs.freePort()) } })
    await supernode.waitForLine(/^address file: /)
    const a = programs.node({ home, env: ENV })
    const b = programs.node({ home, env: { ...ENV, CONF_CHAT_LOG: 'debug' } })
    for (const p of [a, b]) await p.waitForLine(/^joined the network via /)
    await registerAs(a, 'alice', 'alice\'s violet kettle')
    await registerAs(b, 'bob', 'bob\'s violet kettle')
    await befriend(a, 'alice', b, 'bob')
    // bob's reads of the mailbox at login and 30 s after it are done: the next one is the
    // periodic one, 5 minutes on
    await b.waitForStderr(/read the mailbox: /, 2)

    process.kill(b.pid, 'SIGSTOP')
    try {
      // longer than the 5 s ack limit: alice's peer gives up on the live send
      a.send('msg bob while you stood still')
      await a.waitForLine(/^\[msg\] to bob: queued for offline delivery$/)
    } finally {
      process.kill(b.pid, 'SIGCONT')
    }
    await b.waitForLine(/\[DM from alice\] .*while you stood still$/, 40_000)
    await b.waitForStderr(/stood still for \d+ ms/)
  }, 240_000)
})
