/**
 * End-to-end: the real `supernode` and `node` programs as processes on loopback, each
 * with its own temp CONF_CHAT_HOME and free ports (issue 2).
 */
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, it, expect, beforeAll, afterEach, inject } from 'vitest'
import { Programs, type Program } from './helpers/programs.js'

const TEST_TIMEOUT_MS = 180_000
const ADDR_LINE = /^listening on (\/ip4\/127\.0\.0\.1\/tcp\/(\d+)\/p2p\/(\S+))$/

let programs: Programs

beforeAll(() => {
  const buildError = inject('buildError')
  if (buildError !== '') throw new Error(buildError)
})

afterEach(async () => {
  await programs?.cleanup()
})

interface StartedSupernode { program: Program, peerId: string, addr: string }

async function startSupernode (home: string, port: number, args: string[] = []): Promise<StartedSupernode> {
  const program = programs.supernode({ home, args, env: { CONF_CHAT_PORT: String(port) } })
  const peerId = (await program.waitForLine(/^supernode peer id: (\S+)$/))[1]!
  const addr = (await program.waitForLine(ADDR_LINE))[1]!
  await program.waitForLine(/^address file: /)
  return { program, peerId, addr }
}

/** Stopping with SIGTERM ends with exit code 0 and nothing on stderr (no stack trace). */
async function expectCleanStop (program: Program, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  program.kill(signal)
  const exit = await program.waitForExit()
  expect(exit, program.transcript()).toEqual({ code: 0, signal: null })
  expect(program.stderr, program.transcript()).toEqual([])
}

/** One line on stderr, exit code 1, no stack trace. */
async function expectOneLineFailure (program: Program, re: RegExp): Promise<void> {
  const exit = await program.waitForExit()
  expect(exit, program.transcript()).toEqual({ code: 1, signal: null })
  const lines = program.stderr.filter(l => l.trim() !== '')
  expect(lines, program.transcript()).toHaveLength(1)
  expect(lines[0]).toMatch(/^error: /)
  expect(lines[0]).toMatch(re)
}

describe('the supernode and node programs', () => {
  it('two nodes with no flags find the supernode, answer commands, and stop on SIGTERM or end of input', async () => {
    programs = new Programs()
    const home = await programs.home()
    const supernode = await startSupernode(home, await programs.freePort())
    const info = JSON.parse(await readFile(join(home, 'supernode.json'), 'utf8'))
    expect(info.peerId).toBe(supernode.peerId)
    expect(info.multiaddrs).toContain(supernode.addr)

    // only CONF_CHAT_HOME: the node reads <home>/supernode.json (and keeps a status file)
    const aliceStatus = join(home, 'alice.status')
    const alice = programs.node({ home, env: { CONF_CHAT_STATUS_FILE: aliceStatus } })
    const aliceId = (await alice.waitForLine(/^peer id: (\S+)$/))[1]!
    const aliceAddr = (await alice.waitForLine(ADDR_LINE))
    expect(aliceAddr[3]).toBe(aliceId)
    const aliceDir = (await alice.waitForLine(/^data directory: (.+)$/))[1]!
    expect(aliceDir).toBe(join(home, 'peers', 'peer-1'))
    expect((await alice.waitForLine(/^joined the network via (\S+)$/))[1]).toBe(supernode.addr)
    await expect.poll(async () => await readFile(aliceStatus, 'utf8').catch(() => ''), { timeout: 10_000 }).toBe(`joined ${aliceId} ${supernode.addr}\n`)

    // a second node on the same machine picks the next free data dir, so another identity
    const bob = programs.node({ home })
    const bobId = (await bob.waitForLine(/^peer id: (\S+)$/))[1]!
    const bobDir = (await bob.waitForLine(/^data directory: (.+)$/))[1]!
    expect(bobDir).toBe(join(home, 'peers', 'peer-2'))
    expect(bobId).not.toBe(aliceId)
    await bob.waitForLine(/^joined the network via /)

    alice.send('whoami')
    expect((await alice.waitForLine(/^peer id: (\S+)$/))[1]).toBe(aliceId)
    expect((await alice.waitForLine(/^address: (\S+)$/))[1]).toBe(aliceAddr[1])
    expect((await alice.waitForLine(/^data directory: (.+)$/))[1]).toBe(aliceDir)
    expect((await alice.waitForLine(/^network: (.+)$/))[1]).toBe(`joined via ${supernode.addr}`)

    alice.send('peers')
    await alice.waitForLine(/^\d+ connected peers?$/)
    const supernodeLine = await alice.waitForLine(new RegExp(`^${supernode.peerId} (.+)$`))
    expect(supernodeLine[1]!.split(' ')).toContain(supernode.addr.replace(`/p2p/${supernode.peerId}`, ''))

    // mistakes are one [error] line, and the program goes on
    alice.send('frobnicate now')
    await alice.waitForLine(/^\[error\] unknown command "frobnicate"/)
    alice.send('peers too many')
    await alice.waitForLine(/^\[error\] usage: peers$/)
    alice.send('whoami')
    expect((await alice.waitForLine(/^peer id: (\S+)$/))[1]).toBe(aliceId)
    expect(alice.running).toBe(true)

    // a data dir held by a running node is refused in one line
    const intruder = programs.node({ home, args: ['--data', aliceDir] })
    await expectOneLineFailure(intruder, /in use/)

    await expectCleanStop(alice, 'SIGTERM')
    await expect(readFile(aliceStatus, 'utf8')).rejects.toMatchObject({ code: 'ENOENT' }) // gone with the program
    bob.endInput() // end of input = quit
    expect(await bob.waitForExit(), bob.transcript()).toEqual({ code: 0, signal: null })
    expect(bob.stderr).toEqual([])

    // restarted with no flags, the first node gets peer-1 and its identity back; `quit` leaves
    const again = programs.node({ home })
    expect((await again.waitForLine(/^peer id: (\S+)$/))[1]).toBe(aliceId)
    await again.waitForLine(/^joined the network via /)
    again.send('quit')
    expect(await again.waitForExit(), again.transcript()).toEqual({ code: 0, signal: null })

    await expectCleanStop(supernode.program, 'SIGTERM')
  }, TEST_TIMEOUT_MS)

  it('the supernode restarted with the same data dir keeps its peer id and multiaddr', async () => {
    programs = new Programs()
    const home = await programs.home()
    const port = await programs.freePort()
    const first = await startSupernode(home, port)
    expect(first.addr).toBe(`/ip4/127.0.0.1/tcp/${port}/p2p/${first.peerId}`)
    await expectCleanStop(first.program, 'SIGINT')

    const second = await startSupernode(home, port)
    expect(second.peerId).toBe(first.peerId)
    expect(second.addr).toBe(first.addr)
    const info = JSON.parse(await readFile(join(home, 'supernode.json'), 'utf8'))
    expect(info.multiaddrs).toEqual([first.addr])
    expect(info.pid).toBe(second.program.pid)
    await expectCleanStop(second.program)
  }, TEST_TIMEOUT_MS)

  it('a malformed bootstrap multiaddr is one line on stderr and exit code 1', async () => {
    programs = new Programs()
    const home = await programs.home()
    const flag = programs.node({ home, args: ['--bootstrap', '/ip4/300.1.2.3/tcp/4300'] })
    await expectOneLineFailure(flag, /malformed bootstrap multiaddr "\/ip4\/300\.1\.2\.3\/tcp\/4300"/)
    const env = programs.node({ home, env: { CONF_CHAT_BOOTSTRAP: '/ip4/127.0.0.1/tcp/4300, not-a-multiaddr' } })
    await expectOneLineFailure(env, /malformed bootstrap multiaddr "not-a-multiaddr"/)
    const supernode = programs.supernode({ home, args: ['--port', String(await programs.freePort()), '--bootstrap', '/dns4/x/tcp/abc'] })
    await expectOneLineFailure(supernode, /malformed bootstrap multiaddr/)
    expect(flag.stdout).toEqual([])
  }, TEST_TIMEOUT_MS)

  it('an unexpected error is one line and exit code 1, with a stack trace only at --log-level debug', async () => {
    programs = new Programs()
    const home = await programs.home()
    const notADir = join(home, 'a-file')
    await writeFile(notADir, 'not a directory')
    const args = ['--bootstrap', `/ip4/127.0.0.1/tcp/${await programs.freePort()}`]
    const plain = programs.node({ home: notADir, args })
    await expectOneLineFailure(plain, /^error: unexpected error: .*ENOTDIR/)
    const debug = programs.node({ home: notADir, args: [...args, '--log-level', 'debug'] })
    expect(await debug.waitForExit(), debug.transcript()).toEqual({ code: 1, signal: null })
    expect(debug.stderr.some(l => /^error: unexpected error: .*ENOTDIR/.test(l)), debug.transcript()).toBe(true)
    expect(debug.stderr.some(l => /^\s+at /.test(l)), debug.transcript()).toBe(true)
  }, TEST_TIMEOUT_MS)

  it('a port that is in use is one line on stderr and exit code 1', async () => {
    programs = new Programs()
    const home = await programs.home()
    const port = await programs.busyPort()
    const supernode = programs.supernode({ home, args: ['--port', String(port)] })
    await expectOneLineFailure(supernode, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}: the port is in use`))
    const node = programs.node({ home, args: ['--port', String(port), '--bootstrap', `/ip4/127.0.0.1/tcp/${await programs.freePort()}`] })
    await expectOneLineFailure(node, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}: the port is in use`))
  }, TEST_TIMEOUT_MS)

  it('a node that cannot reach its bootstrap peer says so, keeps running, and joins once the supernode is up', async () => {
    programs = new Programs()
    const supernodeHome = await programs.home()
    const port = await programs.freePort()
    // learn the supernode's address (its identity is kept), then take it down
    const first = await startSupernode(supernodeHome, port)
    await expectCleanStop(first.program)

    const node = programs.node({ home: await programs.home(), args: ['--bootstrap', first.addr] })
    await node.waitForLine(/^cannot reach any bootstrap peer \(tried 1\); retrying in \d+s$/)
    await node.waitForLine(/^cannot reach any bootstrap peer \(tried 1\); retrying in \d+s$/)
    node.send('whoami')
    await node.waitForLine(/^network: not joined yet/)
    expect(node.running).toBe(true)

    const second = await startSupernode(supernodeHome, port)
    expect(second.addr).toBe(first.addr)
    expect((await node.waitForLine(/^joined the network via (\S+)$/))[1]).toBe(first.addr)
    node.send('peers')
    await node.waitForLine(new RegExp(`^${first.peerId} `))
    await expectCleanStop(node)
    await expectCleanStop(second.program)
  }, TEST_TIMEOUT_MS)
})
