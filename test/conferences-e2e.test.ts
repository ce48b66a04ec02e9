/**
 * End-to-end (issue 5): a supernode and four `node` programs in command mode: a
 * conference created with two friends (one offline), live messages, the offline member's
 * invite and messages at login on another peer, conf-list there, a member leaving, and
 * nothing reaching the leaver afterwards.
 */
import { describe, it, expect, beforeAll, afterEach, inject } from 'vitest'
import { Programs, type Program } from './helpers/programs.js'

let programs: Programs

beforeAll(() => {
  const buildError = inject('buildError')
  if (buildError !== '') throw new Error(buildError)
})

afterEach(async () => { await programs?.cleanup() })

const ENV = { CONF_CHAT_BCRYPT_COST: '4', CONF_CHAT_KDF_MEMORY: '8', CONF_CHAT_PRESENCE_TTL: '30' }
const TIME = '\\(\\d\\d:\\d\\d:\\d\\d\\)'

describe('conferences through the node program', () => {
  it('create, live and offline messages, login on another peer, conf-list, leave', async () => {
    programs = new Programs()
    const home = await programs.home()
    const supernode = programs.supernode({ home, env: { CONF_CHAT_PORT: String(await programs.freePort()) } })
    await supernode.waitForLine(/^address file: /)
    const [a, b, c, d] = [0, 1, 2, 3].map(() => programs.node({ home, env: ENV })) as [Program, Program, Program, Program]
    for (const p of [a, b, c, d]) await p.waitForLine(/^joined the network via /)

    for (const [p, name] of [[a, 'alice'], [b, 'bob'], [c, 'carol']] as const) {
      p.send(`register ${name}`)
      p.send(`${name}'s violet kettle`)
      p.send(name.toUpperCase())
      await p.waitForLine(new RegExp(`^\\[register\\] Registered ${name} `))
    }
    for (const [p, name] of [[b, 'bob'], [c, 'carol']] as const) {
      a.send(`friend-add ${name}`)
      await p.waitForLine(/^\[friends\] alice wants to be your friend/)
      p.send('friend-accept alice')
      await a.waitForLine(new RegExp(`^\\[friends\\] ${name} accepted: you are now friends$`))
    }
    a.send('conf-create team bob dave')
    await a.waitForLine(/^\[error\] unknown user: dave$/)
    c.send('logout')
    await c.waitForLine(/^\[logout\] Logged out carol$/)

    a.send('conf-create team bob carol')
    const id = (await a.waitForLine(/^\[conf-create\] Created conference (conf-[0-9a-f]{16}) \(team\) with participants: alice, bob, carol$/))[1]!
    await b.waitForLine(new RegExp(`^\\[conf\\] alice invited you to conference ${id} \\(team\\)$`))

    a.send(`conf-send ${id} hello team`)
    await a.waitForLine(new RegExp(`^\\[conf-send\\] to ${id}: 1 delivered, 1 queued for offline delivery$`))
    await b.waitForLine(new RegExp(`^\\[CONF ${id} / from alice\\] ${TIME} hello team$`))
    b.send(`conf-send ${id.slice(0, 10)} hi from bob`)
    await b.waitForLine(new RegExp(`^\\[conf-send\\] to ${id}: 1 delivered, 1 queued for offline delivery$`))
    await a.waitForLine(new RegExp(`^\\[CONF ${id} / from bob\\] ${TIME} hi from bob$`))

    // carol logs in on the fourth peer: the invite, then both messages, in order
    d.send('login carol')
    d.send("carol's violet kettle")
    await d.waitForLine(new RegExp(`^\\[conf\\] alice invited you to conference ${id} \\(team\\)$`))
    await d.waitForLine(/^\[offline\] You have 2 message\(s\):$/)
    await d.waitForLine(new RegExp(`^ {2}\\[\\d\\d:\\d\\d:\\d\\d\\] \\[CONF ${id} / from alice\\] hello team$`))
    await d.waitForLine(new RegExp(`^ {2}\\[\\d\\d:\\d\\d:\\d\\d\\] \\[CONF ${id} / from bob\\] hi from bob$`))
    // carol's peer tells each sender that its copy reached her (bob is not her friend)
    await a.waitForLines(new RegExp(`^\\[conf-msg\\] in ${id} to carol: delivered$`), 1)
    await b.waitForLines(new RegExp(`^\\[conf-msg\\] in ${id} to carol: delivered$`), 1)
    d.send('conf-list')
    await d.waitForLine(/^\[conf-list\] 1 conference\(s\)$/)
    await d.waitForLine(new RegExp(`^ {2}${id} {2}team {2}owner: alice {2}members: alice, bob, carol {2}online: 3/3$`))

    b.send(`conf-leave ${id}`)
    await b.waitForLine(new RegExp(`^\\[conf-leave\\] Left conference ${id} \\(team\\)$`))
    await a.waitForLine(new RegExp(`^\\[conf\\] bob left conference ${id} \\(team\\)$`))
    await d.waitForLine(new RegExp(`^\\[conf\\] bob left conference ${id} \\(team\\)$`))
    a.send(`conf-send ${id} after bob left`)
    // one envelope: carol's; none was made for bob
    await a.waitForLine(new RegExp(`^\\[conf-send\\] to ${id}: 1 delivered$`))
    await d.waitForLine(new RegExp(`^\\[CONF ${id} / from alice\\] ${TIME} after bob left$`))
    d.send(`conf-members ${id}`)
    await d.waitForLine(new RegExp(`^\\[conf-members\\] 2 member\\(s\\) in ${id} \\(team\\)$`))
    await d.waitForLine(/^ {2}alice \(owner, online\)$/)
    await d.waitForLine(/^ {2}carol \(online\)$/)
    d.send(`conf-history ${id}`)
    await d.waitForLine(new RegExp(`^\\[conf-history\\] 3 message\\(s\\) in ${id} \\(team\\)$`))
    await d.waitForLine(/^ {2}\[\d\d:\d\d:\d\d\] alice: hello team$/)
    await d.waitForLine(/^ {2}\[\d\d:\d\d:\d\d\] bob: hi from bob$/)
    await d.waitForLine(/^ {2}\[\d\d:\d\d:\d\d\] alice: after bob left$/)
    // reading the history tells alice, a member, that carol read her two (bob has left: nothing for him)
    await a.waitForLines(new RegExp(`^\\[conf-msg\\] in ${id} to carol: read$`), 2)
    b.send('conf-list')
    await b.waitForLine(/^\[conf-list\] 0 conference\(s\)$/)
    b.send(`conf-send ${id} am I still here`)
    await b.waitForLine(new RegExp(`^\\[error\\] unknown conference: ${id}$`))

    expect(b.stdout.filter(l => l.includes('after bob left')), b.transcript()).toEqual([])
    expect(d.stdout.filter(l => l.includes('hello team'))).toHaveLength(2) // the offline listing and the history, once each
    for (const p of [a, b, c, d]) expect(p.stderr, p.transcript()).toEqual([])
  }, 240_000)
})
