/**
 * End-to-end (issue 3): the real supernode and node programs as processes, driven in
 * command mode: register, logout, login on another peer, whoami, users; a killed peer's
 * user goes offline once its presence expires.
 */
import { describe, it, expect, beforeAll, afterEach, inject } from 'vitest'
import { join } from 'node:path'
import { Programs, WAIT_MS, type Program } from './helpers/programs.js'
import { befriend, logInAs, registerAs } from './helpers/command-flows.js'

let programs: Programs

beforeAll(() => {
  const buildError = inject('buildError')
  if (buildError !== '') throw new Error(buildError)
})

afterEach(async () => { await programs?.cleanup() })

/** How long `docker stop` waits for a container's program to end before it kills it. */
const DOCKER_STOP_GRACE_MS = 10_000

const FAST_ENV = { CONF_CHAT_BCRYPT_COST: '4', CONF_CHAT_KDF_MEMORY: '8', CONF_CHAT_PRESENCE_TTL: '3' }

let supernode: Program
/** The network's CONF_CHAT_HOME and the supernode's port. */
let home: string
let supernodePort: number

async function startNetwork (peers: number, env: Record<string, string> = FAST_ENV): Promise<Program[]> {
  programs = new Programs()
  home = await programs.home()
  supernodePort = await programs.freePort()
  supernode = programs.supernode({ home, env: { CONF_CHAT_PORT: String(supernodePort) } })
  await supernode.waitForLine(/^address file: /)
  const nodes: Program[] = []
  for (let i = 0; i < peers; i++) {
    const node = programs.node({ home, env })
    await node.waitForLine(/^joined the network via /)
    nodes.push(node)
  }
  return nodes
}

describe('accounts through the node program', () => {
  it('registers on one peer, logs out, logs in on another, and shows who is who', async () => {
    const [a, b] = await startNetwork(2) as [Program, Program]
    a.send('register')
    a.send('alice')
    a.send('kettle harbour one')
    a.send('Alice Liddell')
    await a.waitForLine(/^\[register\] Registered alice \(Alice Liddell\); logged in$/)
    a.send('whoami')
    await a.waitForLine(/^user: alice \(Alice Liddell\)$/)
    a.send('logout')
    await a.waitForLine(/^\[logout\] Logged out alice$/)

    b.send('login alice')
    b.send('wrong password')
    await b.waitForLine(/^\[error\] wrong password$/)
    b.send('login nobody')
    b.send('kettle harbour one')
    await b.waitForLine(/^\[error\] unknown user: nobody$/)
    b.send('register')
    b.send('alice')
    b.send('kettle harbour two')
    b.send('Impostor')
    await b.waitForLine(/^\[error\] name taken: alice$/)
    b.send('login alice')
    b.send('kettle harbour one')
    await b.waitForLine(/^\[login\] Logged in as alice \(Alice Liddell\)$/, 60_000)
    b.send('whoami')
    await b.waitForLine(/^user: alice \(Alice Liddell\)$/)
    const peerId = (await b.waitForLine(/^peer id: (\S+)$/))[1]
    expect(peerId).toMatch(/^12D3Koo/)

    b.send('users')
    await b.waitForLine(/^\[users\] 1 user$/)
    await b.waitForLine(/^ {2}online +alice {2}Alice Liddell$/)
    expect(b.stderr, b.transcript()).toEqual([])
  }, 180_000)

  it('shows a killed peer\'s user offline once its presence expires, and a second login takes over', async () => {
    const [a, b, c] = await startNetwork(3) as [Program, Program, Program]
    a.send('register bob')
    a.send('kettle harbour of bob')
    a.send('Bob Builder')
    await a.waitForLine(/^\[register\] Registered bob/)
    c.send('users bob')
    await c.waitForLine(/^ {2}online +bob {2}Bob Builder$/)

    // a second login elsewhere: the first peer is told and logs out
    b.send('login bob')
    b.send('kettle harbour of bob')
    await b.waitForLine(/^\[login\] Logged in as bob/)
    await a.waitForLine(/^logged out: your account logged in on another peer$/)

    b.kill('SIGKILL') // no logout, no offline record
    await b.exited
    let offline = false
    for (let i = 0; i < 20 && !offline; i++) {
      // a poll: the presence expires by itself (TTL 3 s) and no line tells when
      await new Promise(resolve => setTimeout(resolve, 1_000))
      c.send('users bob')
      const line = await c.waitForLine(/^ {2}(online|offline) +bob /)
      offline = line[1] === 'offline'
    }
    expect(offline, c.transcript()).toBe(true)
  }, 180_000)

  it('a logged-in peer told to stop while no other peer answers cuts its logout short and exits 0, well within a container\'s 10 s', async () => {
    const [a, b] = await startNetwork(2) as [Program, Program]
    a.send('register dave')
    a.send('kettle harbour of dave')
    a.send('Dave Lister')
    await a.waitForLine(/^\[register\] Registered dave/)
    // every other peer stands still with its connections open: the logout's writes get no answer
    supernode.kill('SIGSTOP')
    b.kill('SIGSTOP')
    try {
      const since = Date.now()
      a.kill('SIGTERM')
      // as `docker stop` does: 10 s to end, then SIGKILL (without the cut, the presence
      // write waits for its query's 15 s, and the program gives up with exit 1)
      expect(await a.waitForExit(DOCKER_STOP_GRACE_MS), a.transcript()).toEqual({ code: 0, signal: null })
      console.log(`[stop] SIGTERM to exit, logged in, no other peer answering: ${Date.now() - since} ms`)
      expect(a.stderr, a.transcript()).toEqual([])
    } finally {
      supernode.kill('SIGCONT')
      b.kill('SIGCONT')
    }
  }, 180_000)

  it('a friend removed while the network was gone, just before a stop, stays removed at the next login on that peer', async () => {
    const [b, c] = await startNetwork(2) as [Program, Program]
    // alice's peer keeps its data directory across its restart
    const aliceEnv = { ...FAST_ENV, CONF_CHAT_DATA: join(home, 'alice-peer') }
    let a = programs.node({ home, env: aliceEnv })
    await a.waitForLine(/^joined the network via /)
    await registerAs(a, 'alice', 'kettle harbour of alice')
    await registerAs(b, 'bob', 'kettle harbour of bob')
    await befriend(a, 'alice', b, 'bob')
    // the friendship is in the network: a logout writes the state, and a login reads it
    a.send('logout')
    await a.waitForLine(/^\[logout\] Logged out alice$/)
    await logInAs(a, 'alice', 'kettle harbour of alice')
    a.send('friends')
    await a.waitForLine(/^\[friends\] 1 friend$/)

    // every other peer gone: the removal's write reaches no other peer, only this peer's
    // own record store (a put stores the writer's copy first), where the next login here reads it
    for (const p of [supernode, b, c]) p.kill('SIGKILL')
    await Promise.all([supernode.exited, b.exited, c.exited])
    a.send('friend-remove bob')
    await a.waitForLine(/^\[friends\] Removed bob from your friends$/)
    a.kill('SIGTERM')
    expect(await a.waitForExit(WAIT_MS), a.transcript()).toEqual({ code: 0, signal: null })

    // the network back (the same peers, from their data directories), and alice's peer
    supernode = programs.supernode({ home, env: { CONF_CHAT_PORT: String(supernodePort) } })
    await supernode.waitForLine(/^address file: /)
    for (let i = 0; i < 2; i++) await programs.node({ home, env: FAST_ENV }).waitForLine(/^joined the network via /)
    a = programs.node({ home, env: aliceEnv })
    await a.waitForLine(/^joined the network via /)
    await logInAs(a, 'alice', 'kettle harbour of alice')
    a.send('friends')
    await a.waitForLine(/^\[friends\] 0 friends$/)
    // and the network has it now (that login's read gave the newer list back to the holders): read on another peer
    a.send('logout')
    await a.waitForLine(/^\[logout\] Logged out alice$/)
    const other = programs.node({ home, env: FAST_ENV })
    await other.waitForLine(/^joined the network via /)
    await logInAs(other, 'alice', 'kettle harbour of alice')
    other.send('friends')
    await other.waitForLine(/^\[friends\] 0 friends$/)
    expect(a.stderr, a.transcript()).toEqual([])
  }, 240_000)

  it('a peer that stood still while its account logged in elsewhere logs out once it goes on, well before its next presence refresh', async () => {
    // the default presence lifetime: the next refresh of the first login is 10 minutes on;
    // four peers: with one stopped, the others can still tell that carol has no private state yet
    const [a, b] = await startNetwork(4, { CONF_CHAT_BCRYPT_COST: '4', CONF_CHAT_KDF_MEMORY: '8' }) as [Program, Program]
    a.send('register carol')
    a.send('kettle harbour of carol')
    a.send('Carol Danvers')
    await a.waitForLine(/^\[register\] Registered carol/)
    // a laptop asleep: the new login's notice finds nobody answering
    a.kill('SIGSTOP')
    try {
      b.send('login carol')
      b.send('kettle harbour of carol')
      await b.waitForLine(/^\[login\] Logged in as carol/, 60_000)
    } finally {
      a.kill('SIGCONT')
    }
    // it learns at once: from the notice, if that still reaches it, else by checking its
    // session as soon as it sees that it stood still (afterStall)
    await a.waitForLine(/^logged out: your account logged in on another peer$/, 60_000)
    a.send('whoami')
    await a.waitForLine(/^user: not logged in$/)
  }, 180_000)
})
