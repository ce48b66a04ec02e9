/**
 * What a peer does with the dial-back's answer when its router forwards a port (UPnP),
 * with stubbed libp2p services: not reachable at its own port, it asks the router, then
 * the servers again at the forwarded port; reachable there, it is a DHT server announcing
 * the router's address, with no relay reservations; not reachable there either, the
 * forwarding is removed and it is a DHT client on relays.
 */
import { describe, it, expect, vi, afterEach } from 'vitest'
import { defaultLogger } from '@libp2p/logger'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import type { PeerId } from '@libp2p/interface'
import { ReachabilityKeeper, reachabilityRetryMs } from '../../../src/network/reachability-keeper.js'
import type { Forwarded } from '../../../src/network/upnp.js'

afterEach(() => { vi.useRealTimers() })

interface World { libp2p: any, checks: number[], events: string[] }

/** A peer listening at 192.168.1.2:4301 whose servers get through at `open` ports only; a router forwarding 40001 when `router`. */
function world (open: number[], router: boolean): World {
  const checks: number[] = []
  const events: string[] = []
  let mode = 'client'
  const forwarded: Forwarded = { externalPort: 40_001, internalHost: '192.168.1.2', internalPort: 4301 }
  const libp2p = {
    getMultiaddrs: () => [multiaddr('/ip4/192.168.1.2/tcp/4301')],
    getConnections: () => [],
    services: {
      dht: { getMode: () => mode, setMode: async (m: string) => { mode = m; events.push(`mode ${m}`) } },
      reachability: {
        check: async (_servers: PeerId[], port: number) => { checks.push(port); return open.includes(port) ? 'public' : 'private' },
        listen: async () => { events.push('relay reservations') },
        unlistenRelays: async () => { events.push('no relay reservations') }
      },
      upnp: {
        open: async (port: number) => { events.push(`forward ${port}`); return router ? forwarded : undefined },
        announce: (ip: string) => { events.push(`announce ${ip}`) },
        close: async () => { events.push('unforward') }
      }
    }
  }
  return { libp2p, checks, events }
}

function keeper (): { keeper: ReachabilityKeeper, changed: string[] } {
  const changed: string[] = []
  const k = new ReachabilityKeeper({
    setting: 'auto',
    host: '192.168.1.2',
    fixedMode: false,
    dhtProtocol: '/conf-chat/kad/1.0.0',
    isDhtServer: () => true,
    running: () => true,
    changed: reached => { changed.push(reached) },
    log: Object.assign(() => {}, { error: () => {}, trace: () => {}, enabled: false }) as any
  })
  k.observedIp = '10.214.1.7'
  return { keeper: k, changed }
}

async function find (w: World, k: ReachabilityKeeper): Promise<string | undefined> {
  vi.useFakeTimers()
  const server = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
  const result = k.find(w.libp2p, server, new AbortController().signal)
  await vi.runAllTimersAsync()
  return await result
}

describe('reachability with a router that forwards ports (UPnP)', () => {
  it('reachable at the forwarded port: a DHT server announcing the router\'s address there, no relay reservations', async () => {
    const w = world([40_001], true)
    const { keeper: k, changed } = keeper()
    expect(await find(w, k)).toBe('server')
    expect(w.checks).toEqual([4301, 40_001])
    expect(w.events).toEqual(['forward 4301', 'announce 10.214.1.7', 'mode server'])
    expect(k.reached).toBe('public')
    expect(changed).toEqual(['public'])
  })

  it('not reachable there either: the forwarding is removed; a DHT client on relays', async () => {
    const w = world([], true)
    const { keeper: k, changed } = keeper()
    expect(await find(w, k)).toBeUndefined()
    expect(w.checks).toEqual([4301, 40_001])
    expect(w.events).toEqual(['forward 4301', 'unforward', 'relay reservations'])
    expect(k.reached).toBe('private')
    expect(changed).toEqual(['private'])
  })

  it('no router: a DHT client on relays, asked once', async () => {
    const w = world([], false)
    const { keeper: k } = keeper()
    await find(w, k)
    expect(w.checks).toEqual([4301])
    expect(w.events).toEqual(['forward 4301', 'relay reservations'])
    expect(k.reached).toBe('private')
  })

  it('found reachable at a later join (the router forwards now): its relay reservations end', async () => {
    const open: number[] = []
    const w = world(open, true)
    w.libp2p.services.upnp.open = async () => undefined
    const { keeper: k, changed } = keeper()
    await find(w, k)
    expect(k.reached).toBe('private')
    open.push(4301)
    expect(await find(w, k)).toBe('server')
    expect(w.events).toEqual(['relay reservations', 'mode server', 'no relay reservations'])
    expect(changed).toEqual(['private', 'public'])
  })

  it('no answer at join: the join goes on as a DHT client, and the check is made again in the background (5 s, 5 s, then from 30 s doubling)', async () => {
    const w = world([4301], true)
    const answers: Array<'unknown' | 'public'> = ['unknown', 'unknown', 'public']
    w.libp2p.services.reachability.check = async (_servers: PeerId[], port: number) => { w.checks.push(port); return answers.shift() }
    const { keeper: k, changed } = keeper()
    const switched: string[] = []
    ;(k as any).init.switched = (mode: string) => { switched.push(mode) }
    vi.useFakeTimers()
    const server = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    // the join's check returns at once with no answer (no waiting for the retries)
    expect(await k.find(w.libp2p, server, new AbortController().signal)).toBeUndefined()
    expect(w.checks).toEqual([4301])
    expect(k.reached).toBe('unknown')
    await vi.advanceTimersByTimeAsync(5_000)
    expect(w.checks).toEqual([4301, 4301])
    await vi.advanceTimersByTimeAsync(5_000)
    expect(w.checks).toEqual([4301, 4301, 4301])
    expect(k.reached).toBe('public')
    expect(switched).toEqual(['server'])
    expect(changed).toEqual(['public'])
    expect([0, 1, 2, 3, 4, 10].map(reachabilityRetryMs)).toEqual([5_000, 5_000, 30_000, 60_000, 120_000, 600_000])
  })

  it('one check at a time: a find while one runs gets its answer; a find replaces a retry that is due', async () => {
    const w = world([4301], false)
    const held: Array<(r: 'unknown' | 'public' | 'private') => void> = []
    w.libp2p.services.reachability.check = async (_servers: PeerId[], port: number) => {
      w.checks.push(port)
      return await new Promise(resolve => { held.push(resolve) })
    }
    const { keeper: k, changed } = keeper()
    vi.useFakeTimers()
    const server = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    const signal = new AbortController().signal
    // a rejoin's check in the background, then another join's while it runs: one check
    const first = k.find(w.libp2p, server, signal)
    const second = k.find(w.libp2p, server, signal)
    await vi.advanceTimersByTimeAsync(0)
    expect(w.checks).toEqual([4301])
    held.shift()!('unknown')
    expect(await first).toBeUndefined()
    expect(await second).toBeUndefined()
    // a retry is due in 5 s; a join's check now takes its place
    const third = k.find(w.libp2p, server, signal)
    await vi.advanceTimersByTimeAsync(0)
    held.shift()!('public')
    expect(await third).toBe('server')
    await vi.advanceTimersByTimeAsync(60_000)
    expect(w.checks).toEqual([4301, 4301])
    expect(k.reached).toBe('public')
    expect(changed).toEqual(['public'])
  })

  it('a check that ends after the peer stopped changes nothing', async () => {
    const w = world([4301], false)
    let answer: (r: 'public') => void = () => {}
    w.libp2p.services.reachability.check = async () => await new Promise(resolve => { answer = resolve })
    const { keeper: k, changed } = keeper()
    const stop = new AbortController()
    const found = k.find(w.libp2p, peerIdFromPrivateKey(await generateKeyPair('Ed25519')), stop.signal)
    stop.abort()
    answer('public')
    expect(await found).toBeUndefined()
    expect(k.reached).toBe('unknown')
    expect(w.events).toEqual([])
    expect(changed).toEqual([])
  })

  it('private: listens on one relay per relay it knows, up to two (asked for more than exist, libp2p searches without pause)', async () => {
    const w = world([], false)
    const listened: string[][] = []
    w.libp2p.services.reachability.listen = async (addrs: string[]) => { listened.push(addrs) }
    const events = new EventTarget()
    w.libp2p.addEventListener = events.addEventListener.bind(events)
    const k = new ReachabilityKeeper({ ...(keeper().keeper as any).init, setting: 'private' })
    k.watch(w.libp2p)
    await vi.waitFor(() => { expect(listened).toEqual([['/p2p-circuit']]) })
    const relay = async (): Promise<PeerId> => peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    const identify = (peerId: PeerId, protocols: string[]): void => {
      events.dispatchEvent(new CustomEvent('peer:identify', { detail: { peerId, protocols, connection: { remoteAddr: multiaddr('/ip4/10.214.1.1/tcp/4300') } } }))
    }
    const HOP = '/libp2p/circuit/relay/0.2.0/hop'
    identify(await relay(), [HOP])
    identify(await relay(), ['/conf-chat/kad/1.0.0']) // not a relay
    await Promise.resolve()
    expect(listened).toHaveLength(1)
    identify(await relay(), [HOP])
    await vi.waitFor(() => { expect(listened).toEqual([['/p2p-circuit'], ['/p2p-circuit']]) })
    identify(await relay(), [HOP])
    await Promise.resolve()
    expect(listened).toHaveLength(2)
  })

  it('reachable at its own port: the router is not asked', async () => {
    const w = world([4301], true)
    const { keeper: k } = keeper()
    expect(await find(w, k)).toBe('server')
    expect(w.events).toEqual(['mode server'])
  })
})
