/**
 * The hole punch's exchange over in-memory streams, with stubbed libp2p components: the
 * two sides trade offers and dial each other from the ports they offered, the answering
 * side as the responder, each from a port held since its offer, and tag the peer they
 * punched through to; a request over a direct connection, a malformed offer, a second
 * attempt within the minute, a peer with no chat on the relayed connection and answers
 * past the minute's are refused.
 */
import { createServer } from 'node:net'
import { describe, it, expect } from 'vitest'
import { streamPair, lpStream } from '@libp2p/utils'
import { defaultLogger } from '@libp2p/logger'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import type { Connection, PeerId, Stream, StreamHandler } from '@libp2p/interface'
import { HolePuncher, PUNCHED_TAG, PUNCHED_TAG_VALUE, PUNCH_PROTOCOL, decodeOffer, encodeOffer, holdTcpPort, type HolePunchComponents, type HolePunchInit } from '../../../src/network/hole-punch.js'

async function newPeerId (): Promise<PeerId> { return peerIdFromPrivateKey(await generateKeyPair('Ed25519')) }

const CHAT = '/conf-chat/chat/2.1.0'

interface Dialled { addr: string, localPort: number, initiator?: boolean }

interface Stubbed {
  puncher: HolePuncher
  dialled: Dialled[]
  /** Peer-store tags set, by peer. */
  tagged: Map<string, unknown>
  handler: () => StreamHandler
  opened: (conn: Connection) => void
}

/** A puncher whose libp2p is stubbed: what it dials is recorded (and succeeds), its handler captured; it holds `port`. */
function stubbed (ip: string, port: number, init: Partial<HolePunchInit> = {}, onDial?: () => void): Stubbed {
  let handler: StreamHandler | undefined
  let onOpen: ((evt: CustomEvent<Connection>) => void) | undefined
  const dialled: Dialled[] = []
  const tagged = new Map<string, unknown>()
  const components = {
    registrar: { handle: async (_p: string, h: StreamHandler) => { handler = h }, unhandle: async () => {} },
    connectionManager: { getConnections: () => [] },
    peerStore: { merge: async (peer: PeerId, data: { tags?: unknown }) => { tagged.set(peer.toString(), data.tags) } },
    transportManager: {
      dial: async (ma: Multiaddr, options: any) => {
        onDial?.()
        dialled.push({ addr: ma.toString(), localPort: options.localPort, initiator: options.initiator })
        return {} as unknown as Connection
      }
    },
    events: { addEventListener: (_t: string, l: any) => { onOpen = l }, removeEventListener: () => {} },
    logger: defaultLogger()
  } as unknown as HolePunchComponents
  const puncher = new HolePuncher(components, { publicIp: () => ip, holdPort: async () => ({ port, release: async () => {} }), ...init })
  return {
    puncher,
    dialled,
    tagged,
    handler: () => { if (handler == null) throw new Error('not started'); return handler },
    opened: conn => { onOpen?.(new CustomEvent('connection:open', { detail: conn })) }
  }
}

/** The answering side's end of a relayed connection from `remotePeer`, carrying `streams` (a chat stream by default). */
function relayedFrom (remotePeer: PeerId, streams: Array<{ protocol: string }> = [{ protocol: CHAT }]): Connection {
  return { remotePeer, remoteAddr: multiaddr(`/ip4/10.0.0.1/tcp/4300/p2p-circuit/p2p/${remotePeer.toString()}`), streams } as unknown as Connection
}

/** Ask `answerer` for a punch with `offer` over `conn`: its offer back, or 'refused'. */
async function ask (answerer: Stubbed, offer: unknown, conn: Connection): Promise<string> {
  const [outbound, inbound] = await streamPair()
  void answerer.handler()(inbound, conn)
  const lp = lpStream(outbound)
  await lp.write(new TextEncoder().encode(JSON.stringify(offer))).catch(() => {})
  try {
    return JSON.stringify(decodeOffer((await lp.read()).subarray()))
  } catch {
    return 'refused'
  }
}

/** Whether a listener can be opened on `port` of `host` now (the error's code if not). */
async function canListen (port: number, host: string): Promise<true | string> {
  const server = createServer()
  return await new Promise(resolve => {
    server.once('error', (err: any) => { resolve(err.code) })
    server.listen(port, host, () => { server.close(() => { resolve(true) }) })
  })
}

/** A relayed connection from `from` whose newStream hands the other end to `answer`. */
function relayedConnection (remotePeer: PeerId, answer: (stream: Stream) => void, relayed = true): Connection {
  return {
    remotePeer,
    direction: 'outbound',
    remoteAddr: multiaddr(relayed ? `/ip4/10.0.0.1/tcp/4300/p2p/${remotePeer.toString()}/p2p-circuit/p2p/${remotePeer.toString()}` : '/ip4/10.0.0.9/tcp/1234'),
    newStream: async () => {
      const [outbound, inbound] = await streamPair()
      answer(inbound)
      return outbound
    }
  } as unknown as Connection
}

async function until (check: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !check(); i++) await new Promise(resolve => setTimeout(resolve, 5))
}

/** alice (198.51.100.1, port 40001) has dialled bob (198.51.100.2, port 40002) through a relay: her side opens the punch; bob answers as the connection's other end. */
async function relayedPair (): Promise<{ alice: ReturnType<typeof stubbed>, bob: ReturnType<typeof stubbed>, aliceId: PeerId, bobId: PeerId }> {
  const alice = stubbed('198.51.100.1', 40001)
  const bob = stubbed('198.51.100.2', 40002)
  await alice.puncher.start()
  await bob.puncher.start()
  const [aliceId, bobId] = [await newPeerId(), await newPeerId()]
  alice.opened(relayedConnection(bobId, stream => { void bob.handler()(stream, relayedFrom(aliceId)) }))
  return { alice, bob, aliceId, bobId }
}

describe('hole punch', () => {
  it('trades offers over the relayed connection, then both dial from their ports, the answering side as responder', async () => {
    const { alice, bob, aliceId, bobId } = await relayedPair()
    await until(() => alice.dialled.length > 0 && bob.dialled.length > 0)
    expect(alice.dialled).toEqual([{ addr: `/ip4/198.51.100.2/tcp/40002/p2p/${bobId.toString()}`, localPort: 40001, initiator: undefined }])
    expect(bob.dialled).toEqual([{ addr: `/ip4/198.51.100.1/tcp/40001/p2p/${aliceId.toString()}`, localPort: 40002, initiator: false }])
    expect(alice.puncher.stats).toMatchObject({ attempts: 1, direct: 1, failed: 0 })
    expect(bob.puncher.stats).toMatchObject({ attempts: 1, direct: 1, refused: 0 })
  })

  it('tags the peer it punched through to on both sides, so the trimmer keeps the connection (the answering side\'s is inbound)', async () => {
    const { alice, bob, aliceId, bobId } = await relayedPair()
    await until(() => alice.tagged.size > 0 && bob.tagged.size > 0)
    const tag = { [PUNCHED_TAG]: { value: PUNCHED_TAG_VALUE, ttl: expect.any(Number) } }
    expect(bob.tagged.get(aliceId.toString())).toEqual(tag)
    expect(alice.tagged.get(bobId.toString())).toEqual(tag)
  })

  it('answers only a peer with a chat stream on the relayed connection (waiting a little for one), never a peer that only asks for punches', async () => {
    const bob = stubbed('198.51.100.2', 40002)
    await bob.puncher.start()
    const [mallory, alice] = [await newPeerId(), await newPeerId()]
    // mallory opened a relayed connection for the punch alone (identify and a stream still negotiating do not count)
    const bare = relayedFrom(mallory, [{ protocol: PUNCH_PROTOCOL }, { protocol: '/ipfs/id/1.0.0' }, { protocol: '' }])
    // alice's chat stream is negotiated a little after her punch
    const chatting = relayedFrom(alice, [{ protocol: PUNCH_PROTOCOL }])
    setTimeout(() => { chatting.streams.push({ protocol: CHAT } as any) }, 200)
    const [fromMallory, fromAlice] = await Promise.all([
      ask(bob, { ip: '192.168.1.20', port: 22_222 }, bare),
      ask(bob, { ip: '198.51.100.1', port: 40001 }, chatting)
    ])
    expect(fromMallory).toBe('refused')
    expect(fromAlice).toBe(JSON.stringify({ ip: '198.51.100.2', port: 40002 }))
    await until(() => bob.dialled.length > 0)
    expect(bob.dialled.map(d => d.addr)).toEqual([`/ip4/198.51.100.1/tcp/40001/p2p/${alice.toString()}`])
    expect(bob.puncher.stats.refusedFor).toEqual({ 'not-listed': 1 })
  })

  it('answers at most its answers of the minute from all peers together (peer ids are free), then refuses as rate-limited', async () => {
    const bob = stubbed('198.51.100.2', 40002, { answersPerMinute: 2 })
    await bob.puncher.start()
    const results: string[] = []
    for (let i = 1; i <= 3; i++) results.push(await ask(bob, { ip: `198.51.100.${10 + i}`, port: 40001 }, relayedFrom(await newPeerId())))
    expect(results.map(r => r === 'refused')).toEqual([false, false, true])
    await until(() => bob.dialled.length === 2)
    expect(bob.dialled.map(d => d.addr.split('/')[2])).toEqual(['198.51.100.11', '198.51.100.12'])
    expect(bob.puncher.stats.refusedFor).toEqual({ 'rate-limited': 1 })
  })

  it('holds the port it offers from before the offer until just before its dial', async () => {
    const events: string[] = []
    let released = false
    const alice = stubbed('198.51.100.1', 0, {
      holdPort: async () => {
        events.push('hold')
        return { port: 40001, release: async () => { if (!released) events.push('release'); released = true } }
      }
    }, () => { events.push('dial') })
    await alice.puncher.start()
    const bobId = await newPeerId()
    alice.opened(relayedConnection(bobId, stream => {
      void (async () => {
        const lp = lpStream(stream)
        const offer = decodeOffer((await lp.read()).subarray())
        events.push(`offer ${offer.port}`)
        await lp.write(encodeOffer({ ip: '198.51.100.2', port: 40002 }))
      })()
    }))
    await until(() => alice.dialled.length > 0)
    expect(events).toEqual(['hold', 'offer 40001', 'release', 'dial'])
    expect(alice.dialled[0]?.localPort).toBe(40001)
  })

  it('holdTcpPort keeps the port from other listeners until it is released, and releases once', async () => {
    const hold = await holdTcpPort('127.0.0.1')
    expect(hold.port).toBeGreaterThan(0)
    expect(await canListen(hold.port, '127.0.0.1')).toBe('EADDRINUSE')
    await hold.release()
    await hold.release()
    expect(await canListen(hold.port, '127.0.0.1')).toBe(true)
  })

  it('does not start for a direct connection, nor again within the minute', async () => {
    const alice = stubbed('198.51.100.1', 40001)
    await alice.puncher.start()
    const bobId = await newPeerId()
    let asked = 0
    alice.opened(relayedConnection(bobId, () => { asked++ }, false))
    expect(asked).toBe(0)
    alice.opened(relayedConnection(bobId, stream => { asked++; stream.abort(new Error('no')) }))
    await until(() => asked === 1)
    alice.opened(relayedConnection(bobId, () => { asked++ }))
    await new Promise(resolve => setTimeout(resolve, 20))
    expect(asked).toBe(1)
  })

  it('refuses a request over a direct connection, a malformed offer, and a second one from the peer within the minute', async () => {
    const bob = stubbed('198.51.100.2', 40002)
    await bob.puncher.start()
    const aliceId = await newPeerId()
    const from = (remoteAddr: string): Connection => ({ remotePeer: aliceId, remoteAddr: multiaddr(remoteAddr), streams: [{ protocol: CHAT }] }) as unknown as Connection
    expect(await ask(bob, { ip: '198.51.100.1', port: 40001 }, from('/ip4/10.0.0.9/tcp/1234'))).toBe('refused')
    expect(await ask(bob, { ip: '198.51.100.1; rm -rf', port: 40001 }, from('/ip4/10.0.0.1/tcp/4300/p2p-circuit'))).toBe('refused')
    expect(bob.puncher.stats.refused).toBe(2)
    expect(bob.dialled).toEqual([])
    // the malformed one counted as the peer's attempt of the minute
    expect(await ask(bob, { ip: '198.51.100.1', port: 40001 }, from('/ip4/10.0.0.1/tcp/4300/p2p-circuit'))).toBe('refused')
    expect(bob.dialled).toEqual([])
    expect(bob.puncher.stats.refusedFor).toEqual({ malformed: 2, 'rate-limited': 1 })
  })

  it('reads only well-formed offers', () => {
    expect(decodeOffer(encodeOffer({ ip: '203.0.113.7', port: 5000 }))).toEqual({ ip: '203.0.113.7', port: 5000 })
    for (const bad of [{ ip: '203.0.113.7', port: 80 }, { ip: '::1', port: 5000 }, { ip: '127.0.0.1', port: 5000 }, { ip: '224.0.0.1', port: 5000 }, { ip: '169.254.1.1', port: 5000 }, { ip: '0.0.0.0', port: 5000 }, { ip: '203.0.113.7', port: 5000, extra: 1 }, { ip: '203.0.113.7' }]) {
      expect(() => decodeOffer(new TextEncoder().encode(JSON.stringify(bad))), JSON.stringify(bad)).toThrow()
    }
    expect(() => decodeOffer(new TextEncoder().encode('not json'))).toThrow()
  })
})

