/**
 * The ChatNode interface as a program uses it: its status, the named error for use
 * before start, typed session events, and a caller's signal that reaches the network.
 */
import { rm } from 'node:fs/promises'
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { createChatNode } from '@conf-chat/node'
import { startChatNetwork, FAST, type ChatNetwork } from './helpers/chat.js'
import { tempDir, addrOf } from './helpers/network.js'

const pw = 'correct horse battery'

describe('ChatNode', () => {
  let net: ChatNetwork

  beforeAll(async () => { net = await startChatNetwork(2) })
  afterAll(async () => { await net?.cleanup() })

  it('reports its status and refuses use before start and after stop with NotStartedError', async () => {
    const dataDir = await tempDir()
    const node = createChatNode({ dataDir, host: '127.0.0.1', port: 0, bootstrap: [addrOf(net.supernode)], ...FAST })
    try {
      expect(node.status).toBe('stopped')
      await expect(node.login('nobody', pw)).rejects.toMatchObject({ name: 'NotStartedError' })
      expect(() => node.peer.libp2p).toThrow(expect.objectContaining({ name: 'NotStartedError' }))
      const starting = node.start()
      expect(node.status).toBe('starting')
      expect(await starting).toBe(node)
      expect(node.status).toBe('started')
      expect(node.session).toBeUndefined()
      await expect(node.friends()).rejects.toMatchObject({ name: 'NotLoggedInError' })
      await node.stop()
      expect(node.status).toBe('stopped')
      await expect(node.users()).rejects.toMatchObject({ name: 'NotStartedError' })
    } finally {
      await node.stop()
      await rm(dataDir, { recursive: true, force: true })
    }
  })

  it('tells its listeners when a session starts and ends, with the reason', async () => {
    const [a] = net.nodes
    const events: string[] = []
    a!.addEventListener('session:started', ev => { events.push(`started ${ev.detail.username}`) })
    a!.addEventListener('session:ended', ev => { events.push(`ended ${ev.detail.username} ${ev.detail.reason}`) })
    await a!.register({ username: 'status-ann', password: pw, fullName: 'Ann' })
    await a!.logout()
    expect(events).toEqual(['started status-ann', 'ended status-ann logout'])
  })

  it("stops the network work of a call when the caller's signal aborts", async () => {
    const [, b] = net.nodes
    const controller = new AbortController()
    controller.abort(new Error('the user gave up'))
    await expect(b!.login('status-ann', pw, { signal: controller.signal })).rejects.toThrow('the user gave up')
    expect(b!.session).toBeUndefined()
    // given up while the directory is being read
    const later = new AbortController()
    const listing = b!.users('', { signal: later.signal })
    later.abort(new Error('closed the list'))
    await expect(listing).rejects.toThrow('closed the list')
    // the same calls without a signal work
    await b!.login('status-ann', pw)
    expect(b!.session?.account.username).toBe('status-ann')
    expect((await b!.users('status-')).map(u => u.username)).toEqual(['status-ann'])
    await b!.logout()
  })
})
