/**
 * The hole punch's exchange over in-memory streams, with stubbed libp2p components: the
 * two sides trade offers and dial each other from the ports they offered, the answering
 * side as the responder; a request over a direct connection, a malformed offer and a
 * second attempt within the minute are refused.
 */
import { describe, it, expect } from 'vitest'
import { streamPair, lpStream } from '@libp2p/utils'
import { defaultLogger } from '@libp2p/logger'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import type { Connection, PeerId, Stream, StreamHandler } from '@libp2p/interface'
import { HolePuncher, decodeOffer, encodeOffer, type HolePunchComponents } from '../../../src/network/hole-punch.js'

async function newPeerId (): Promise<PeerId> { return peerIdFromPrivateKey(await generateKeyPair('Ed25519')) }

interface Dialled { addr: string, localPort: number, initiator?: boolean }

/** A puncher whose libp2p is stubbed: what it dials is recorded (and succeeds), its handler captured. */
function stubbed (ip: string, port: number): { puncher: HolePuncher, dialled: Dialled[], handler: () => StreamHandler, opened: (conn: Connection) => void } {
  let handler: StreamHandler | undefined
  let onOpen: ((evt: CustomEvent<Connection>) => void) | undefined
  const dialled: Dialled[] = []
  const components = {
    registrar: { handle: async (_p: string, h: StreamHandler) => { handler = h }, unhandle: async () => {} },
    connectionManager: { getConnections: () => [] },
    transportManager: {
      dial: async (ma: Multiaddr, options: any) => {
        dialled.push({ addr: ma.toString(), localPort: options.localPort, initiator: options.initiator })
        return {} as unknown as Connection
      }
    },
    events: { addEventListener: (_t: string, l: any) => { onOpen = l }, removeEventListener: () => {} },
    logger: defaultLogger()
  } as unknown as HolePunchComponents
  const puncher = new HolePuncher(components, { publicIp: () => ip, freePort: async () => port })
  return {
    puncher,
    dialled,
    handler: () => { if (handler == null) throw new Error('not started'); return handler },
    opened: conn => { onOpen?.(new CustomEvent('connection:open', { detail: conn })) }
  }
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

describe('hole punch', () => {
  it('trades offers over the relayed connection, then both dial from their ports, the answering side as responder', async () => {
    const alice = stubbed('198.51.100.1', 40001)
    const bob = stubbed('198.51.100.2', 40002)
    await alice.puncher.start()
    await bob.puncher.start()
    const [aliceId, bobId] = [await newPeerId(), await newPeerId()]
    // alice dialled bob through a relay: her side opens the punch; bob answers as the connection's other end
    alice.opened(relayedConnection(bobId, stream => { void bob.handler()(stream, { remotePeer: aliceId, remoteAddr: multiaddr(`/ip4/10.0.0.1/tcp/4300/p2p-circuit/p2p/${aliceId.toString()}`) } as unknown as Connection) }))
    await until(() => alice.dialled.length > 0 && bob.dialled.length > 0)
    expect(alice.dialled).toEqual([{ addr: `/ip4/198.51.100.2/tcp/40002/p2p/${bobId.toString()}`, localPort: 40001, initiator: undefined }])
    expect(bob.dialled).toEqual([{ addr: `/ip4/198.51.100.1/tcp/40001/p2p/${aliceId.toString()}`, localPort: 40002, initiator: false }])
    expect(alice.puncher.stats).toMatchObject({ attempts: 1, direct: 1, failed: 0 })
    expect(bob.puncher.stats).toMatchObject({ attempts: 1, direct: 1, refused: 0 })
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
    const ask = async (offer: unknown, remoteAddr: string): Promise<string> => {
      const [outbound, inbound] = await streamPair()
      void bob.handler()(inbound, { remotePeer: aliceId, remoteAddr: multiaddr(remoteAddr) } as unknown as Connection)
      const lp = lpStream(outbound)
      await lp.write(new TextEncoder().encode(JSON.stringify(offer))).catch(() => {})
      try {
        return JSON.stringify(decodeOffer((await lp.read()).subarray()))
      } catch {
        return 'refused'
      }
    }
    expect(await ask({ ip: '198.51.100.1', port: 40001 }, '/ip4/10.0.0.9/tcp/1234')).toBe('refused')
    expect(await ask({ ip: '198.51.100.1; rm -rf', port: 40001 }, '/ip4/10.0.0.1/tcp/4300/p2p-circuit')).toBe('refused')
    expect(bob.puncher.stats.refused).toBe(2)
    expect(bob.dialled).toEqual([])
    // the malformed one counted as the peer's attempt of the minute
    expect(await ask({ ip: '198.51.100.1', port: 40001 }, '/ip4/10.0.0.1/tcp/4300/p2p-circuit')).toBe('refused')
    expect(bob.dialled).toEqual([])
  })

  it('reads only well-formed offers', () => {
    expect(decodeOffer(encodeOffer({ ip: '203.0.113.7', port: 5000 }))).toEqual({ ip: '203.0.113.7', port: 5000 })
    for (const bad of [{ ip: '203.0.113.7', port: 80 }, { ip: '::1', port: 5000 }, { ip: '127.0.0.1', port: 5000 }, { ip: '224.0.0.1', port: 5000 }, { ip: '169.254.1.1', port: 5000 }, { ip: '0.0.0.0', port: 5000 }, { ip: '203.0.113.7', port: 5000, extra: 1 }, { ip: '203.0.113.7' }]) {
      expect(() => decodeOffer(new TextEncoder().encode(JSON.stringify(bad))), JSON.stringify(bad)).toThrow()
    }
    expect(() => decodeOffer(new TextEncoder().encode('not json'))).toThrow()
  })
})

