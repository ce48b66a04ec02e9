/**
 * The DHT stream pool over in-memory stream pairs: each stream the fake opener makes is
 * answered by a loop like kad-dht's inbound handler (frame after frame on one stream), and
 * the client side reads through the lease with lpStream as kad-dht's pbStream does.
 */
import { describe, it, expect } from 'vitest'
import { streamPair, lpStream } from '@libp2p/utils'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { defaultLogger } from '@libp2p/logger'
import type { PeerId, Stream } from '@libp2p/interface'
import { DhtStreamPool, FrameCounter, type StreamOpener } from '../../../src/network/dht/index.js'

const PROTOCOL = '/test/kad/1.0.0'
const log = defaultLogger().forComponent('test:dht-pool')

interface Opened { client: Stream, server: Stream }

/** Opens stream pairs; the server side answers each frame with `reply(frame)` frames. */
function fakeOpener (reply: (frame: Uint8Array) => Uint8Array[] = f => [f]): StreamOpener & { opened: Opened[] } {
  const opened: Opened[] = []
  return {
    opened,
    async openStream () {
      const [client, server] = await streamPair()
      opened.push({ client, server })
      void (async () => {
        const lp = lpStream(server)
        try {
          while (true) {
            const frame = await lp.read()
            for (const out of reply(frame.subarray())) await lp.write(out)
          }
        } catch {
          // the client closed its end (or aborted): end ours, as kad-dht's handler does
          await server.close().catch(() => {})
        }
      })()
      return client
    }
  }
}

async function peer (): Promise<PeerId> {
  return peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
}

/** One RPC as kad-dht's Network does it: open, write one frame, read one, close. */
async function rpc (pool: DhtStreamPool, to: PeerId, text: string): Promise<string> {
  const stream = await pool.openStream(to, PROTOCOL)
  const lp = lpStream(stream)
  await lp.write(new TextEncoder().encode(text))
  const res = await lp.read()
  await stream.close()
  return new TextDecoder().decode(res.subarray())
}

const closed = async (s: Stream): Promise<void> => {
  if (s.status !== 'open') return
  await new Promise<void>(resolve => { s.addEventListener('close', () => { resolve() }, { once: true }) })
}

describe('DhtStreamPool', () => {
  it('runs sequential RPCs to one peer on one stream, each with its own answer', async () => {
    const opener = fakeOpener()
    const pool = new DhtStreamPool({ opener, log }, { protocol: PROTOCOL })
    const to = await peer()
    for (let i = 0; i < 20; i++) expect(await rpc(pool, to, `req ${i}`)).toBe(`req ${i}`)
    expect(opener.opened).toHaveLength(1)
    expect(pool.stats).toMatchObject({ opened: 1, reused: 19, dropped: 0, idle: 1 })
    pool.close()
  })

  it('leaves no listener of a finished lease on the stream (a reader per RPC would pile up)', async () => {
    const opener = fakeOpener()
    const pool = new DhtStreamPool({ opener, log }, { protocol: PROTOCOL })
    const to = await peer()
    await rpc(pool, to, 'first')
    const stream = opener.opened[0]!.client as unknown as { listenerCount: (t: string) => number }
    const counts = ['message', 'close', 'remoteCloseWrite', 'drain'].map(t => stream.listenerCount(t))
    for (let i = 0; i < 10; i++) await rpc(pool, to, `again ${i}`)
    expect(['message', 'close', 'remoteCloseWrite', 'drain'].map(t => stream.listenerCount(t))).toEqual(counts)
    expect(stream.listenerCount('message')).toBe(0)
    pool.close()
  })

  it('keeps separate streams per peer', async () => {
    const opener = fakeOpener()
    const pool = new DhtStreamPool({ opener, log }, { protocol: PROTOCOL })
    const [a, b] = [await peer(), await peer()]
    for (let i = 0; i < 3; i++) {
      expect(await rpc(pool, a, `a${i}`)).toBe(`a${i}`)
      expect(await rpc(pool, b, `b${i}`)).toBe(`b${i}`)
    }
    expect(opener.opened).toHaveLength(2)
    pool.close()
  })

  it('never reuses an aborted stream, and the next RPC succeeds on a new one', async () => {
    const opener = fakeOpener()
    const pool = new DhtStreamPool({ opener, log }, { protocol: PROTOCOL })
    const to = await peer()
    const stream = await pool.openStream(to, PROTOCOL)
    stream.abort(new Error('timed out'))
    expect(opener.opened[0]!.client.status).not.toBe('open')
    expect(await rpc(pool, to, 'after')).toBe('after')
    expect(opener.opened).toHaveLength(2)
    expect(pool.stats.dropped).toBe(1)
    pool.close()
  })

  it('keeps a stream whose caller gave up once the answer it is owed came in', async () => {
    const opener = fakeOpener()
    const pool = new DhtStreamPool({ opener, log }, { protocol: PROTOCOL })
    const to = await peer()
    const stream = await pool.openStream(to, PROTOCOL)
    await lpStream(stream).write(new TextEncoder().encode('late'))
    // the query ended before the answer: kad-dht aborts with its signal's reason
    stream.abort(new DOMException('the query ended', 'AbortError'))
    const { client } = opener.opened[0]!
    expect(client.status).toBe('open')
    await new Promise<void>(resolve => { const t = setInterval(() => { if (pool.stats.drained === 1) { clearInterval(t); resolve() } }, 1) })
    expect(await rpc(pool, to, 'next')).toBe('next')
    expect(opener.opened).toHaveLength(1)
    expect(pool.stats).toMatchObject({ drained: 1, dropped: 0, reused: 1 })
    pool.close()
  })

  it('drops a stream whose caller gave up when the owed answer does not come', async () => {
    const opener = fakeOpener(() => [])
    const pool = new DhtStreamPool({ opener, log }, { protocol: PROTOCOL, drainTimeoutMs: 10 })
    const to = await peer()
    const stream = await pool.openStream(to, PROTOCOL)
    await lpStream(stream).write(new TextEncoder().encode('never answered'))
    stream.abort(new DOMException('the query ended', 'AbortError'))
    await closed(opener.opened[0]!.client)
    expect(pool.stats).toMatchObject({ drained: 0, dropped: 1, idle: 0 })
    pool.close()
  })

  it('reports a stall when an RPC timed out with no byte of answer, and when an owed answer never came', async () => {
    const opener = fakeOpener(() => [])
    const stalls: string[] = []
    const pool = new DhtStreamPool({ opener, log, onStall: p => { stalls.push(p.toString()) } }, { protocol: PROTOCOL, drainTimeoutMs: 10 })
    const to = await peer()
    // kad-dht's own time limit ends the RPC: its signal's reason is a TimeoutError
    const timeout = new AbortController()
    const timed = await pool.openStream(to, PROTOCOL, { signal: timeout.signal })
    await lpStream(timed).write(new TextEncoder().encode('no answer'))
    const reason = new DOMException('the RPC timed out', 'TimeoutError')
    timeout.abort(reason)
    timed.abort(reason)
    expect(stalls).toEqual([to.toString()])
    // the query ended (not a time limit) and the owed answer never comes either
    const stream = await pool.openStream(to, PROTOCOL)
    await lpStream(stream).write(new TextEncoder().encode('never answered'))
    stream.abort(new DOMException('the query ended', 'AbortError'))
    await closed(opener.opened[1]!.client)
    expect(stalls).toEqual([to.toString(), to.toString()])
    pool.close()
  })

  it('reports no stall for an answered RPC, or one its caller ended before the answer came in time', async () => {
    const opener = fakeOpener()
    const stalls: string[] = []
    const pool = new DhtStreamPool({ opener, log, onStall: p => { stalls.push(p.toString()) } }, { protocol: PROTOCOL })
    const to = await peer()
    expect(await rpc(pool, to, 'answered')).toBe('answered')
    const stream = await pool.openStream(to, PROTOCOL)
    await lpStream(stream).write(new TextEncoder().encode('late'))
    stream.abort(new DOMException('the query ended', 'AbortError'))
    await new Promise<void>(resolve => { const t = setInterval(() => { if (pool.stats.drained === 1) { clearInterval(t); resolve() } }, 1) })
    expect(stalls).toEqual([])
    pool.close()
  })

  it('drops a stream the remote reset while it was idle', async () => {
    const opener = fakeOpener()
    const pool = new DhtStreamPool({ opener, log }, { protocol: PROTOCOL })
    const to = await peer()
    await rpc(pool, to, 'one')
    const { client, server } = opener.opened[0]!
    server.abort(new Error('remote idle limit'))
    await closed(client)
    expect(pool.stats.idle).toBe(0)
    expect(await rpc(pool, to, 'two')).toBe('two')
    expect(opener.opened).toHaveLength(2)
    pool.close()
  })

  it('does not give back a stream on which more than the one answer came (a stray frame)', async () => {
    const opener = fakeOpener(f => [f, new TextEncoder().encode('stray')])
    const pool = new DhtStreamPool({ opener, log }, { protocol: PROTOCOL })
    const to = await peer()
    const stream = await pool.openStream(to, PROTOCOL)
    const lp = lpStream(stream)
    await lp.write(new TextEncoder().encode('q'))
    await lp.read()
    // read the stray frame too, so it has surely arrived before the close
    expect(new TextDecoder().decode((await lp.read()).subarray())).toBe('stray')
    await stream.close()
    expect(pool.stats.idle).toBe(0)
    expect(await rpc(pool, to, 'next')).toBe('next')
    expect(opener.opened).toHaveLength(2)
    pool.close()
  })

  it('does not give back a stream closed before its answer came', async () => {
    const opener = fakeOpener(() => [])
    const pool = new DhtStreamPool({ opener, log }, { protocol: PROTOCOL })
    const to = await peer()
    const stream = await pool.openStream(to, PROTOCOL)
    await lpStream(stream).write(new TextEncoder().encode('no answer'))
    await stream.close()
    expect(pool.stats).toMatchObject({ idle: 0, dropped: 1 })
    pool.close()
  })

  it('ignores close() and abort() on a lease that already ended (the stream serves another RPC by then)', async () => {
    const opener = fakeOpener()
    const pool = new DhtStreamPool({ opener, log }, { protocol: PROTOCOL })
    const to = await peer()
    const first = await pool.openStream(to, PROTOCOL)
    const lp = lpStream(first)
    await lp.write(new TextEncoder().encode('x'))
    await lp.read()
    await first.close()
    const second = await pool.openStream(to, PROTOCOL)
    first.abort(new Error('late abort from an old request'))
    await first.close()
    expect(second.status).toBe('open')
    const lp2 = lpStream(second)
    await lp2.write(new TextEncoder().encode('y'))
    expect(new TextDecoder().decode((await lp2.read()).subarray())).toBe('y')
    await second.close()
    expect(opener.opened).toHaveLength(1)
    pool.close()
  })

  it('keeps at most maxIdlePerPeer idle streams', async () => {
    const opener = fakeOpener()
    const pool = new DhtStreamPool({ opener, log }, { protocol: PROTOCOL, maxIdlePerPeer: 2 })
    const to = await peer()
    const answers = await Promise.all([1, 2, 3, 4].map(async i => await rpc(pool, to, `c${i}`)))
    expect(answers).toEqual(['c1', 'c2', 'c3', 'c4'])
    expect(opener.opened).toHaveLength(4)
    expect(pool.stats.idle).toBe(2)
    expect(opener.opened.filter(o => o.client.writeStatus === 'writable')).toHaveLength(2)
    pool.close()
  })

  it('closes an idle stream after idleTimeoutMs', async () => {
    const opener = fakeOpener()
    const pool = new DhtStreamPool({ opener, log }, { protocol: PROTOCOL, idleTimeoutMs: 20 })
    const to = await peer()
    await rpc(pool, to, 'once')
    const { client } = opener.opened[0]!
    await new Promise<void>(resolve => { client.addEventListener('close', () => { resolve() }, { once: true }) })
    expect(pool.stats.idle).toBe(0)
    pool.close()
  })

  it('passes other protocols and multiaddr targets straight to the opener, unpooled', async () => {
    const opener = fakeOpener()
    const pool = new DhtStreamPool({ opener, log }, { protocol: PROTOCOL })
    const to = await peer()
    const s = await pool.openStream(to, '/other/1.0.0')
    expect(s).toBe(opener.opened[0]!.client)
    await s.close()
    expect(pool.stats.opened).toBe(0)
    pool.close()
  })
})

describe('FrameCounter', () => {
  const frame = (len: number): Uint8Array => {
    const head: number[] = []
    let n = len
    do { head.push((n & 0x7f) | (n > 0x7f ? 0x80 : 0)); n = Math.floor(n / 128) } while (n > 0)
    return Uint8Array.from([...head, ...new Uint8Array(len)])
  }

  it('tells exactly one frame from none, part of one, or more', () => {
    const one = new FrameCounter()
    one.add(frame(300).subarray(0, 1))
    expect(one.isOneFrame()).toBe(false)
    one.add(frame(300).subarray(1))
    expect(one.isOneFrame()).toBe(true)
    one.add(frame(1))
    expect(one.isOneFrame()).toBe(false)
    expect(new FrameCounter().isOneFrame()).toBe(false)
    const empty = new FrameCounter()
    empty.add(frame(0))
    expect(empty.isOneFrame()).toBe(true)
  })
})
