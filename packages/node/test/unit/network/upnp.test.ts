/**
 * Port forwarding at the home router (UPnP) with a stubbed router and address manager:
 * the listen port is forwarded to this host's address on the router's network, the
 * address announced is the one given (the dial-back's), and closing removes both the
 * announcement and the forwarding; no router, or one that refuses, gives nothing.
 */
import { describe, it, expect } from 'vitest'
import { defaultLogger } from '@libp2p/logger'
import type { Gateway, MapPortOptions } from '@achingbrain/nat-port-mapper'
import type { Multiaddr } from '@multiformats/multiaddr'
import { PortForwarding, type PortForwardingComponents } from '../../../src/network/upnp.js'

interface StubGateway { gateway: Gateway, mapped: Array<{ port: number, host: string, options?: MapPortOptions }>, stopped: number }

function stubGateway (externalPort: number | Error): StubGateway {
  const stub: StubGateway = { mapped: [], stopped: 0, gateway: undefined as unknown as Gateway }
  stub.gateway = {
    id: 'igd', host: '192.168.1.1', port: 5000, family: 'IPv4',
    map: async (port: number, host: string, options?: MapPortOptions) => {
      if (externalPort instanceof Error) throw externalPort
      stub.mapped.push({ port, host, options })
      return { externalHost: '20.0.0.1', externalPort, internalHost: host, internalPort: port, protocol: 'TCP' }
    },
    stop: async () => { stub.stopped++ }
  } as unknown as Gateway
  return stub
}

function addressManager (): { components: PortForwardingComponents, calls: string[] } {
  const calls: string[] = []
  return {
    calls,
    components: {
      addressManager: {
        addPublicAddressMapping: (ih: string, ip: number, eh: string, ep: number) => { calls.push(`add ${ih}:${ip} -> ${eh}:${ep}`) },
        removePublicAddressMapping: (ih: string, ip: number, eh: string, ep: number) => { calls.push(`remove ${ih}:${ip} -> ${eh}:${ep}`) },
        confirmObservedAddr: (ma: Multiaddr, options?: { type?: string }) => { calls.push(`confirm ${ma.toString()} ${options?.type}`) }
      },
      logger: defaultLogger()
    }
  }
}

describe('port forwarding (UPnP)', () => {
  it('forwards the listen port to this host\'s address on the router\'s network and announces the address it is given', async () => {
    const router = stubGateway(40_001)
    const am = addressManager()
    const towards: string[] = []
    const pf = new PortForwarding(am.components, {
      findGateway: async () => router.gateway,
      localAddressTowards: async host => { towards.push(host); return '192.168.1.2' }
    })
    const forwarded = await pf.open(4301)
    expect(forwarded).toEqual({ externalPort: 40_001, internalHost: '192.168.1.2', internalPort: 4301 })
    expect(towards).toEqual(['192.168.1.1'])
    expect(router.mapped).toHaveLength(1)
    expect(router.mapped[0]).toMatchObject({ port: 4301, host: '192.168.1.2', options: { protocol: 'TCP', description: 'conf-chat' } })
    // asked again for the same port: the forwarding it has
    expect(await pf.open(4301)).toBe(forwarded)
    expect(router.mapped).toHaveLength(1)

    // the router's address as the DHT servers saw it, not the one the router reports (20.0.0.1)
    pf.announce('10.214.1.7')
    expect(am.calls).toEqual(['add 192.168.1.2:4301 -> 10.214.1.7:40001', 'confirm /ip4/10.214.1.7/tcp/40001 ip-mapping'])

    await pf.close()
    expect(am.calls.at(-1)).toBe('remove 192.168.1.2:4301 -> 10.214.1.7:40001')
    expect(router.stopped).toBe(1)
    // nothing left to announce
    pf.announce('10.214.1.7')
    expect(am.calls).toHaveLength(3)
  })

  it('gives nothing when no router answers the search', async () => {
    const am = addressManager()
    let searched: AbortSignal | undefined
    const pf = new PortForwarding(am.components, { findGateway: async signal => { searched = signal; return undefined } })
    expect(await pf.open(4301)).toBeUndefined()
    expect(searched).toBeInstanceOf(AbortSignal)
    pf.announce('10.214.1.7')
    expect(am.calls).toEqual([])
  })

  it('gives nothing, and lets the router go, when it refuses to forward', async () => {
    const router = stubGateway(new Error('ConflictInMappingEntry'))
    const am = addressManager()
    const pf = new PortForwarding(am.components, { findGateway: async () => router.gateway, localAddressTowards: async () => '192.168.1.2' })
    expect(await pf.open(4301)).toBeUndefined()
    expect(router.stopped).toBe(1)
    await pf.stop()
    expect(router.stopped).toBe(1)
  })
})
