/**
 * The dial-back check over in-memory streams, with stubbed libp2p components: the asker
 * goes by the answers (public if one got through, private if none did, unknown without
 * one); the answerer dials only the address the request came from, with the asker's peer
 * id, and refuses over a relay, while not a DHT server, a malformed request, or too soon
 * for the peer or for the host it asks from (under another peer id).
 */
import { describe, it, expect } from 'vitest'
import { streamPair, lpStream } from '@libp2p/utils'
import { defaultLogger } from '@libp2p/logger'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import type { Connection, PeerId, Stream, StreamHandler } from '@libp2p/interface'
import { DialbackService, sourceHost, type ReachabilityComponents } from '../../../src/network/reachability.js'

async function newPeerId (): Promise<PeerId> { return peerIdFromPrivateKey(await generateKeyPair('Ed25519')) }

/** The askers' connection events: a dial-back that got through opens a connection there. */
const askerEvents = new EventTarget()

/** An answerer whose dials succeed when `reachable(addr)` says so; what it dialled is recorded. */
function answerer (reachable: (addr: string) => boolean, serving = true, self?: PeerId, lie = false, lateMs = 0): { service: DialbackService, dialled: string[], handler: () => StreamHandler } {
  let handler: StreamHandler | undefined
  const dialled: string[] = []
  const components = {
    registrar: { handle: async (_p: string, h: StreamHandler) => { handler = h }, unhandle: async () => {} },
    connectionManager: { getConnections: () => [] },
    transportManager: {
      dial: async (ma: Multiaddr) => {
        dialled.push(ma.toString())
        if (lie) return { close: async () => {} } as unknown as Connection
        if (!reachable(ma.toString())) throw new Error('no route')
        const opened = (): boolean => askerEvents.dispatchEvent(new CustomEvent('connection:open', { detail: { direction: 'inbound', remotePeer: self, remoteAddr: multiaddr('/ip4/198.51.100.1/tcp/4300') } }))
        // the asker's side of the connection may open after the answerer's (and its answer)
        if (lateMs > 0) setTimeout(opened, lateMs)
        else opened()
        return { close: async () => {} } as unknown as Connection
      },
      listen: async () => {}
    },
    events: new EventTarget(),
    logger: defaultLogger()
  } as unknown as ReachabilityComponents
  return { service: new DialbackService(components, { serving: () => serving }), dialled, handler: () => handler! }
}

/** An asker whose connections to `servers` lead to those answerers (the asker seen at `from`). */
function asker (servers: Map<string, { handler: () => StreamHandler }>, me: PeerId, from: string): DialbackService {
  const components = {
    registrar: { handle: async () => {}, unhandle: async () => {} },
    connectionManager: {
      getConnections: (peer: PeerId) => [{
        status: 'open',
        remoteAddr: multiaddr('/ip4/192.0.2.1/tcp/4300'),
        newStream: async () => {
          const [outbound, inbound] = await streamPair()
          const server = servers.get(peer.toString())
          if (server == null) throw new Error('no such server')
          void server.handler()(inbound, { remotePeer: me, remoteAddr: multiaddr(from) } as unknown as Connection)
          return outbound
        }
      } as unknown as Connection]
    },
    transportManager: { dial: async () => { throw new Error('unused') }, listen: async () => {} },
    events: askerEvents,
    logger: defaultLogger()
  } as unknown as ReachabilityComponents
  return new DialbackService(components, { serving: () => false })
}

describe('dial-back reachability', () => {
  it('is public when a server reached the asker at the address it came from and its port', async () => {
    const me = await newPeerId()
    const sa = await newPeerId()
    const a = answerer(() => true, true, sa)
    await a.service.start()
    const check = asker(new Map([[sa.toString(), a]]), me, '/ip4/203.0.113.9/tcp/51234')
    expect(await check.check([sa], 4301)).toBe('public')
    // the connection's address and the requested port, nothing the asker named
    expect(a.dialled).toEqual([`/ip4/203.0.113.9/tcp/4301/p2p/${me.toString()}`])
    expect(a.service.stats).toMatchObject({ answered: 1, reached: 1 })
  })

  it('is private when every answer says it could not get through, unknown without an answer', async () => {
    const me = await newPeerId()
    const [s1, s2] = [await newPeerId(), await newPeerId()]
    const a1 = answerer(() => false)
    const a2 = answerer(() => false)
    await a1.service.start()
    await a2.service.start()
    expect(await asker(new Map([[s1.toString(), a1], [s2.toString(), a2]]), me, '/ip4/203.0.113.9/tcp/51234').check([s1, s2], 4301)).toBe('private')
    const busy = answerer(() => true, false)
    await busy.service.start()
    expect(await asker(new Map([[s1.toString(), busy]]), me, '/ip4/203.0.113.9/tcp/51234').check([s1], 4301)).toBe('unknown')
    expect(busy.dialled).toEqual([])
    expect(busy.service.stats.refused).toBe(1)
  })

  it('one server that got through outweighs others that did not', async () => {
    const me = await newPeerId()
    const [s1, s2] = [await newPeerId(), await newPeerId()]
    const no = answerer(() => false)
    const yes = answerer(() => true, true, s2)
    await no.service.start()
    await yes.service.start()
    expect(await asker(new Map([[s1.toString(), no], [s2.toString(), yes]]), me, '/ip4/203.0.113.9/tcp/51234').check([s1, s2], 4301)).toBe('public')
  })

  it('is public as soon as one server got through: a silent one does not hold the answer up', async () => {
    const me = await newPeerId()
    const [s1, s2] = [await newPeerId(), await newPeerId()]
    const yes = answerer(() => true, true, s2)
    await yes.service.start()
    const heard: Stream[] = []
    const silent = { handler: (): StreamHandler => stream => { heard.push(stream) } }
    const check = asker(new Map([[s1.toString(), silent], [s2.toString(), yes]]), me, '/ip4/203.0.113.9/tcp/51234')
    const started = Date.now()
    expect(await check.check([s1, s2], 4301)).toBe('public')
    // well before the silent server's exchange could time out (5 s)
    expect(Date.now() - started).toBeLessThan(4_000)
    // the silent server was asked, and its exchange is still waiting for an answer (up to 5 s)
    expect(heard).toHaveLength(1)
    expect(heard[0]!.status).toBe('open')
    await check.stop()
  })

  it('is public when the connection of a server that got through is seen here a moment after its answer', async () => {
    const me = await newPeerId()
    const s1 = await newPeerId()
    const late = answerer(() => true, true, s1, false, 200)
    await late.service.start()
    expect(await asker(new Map([[s1.toString(), late]]), me, '/ip4/203.0.113.9/tcp/51234').check([s1], 4301)).toBe('public')
  })

  it('takes no server\'s word that it got through without its connection coming in', async () => {
    const me = await newPeerId()
    const s1 = await newPeerId()
    const liar = answerer(() => false, true, s1, true)
    await liar.service.start()
    expect(await asker(new Map([[s1.toString(), liar]]), me, '/ip4/203.0.113.9/tcp/51234').check([s1], 4301)).toBe('unknown')
  })

  it('refuses over a relay, a malformed request, and a second request from a peer at once', async () => {
    const a = answerer(() => true)
    await a.service.start()
    const me = await newPeerId()
    const ask = async (request: unknown, from: string): Promise<string> => {
      const [outbound, inbound] = await streamPair()
      void a.handler()(inbound, { remotePeer: me, remoteAddr: multiaddr(from) } as unknown as Connection)
      const lp = lpStream(outbound)
      await lp.write(new TextEncoder().encode(JSON.stringify(request))).catch(() => {})
      try {
        return new TextDecoder().decode((await lp.read()).subarray())
      } catch {
        return 'refused'
      }
    }
    expect(await ask({ port: 4301 }, `/ip4/198.51.100.1/tcp/4300/p2p/${me.toString()}/p2p-circuit`)).toBe('refused')
    expect(await ask({ port: 4301, host: '198.51.100.77' }, '/ip4/203.0.113.9/tcp/51234')).toBe('refused')
    expect(a.dialled).toEqual([])
    // the malformed request counted as the peer's one for now
    expect(await ask({ port: 4301 }, '/ip4/203.0.113.9/tcp/51234')).toBe('refused')
    expect(a.service.stats.refused).toBe(3)
  })

  it('answers one request per host at once, whatever peer id it asks with (ids are free); peers on this host are limited by id only', async () => {
    const a = answerer(() => true)
    await a.service.start()
    const ask = async (from: string): Promise<string> => {
      const me = await newPeerId()
      const [outbound, inbound] = await streamPair()
      void a.handler()(inbound, { remotePeer: me, remoteAddr: multiaddr(from) } as unknown as Connection)
      const lp = lpStream(outbound)
      await lp.write(new TextEncoder().encode(JSON.stringify({ port: 4301 }))).catch(() => {})
      try {
        return new TextDecoder().decode((await lp.read()).subarray())
      } catch {
        return 'refused'
      }
    }
    expect(await ask('/ip4/203.0.113.9/tcp/51234')).toBe('{"ok":true}')
    // the same host with a new peer id, from another port
    expect(await ask('/ip4/203.0.113.9/tcp/51235')).toBe('refused')
    // another address of the same IPv6 /64
    expect(await ask('/ip6/2001:db8:1:2::7/tcp/51234')).toBe('{"ok":true}')
    expect(await ask('/ip6/2001:db8:1:2:aaaa::8/tcp/51234')).toBe('refused')
    // another host
    expect(await ask('/ip4/203.0.113.10/tcp/51234')).toBe('{"ok":true}')
    // peers of a local test network all ask from loopback
    expect(await ask('/ip4/127.0.0.1/tcp/51234')).toBe('{"ok":true}')
    expect(await ask('/ip4/127.0.0.1/tcp/51235')).toBe('{"ok":true}')
    expect(a.dialled).toHaveLength(5)
  })

  it('stops listening on relays only: the relay listeners (relayed addresses, or none yet) close, the TCP one stays', async () => {
    const closed: string[] = []
    const listener = (name: string, addrs: string[]): unknown => ({ getAddrs: () => addrs.map(a => multiaddr(a)), close: async () => { closed.push(name) } })
    const service = new DialbackService({
      registrar: { handle: async () => {}, unhandle: async () => {} },
      connectionManager: { getConnections: () => [] },
      transportManager: {
        dial: async () => { throw new Error('unused') },
        listen: async () => {},
        getListeners: () => [
          listener('tcp', ['/ip4/192.168.1.2/tcp/4301']),
          listener('relay with a reservation', ['/ip4/198.51.100.1/tcp/4300/p2p/12D3KooWEyjJrrgfDy9pxu3EjrKBGNgQvq4t6LiSLj8UQvcSYB5v/p2p-circuit']),
          listener('relay without one yet', [])
        ]
      },
      events: new EventTarget(),
      logger: defaultLogger()
    } as unknown as ReachabilityComponents, { serving: () => false })
    await service.unlistenRelays()
    expect(closed).toEqual(['relay with a reservation', 'relay without one yet'])
  })

  it('counts a request\'s host as its IPv4 address or its IPv6 /64, and none for loopback', () => {
    expect(sourceHost('ip4', '203.0.113.9')).toBe('203.0.113.9')
    expect(sourceHost('ip4', '127.0.0.1')).toBeUndefined()
    expect(sourceHost('ip6', '::1')).toBeUndefined()
    expect(sourceHost('ip6', '2001:db8:1:2::7')).toBe('2001:0db8:0001:0002::/64')
    expect(sourceHost('ip6', '2001:0db8:0001:0002:ffff:0:0:1')).toBe('2001:0db8:0001:0002::/64')
    expect(sourceHost('ip6', '2001:db8::1')).toBe('2001:0db8:0000:0000::/64')
    expect(sourceHost('ip6', '::ffff:203.0.113.9')).toBe('203.0.113.9')
    expect(sourceHost('ip6', '::ffff:cb00:7109')).toBe('203.0.113.9')
    expect(sourceHost('ip6', '::ffff:127.0.0.1')).toBeUndefined()
  })
})
