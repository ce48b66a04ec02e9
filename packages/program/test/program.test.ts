/** What both programs share: the address file, the one-line fatal errors, the flag parsers. */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it, expect, afterEach } from 'vitest'
import { InvalidArgumentError } from 'commander'
import { createFatalBoundary, dataRoot, followPeer, parsePort, parseStorageMiB, readSupernodeAddrs, splitAddrList, StatusFile, supernodeFile, writeSupernodeFile } from '../src/index.js'

describe('home and address file', () => {
  let root: string | undefined
  afterEach(async () => { if (root != null) await rm(root, { recursive: true, force: true }) })

  it('takes CONF_CHAT_HOME, else ~/.conf-chat', () => {
    expect(dataRoot({ CONF_CHAT_HOME: '/srv/chat' })).toBe('/srv/chat')
    expect(dataRoot({ CONF_CHAT_HOME: '' })).toMatch(/\.conf-chat$/)
  })

  it('reads back the addresses the supernode wrote; no file or a broken one gives none', async () => {
    root = await mkdtemp(join(tmpdir(), 'conf-chat-program-'))
    expect(await readSupernodeAddrs(root)).toBeUndefined()
    const addrs = ['/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWQ8ixd8Mm6Gp4kH3SvnC4XgYoGqzUH7xvTEoHz7JcW9bE']
    await writeSupernodeFile(supernodeFile(root), { peerId: '12D3KooWQ8ixd8Mm6Gp4kH3SvnC4XgYoGqzUH7xvTEoHz7JcW9bE', multiaddrs: addrs, pid: 1, startedAt: 'now' })
    expect(JSON.parse(await readFile(join(root, 'supernode.json'), 'utf8')).pid).toBe(1)
    expect(await readSupernodeAddrs(root)).toEqual(addrs)
    await writeFile(supernodeFile(root), '{ half a fi')
    const logged: unknown[][] = []
    expect(await readSupernodeAddrs(root, { log: { error: (...args: unknown[]) => { logged.push(args) } } as any })).toBeUndefined()
    expect(logged).toHaveLength(1)
  })
})

describe('fatal boundary', () => {
  const fatal = createFatalBoundary({ userErrors: ['ListenError', 'DataDirInUseError'] })
  const named = (name: string, message: string): Error => Object.assign(new Error(message), { name })

  it('prints a user mistake as its first line, anything else as unexpected', () => {
    expect(fatal.fatalMessage(named('DataDirInUseError', 'data directory /x is in use by another peer (pid 7)\nmore'))).toBe('data directory /x is in use by another peer (pid 7)')
    expect(fatal.fatalMessage(new TypeError('x is not a function'))).toBe('unexpected error: x is not a function')
    // another program's user error is a bug here
    expect(fatal.fatalMessage(named('ConfigError', 'bad flag'))).toBe('unexpected error: bad flag')
  })

  it('says what to do about a port that cannot be listened on', () => {
    const inUse = named('ListenError', 'cannot listen on 127.0.0.1:9000 because the reason is long\nError: listen EADDRINUSE: address already in use')
    expect(fatal.fatalMessage(inUse)).toBe('cannot listen on 127.0.0.1:9000: the port is in use (choose another with --port)')
  })
})

describe('flags', () => {
  it('takes ports from 0 to 65535 and address lists split on commas and spaces', () => {
    expect(parsePort('4001')).toBe(4001)
    expect(() => parsePort('65536')).toThrow(InvalidArgumentError)
    expect(() => parsePort('4001x')).toThrow(InvalidArgumentError)
    expect(splitAddrList('/a, /b  /c', ['/z'])).toEqual(['/z', '/a', '/b', '/c'])
  })

  it('takes a storage budget of whole MiB from 16 to 1 TiB', () => {
    expect(parseStorageMiB('512')).toBe(512)
    for (const bad of ['15', '1048577', '64.5', '-1', 'lots']) expect(() => parseStorageMiB(bad)).toThrow(InvalidArgumentError)
  })
})

describe('status file', () => {
  let dir: string | undefined
  afterEach(async () => { if (dir != null) await rm(dir, { recursive: true, force: true }) })

  it('says where the peer stands as its network events come, and is gone when the program ends', async () => {
    dir = await mkdtemp(join(tmpdir(), 'conf-chat-status-'))
    const path = join(dir, 'sub', 'status')
    const status = new StatusFile(path)
    await status.set('starting')
    expect(await readFile(path, 'utf8')).toBe('starting\n')

    const peer = Object.assign(new EventTarget(), { peerId: { toString: () => '12D3KooWpeer' } })
    followPeer(status, peer)
    peer.dispatchEvent(new CustomEvent('network:joined', { detail: { via: '/dns4/supernode/tcp/4300' } }))
    await status.flushed()
    expect(await readFile(path, 'utf8')).toBe('joined 12D3KooWpeer /dns4/supernode/tcp/4300\n')
    peer.dispatchEvent(new CustomEvent('network:lost', { detail: {} }))
    await status.flushed()
    expect(await readFile(path, 'utf8')).toBe('joining 12D3KooWpeer\n')
    peer.dispatchEvent(new CustomEvent('network:joined', { detail: { via: '/ip4/172.20.0.2/tcp/4301/p2p/12D3KooWother' } }))
    peer.dispatchEvent(new CustomEvent('network:unreachable', { detail: { tried: [], retryInMs: 1000 } }))
    await status.flushed()
    expect(await readFile(path, 'utf8')).toBe('joining 12D3KooWpeer\n') // the last event wins

    await status.remove()
    await expect(readFile(path, 'utf8')).rejects.toMatchObject({ code: 'ENOENT' })
    await status.set('joined', 'late') // after the end: nothing comes back
    await expect(readFile(path, 'utf8')).rejects.toMatchObject({ code: 'ENOENT' })
  })
})
