/**
 * The stream muxer as ChatPeer wires it (yamux with window updates once half the window
 * is used, over corked TCP), on real libp2p nodes on loopback: a small request and its
 * answer cost one socket write each way, and streams far larger than the window still
 * arrive whole in both directions (the updates come when they are due).
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { Socket } from 'node:net'
import { lpStream } from '@libp2p/utils'
import type { ChatPeer } from '@conf-chat/node/network'
import { startNetwork, type TestNetwork } from './helpers/network.js'

const ECHO = '/conf-chat-test/echo/1.0.0'

/** Socket write calls (one system call each) made while `fn` runs. */
async function countWrites (fn: () => Promise<void>): Promise<number> {
  const proto = Socket.prototype as unknown as Record<'_write' | '_writev', (...args: any[]) => unknown>
  const { _write, _writev } = proto
  let calls = 0
  proto._write = function (this: Socket, ...args: any[]) { calls++; return _write.apply(this, args) }
  proto._writev = function (this: Socket, ...args: any[]) { calls++; return _writev.apply(this, args) }
  try {
    await fn()
  } finally {
    proto._write = _write
    proto._writev = _writev
  }
  return calls
}

describe('streams between two peers', () => {
  let net: TestNetwork | undefined
  let a: ChatPeer
  let b: ChatPeer

  beforeAll(async () => {
    net = await startNetwork(1)
    a = net.peers[0]!
    b = net.supernode
    // echoes each frame back on the same stream
    await b.libp2p.handle(ECHO, async (stream) => {
      const lp = lpStream(stream, { maxDataLength: 8 * 1024 * 1024 })
      try {
        while (true) await lp.write(await lp.read())
      } catch {}
    })
  }, 120_000)
  afterAll(async () => { await net?.cleanup() }, 60_000)

  it('answers a small request on a kept stream with one socket write each way', async () => {
    const stream = await a.libp2p.dialProtocol(b.libp2p.peerId, ECHO)
    const lp = lpStream(stream)
    const request = new Uint8Array(200).fill(7)
    for (let i = 0; i < 20; i++) { await lp.write(request); await lp.read() }
    const n = 200
    const writes = await countWrites(async () => {
      for (let i = 0; i < n; i++) {
        await lp.write(request)
        expect(Buffer.compare((await lp.read()).subarray(), request)).toBe(0)
      }
    })
    // js-yamux's own would add a window update each way (4 writes per round trip)
    expect(writes / n).toBeLessThan(2.5)
    stream.abort(new Error('done'))
  })

  it('carries streams many times the receive window in both directions', async () => {
    const stream = await a.libp2p.dialProtocol(b.libp2p.peerId, ECHO)
    const lp = lpStream(stream, { maxDataLength: 8 * 1024 * 1024 })
    // 16 frames of 512 KiB each way: 8 MiB, 32 times yamux's initial 256 KiB window
    for (let i = 0; i < 16; i++) {
      const frame = new Uint8Array(512 * 1024).fill(i)
      await lp.write(frame)
      const echoed = (await lp.read()).subarray()
      expect(echoed.length).toBe(frame.length)
      expect(echoed[0]).toBe(i)
      expect(echoed[echoed.length - 1]).toBe(i)
    }
    stream.abort(new Error('done'))
  }, 60_000)
})
