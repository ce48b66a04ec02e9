/**
 * Connection hygiene against a peer that opens TCP connections and never finishes their
 * handshake (multistream-select, Noise, yamux): 100 idle sockets to the supernode, from
 * one address or from 100, reopened as soon as the supernode closes one, must not keep a
 * new peer from joining through it. And a chat stream whose frame is only half sent is
 * closed by the receiver, never kept open. Everything on loopback: the attacker's sockets
 * come from other addresses of 127.0.0.0/8.
 */
import { describe, it, expect, afterEach } from 'vitest'
import { connect, type Socket } from 'node:net'
import { rm } from 'node:fs/promises'
import { ChatPeer } from '@conf-chat/node/network'
import { CHAT_PROTOCOL } from '@conf-chat/node'
import { SET_PROTOCOL } from '@conf-chat/protocol'
import type { Stream } from '@libp2p/interface'
import { tempDir, addrOf } from './helpers/network.js'
import { startChatNetwork, type ChatNetwork } from './helpers/chat.js'

const SOCKETS = 100

/** Idle TCP sockets to `port`, each reopened when closed, until `stop()`. */
function idleSockets (port: number, fromAddresses: string[]): { connected: () => number, opened: () => number, stop: () => void } {
  const live = new Set<Socket>()
  let opened = 0
  let stopped = false
  const open = (localAddress: string): void => {
    if (stopped) return
    const socket = connect({ host: '127.0.0.1', port, localAddress })
    opened++
    socket.on('connect', () => { live.add(socket) })
    socket.on('error', () => {})
    socket.on('close', () => {
      live.delete(socket)
      // a real attacker comes straight back
      if (!stopped) setTimeout(() => { open(localAddress) }, 10)
    })
  }
  fromAddresses.forEach(open)
  return {
    connected: () => live.size,
    opened: () => opened,
    stop: () => { stopped = true; for (const s of live) s.destroy() }
  }
}

describe('half-open connections', () => {
  const cleanups: Array<() => Promise<void> | void> = []
  afterEach(async () => {
    for (const c of cleanups.reverse()) await c()
    cleanups.length = 0
  })

  const peer = async (bootstrap?: string): Promise<ChatPeer> => {
    const dataDir = await tempDir()
    const p = new ChatPeer({ dataDir, host: '127.0.0.1', port: 0, ...(bootstrap != null ? { bootstrap: [bootstrap] } : {}) })
    cleanups.push(async () => { await p.stop(); await rm(dataDir, { recursive: true, force: true }) })
    await p.start()
    return p
  }

  /** Hold SOCKETS idle sockets to a fresh supernode, then time a new peer's join through it. */
  const joinUnderAttack = async (fromAddresses: string[]): Promise<{ joinMs: number, held: number, opened: number }> => {
    const supernode = await peer()
    const port = Number(supernode.multiaddrs[0]!.getComponents().find(c => c.name === 'tcp')!.value)
    const attack = idleSockets(port, fromAddresses)
    cleanups.push(() => { attack.stop() })
    // every socket was opened, and those the supernode has not closed are held
    await expect.poll(() => attack.opened() >= SOCKETS && attack.connected() >= 10, { timeout: 10_000 }).toBe(true)
    const t = Date.now()
    const newcomer = await peer(addrOf(supernode))
    await newcomer.waitJoined({ signal: AbortSignal.timeout(60_000) })
    const joinMs = Date.now() - t
    // the attack was still on when the newcomer joined
    const held = attack.connected()
    expect(held).toBeGreaterThanOrEqual(10)
    expect(newcomer.libp2p.getConnections(supernode.peerId).length).toBeGreaterThan(0)
    return { joinMs, held, opened: attack.opened() }
  }

  it(`${SOCKETS} idle sockets from one address do not keep a new peer out`, { timeout: 90_000 }, async () => {
    const figures = await joinUnderAttack(Array.from({ length: SOCKETS }, () => '127.0.0.2'))
    console.log(`join through a supernode holding ${SOCKETS} idle sockets from one address: ${figures.joinMs} ms (${figures.held} held, ${figures.opened} opened)`)
  })

  it(`${SOCKETS} idle sockets from ${SOCKETS} addresses do not keep a new peer out`, { timeout: 90_000 }, async () => {
    const figures = await joinUnderAttack(Array.from({ length: SOCKETS }, (_, i) => `127.0.1.${i + 1}`))
    console.log(`join through a supernode holding ${SOCKETS} idle sockets from ${SOCKETS} addresses: ${figures.joinMs} ms (${figures.held} held, ${figures.opened} opened)`)
  })
})

describe('a stream whose request is only half sent', () => {
  let net: ChatNetwork | undefined
  afterEach(async () => { await net?.cleanup(); net = undefined })

  /** Open `protocol` on `target` from `from`, send the first bytes of a frame that claims 1,000, and wait for the receiver to end the stream. */
  const halfSend = async (from: ChatPeer, target: ChatPeer, protocol: string): Promise<{ closedMs: number, stream: Stream }> => {
    const stream = await from.libp2p.dialProtocol(target.peerId, protocol)
    const closed = new Promise<number>(resolve => { stream.addEventListener('close', () => { resolve(Date.now()) }, { once: true }) })
    const t = Date.now()
    // varint 1000 (0xe8 0x07), then 3 of its 1,000 bytes: and nothing more, ever
    stream.send(new Uint8Array([0xe8, 0x07, 1, 2, 3]))
    const closedMs = await Promise.race([closed, new Promise<number>(resolve => setTimeout(() => { resolve(-1) }, 30_000))]) - t
    return { closedMs, stream }
  }

  it('is ended by the receiver within its read time limit: chat and set streams alike', { timeout: 90_000 }, async () => {
    net = await startChatNetwork(1, { inboundIdleMs: 2_000, setRequestTimeoutMs: 2_000 })
    const target = net.nodes[0]!
    await target.register({ username: 'target', password: 'correct horse battery', fullName: 'Target' })
    for (const protocol of [CHAT_PROTOCOL, SET_PROTOCOL]) {
      const { closedMs, stream } = await halfSend(net.supernode, target.peer, protocol)
      console.log(`${protocol}: a half-sent frame was ended by the receiver after ${closedMs} ms (limit 2,000 ms)`)
      expect(closedMs, protocol).toBeGreaterThanOrEqual(1_500)
      expect(closedMs, protocol).toBeLessThan(29_000)
      expect(stream.status).not.toBe('open')
    }
  })
})
