/**
 * The user directory written by many peers at once: 20 users register at the same moment,
 * each on its own peer PROCESS (a ChatNode in a child process, as on 20 machines), and a
 * peer that registered none of them lists them all; prefix, online-first order, search by
 * a part of the full name, and the loss of the supernode.
 */
import { describe, it, expect, beforeAll, afterAll, inject } from 'vitest'
import { rm } from 'node:fs/promises'
import { createChatNode, type ChatNode, type ChatNodeInit } from '@conf-chat/node'
import { ChatPeer } from '@conf-chat/node/network'
import { eventually, FAST } from './helpers/chat.js'
import { addrOf, tempDir } from './helpers/network.js'
import { ChatWorker } from './helpers/worker.js'

const pw = 'directory violet kettle'
const N = 20
const names = Array.from({ length: N }, (_, i) => `user${String(i).padStart(2, '0')}`)

describe('user directory', () => {
  let supernode: ChatPeer
  const workers: ChatWorker[] = []
  const readers: ChatNode[] = []
  const dirs: string[] = []
  let common: Partial<ChatNodeInit>

  /** An in-process ChatNode that registered nobody: it reads what the others wrote. */
  const startReader = async (via?: string): Promise<ChatNode> => {
    const dataDir = await tempDir()
    dirs.push(dataDir)
    const node = createChatNode({ dataDir, ...common, ...(via != null ? { bootstrap: [via] } : {}) })
    readers.push(node)
    await node.start()
    await node.peer.waitJoined({ signal: AbortSignal.timeout(60_000) })
    return node
  }

  beforeAll(async () => {
    expect(inject('buildError') ?? '', 'the workers run dist/: tsc -b must pass').toBe('')
    const dir = await tempDir()
    dirs.push(dir)
    supernode = new ChatPeer({ dataDir: dir, host: '127.0.0.1', port: 0 })
    await supernode.start()
    // 22 peers share two cores: presence refreshed rarely (logout still publishes offline at
    // once), no mailbox polling
    common = {
      host: '127.0.0.1', port: 0, bootstrap: [addrOf(supernode)], ...FAST,
      presenceTtlMs: 180_000, presenceRefreshMs: 60_000, mailboxPollMs: 0, queryTimeoutMs: 30_000, setRequestTimeoutMs: 30_000
    }
    // start the processes a few at a time (each spends a second of CPU loading modules)
    for (let i = 0; i < N; i += 5) {
      const batch = await Promise.all(names.slice(i, i + 5).map(async () => {
        const dataDir = await tempDir()
        dirs.push(dataDir)
        const w = await ChatWorker.start({ dataDir, ...common }, 60_000)
        workers.push(w)
        return w
      }))
      await Promise.all(batch.map(async w => await w.call('waitJoined', 60_000)))
    }
    await startReader()
  }, 300_000)

  afterAll(async () => {
    await Promise.allSettled(workers.map(async w => { await w.kill() }))
    await Promise.allSettled([...readers, supernode].map(async s => { await s?.stop() }))
    await Promise.allSettled(dirs.map(async d => { await rm(d, { recursive: true, force: true }) }))
  })

  it('lists all of 20 users who registered at the same moment on 20 peer processes', { timeout: 300_000 }, async () => {
    const results = await Promise.allSettled(workers.map(async (w, i) =>
      await w.call('register', { username: names[i]!, password: pw, fullName: `Person Number ${i}` })))
    expect(results.filter(r => r.status === 'rejected').map(r => String((r as PromiseRejectedResult).reason))).toEqual([])
    const reader = readers[0]!
    const listed = await reader.users()
    expect(listed.map(u => u.username).sort()).toEqual(names)
    expect(listed.find(u => u.username === 'user07')?.fullName).toBe('Person Number 7')
    // all are logged in: each shows online once its presence record is read (retried under load)
    await eventually(async () => {
      const users = await reader.users()
      return users.length === N && users.every(u => u.online)
    }, 120_000, 1_000)
  })

  it('filters by prefix and sorts online users first', { timeout: 180_000 }, async () => {
    await workers[3]!.call('logout')
    await workers[1]!.call('logout')
    const reader = readers[0]!
    const users = await eventually(async () => {
      const u = await reader.users('user0')
      return u.filter(x => !x.online).length === 2 && u
    }, 90_000)
    expect(users.map(u => u.username)).toEqual([
      'user00', 'user02', 'user04', 'user05', 'user06', 'user07', 'user08', 'user09', 'user01', 'user03'
    ])
    expect(await reader.users('zz')).toEqual([])
  })

  it('finds users by a part of the full name, any case', { timeout: 120_000 }, async () => {
    const reader = readers[0]!
    expect((await reader.searchUsers('NUMBER 1')).map(u => u.username).sort()).toEqual(
      ['user01', 'user10', 'user11', 'user12', 'user13', 'user14', 'user15', 'user16', 'user17', 'user18', 'user19'])
    expect((await reader.searchUsers('person number')).map(u => u.username).sort()).toEqual(names)
    expect((await reader.searchUsers('user09')).map(u => u.username)).toEqual(['user09'])
  })

  it('survives the loss of the supernode', { timeout: 300_000 }, async () => {
    await supernode.stop()
    const [via] = await workers[5]!.call<string[]>('waitJoined')
    const late = await startReader(via)
    expect((await late.users()).map(u => u.username).sort()).toEqual(names)
    await late.register({ username: 'latecomer', password: pw, fullName: 'Late Comer' })
    const reader = readers[0]!
    await eventually(async () => (await reader.users('late')).some(u => u.username === 'latecomer'), 90_000)
  })
})
