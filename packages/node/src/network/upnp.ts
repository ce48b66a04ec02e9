/**
 * Asking the home router to forward a port (UPnP Internet Gateway Device), for a peer that
 * the dial-back check (reachability.ts) found not reachable: most home routers offer it.
 * With a port forwarded, the peer is asked for again at the router's port; if the DHT
 * servers' dial then gets through, the peer is reachable after all: a DHT server, dialled
 * at the router's address, with no relay between it and its friends.
 *
 * The address announced is the one the dial-back proved: the router's address as the DHT
 * servers see it, at the forwarded port. The address the router reports for itself is not
 * used (behind a second NAT, or a router that is wrong about it, it is not where peers
 * reach this one). The forwarding is asked for with a lifetime and renewed before it ends
 * (@achingbrain/nat-port-mapper, the client libp2p's own @libp2p/upnp-nat uses; that
 * service is not used: it maps every address at start, before anything is known, and
 * refuses routers whose outside address is private, as a test network's are), and removed
 * when the peer stops.
 *
 * A router is looked for only by a peer the dial-back found not reachable, so a peer on a
 * LAN or on loopback never sends the search (SSDP multicast on its local networks).
 */
import { createSocket } from 'node:dgram'
import type { Gateway } from '@achingbrain/nat-port-mapper'
import { multiaddr } from '@multiformats/multiaddr'
import type { ComponentLogger, Logger, Startable } from '@libp2p/interface'
import type { AddressManager } from '@libp2p/interface-internal'
import { timeLimit } from '../utils/index.js'

/** How long a search for the router waits for one to answer (a router answers in well under 100 ms). */
export const GATEWAY_SEARCH_MS = 2_000
/** How long asking the router (each request) may take. */
const GATEWAY_REQUEST_MS = 5_000
/** The forwarding's lifetime at the router; renewed before it ends. */
const MAPPING_TTL_S = 60 * 60
/** How long an address the dial-back proved is announced; each check (each join) proves it again. */
const ANNOUNCE_TTL_MS = 24 * 60 * 60_000

export interface PortForwardingComponents {
  addressManager: Pick<AddressManager, 'addPublicAddressMapping' | 'removePublicAddressMapping' | 'confirmObservedAddr'>
  logger: ComponentLogger
}

/** Finds the router (the first to answer within `signal`); stubbed in unit tests. */
export type FindGateway = (signal: AbortSignal) => Promise<Gateway | undefined>

export interface PortForwardingInit {
  findGateway?: FindGateway
  /** This host's address on the router's network (the interface a packet to the router leaves by). */
  localAddressTowards?: (host: string) => Promise<string>
}

export interface Forwarded {
  /** The router's port that reaches this peer's listen port. */
  externalPort: number
  internalHost: string
  internalPort: number
}

/** The libp2p service (`services: { upnp: portForwarding() }`). */
export function portForwarding (init: PortForwardingInit = {}): (components: PortForwardingComponents) => PortForwarding {
  return components => new PortForwarding(components, init)
}

export class PortForwarding implements Startable {
  private readonly c: PortForwardingComponents
  private readonly log: Logger
  private readonly findGateway: FindGateway
  private readonly localAddressTowards: (host: string) => Promise<string>
  private gateway?: Gateway
  private forwarded?: Forwarded
  private announced?: { ip: string, port: number }

  constructor (components: PortForwardingComponents, init: PortForwardingInit) {
    this.c = components
    this.log = components.logger.forComponent('conf-chat:network:upnp')
    this.findGateway = init.findGateway ?? findFirstGateway
    this.localAddressTowards = init.localAddressTowards ?? localAddressTowards
  }

  start (): void {}

  async stop (): Promise<void> {
    await this.close()
  }

  /**
   * Ask the router to forward a port to `internalPort` on this host. Returns the
   * forwarding, or undefined where no router answers or it refuses (each said in the log).
   */
  async open (internalPort: number, signal?: AbortSignal): Promise<Forwarded | undefined> {
    if (this.forwarded?.internalPort === internalPort) return this.forwarded
    const gateway = await this.findGateway(timeLimit(GATEWAY_SEARCH_MS, { signal })).catch(() => undefined)
    if (gateway == null) {
      this.log('no router answered a UPnP search within %d ms', GATEWAY_SEARCH_MS)
      return undefined
    }
    try {
      const internalHost = await this.localAddressTowards(gateway.host)
      const mapping = await gateway.map(internalPort, internalHost, {
        protocol: 'TCP',
        description: 'conf-chat',
        ttl: MAPPING_TTL_S,
        signal: timeLimit(GATEWAY_REQUEST_MS, { signal })
      })
      this.gateway = gateway
      this.forwarded = { externalPort: mapping.externalPort, internalHost, internalPort }
      this.log('the router at %s forwards its port %d to %s:%d', gateway.host, mapping.externalPort, internalHost, internalPort)
      return this.forwarded
    } catch (err: any) {
      this.log('the router at %s refused to forward a port: %s', gateway.host, err.message)
      await gateway.stop({ signal: timeLimit(GATEWAY_REQUEST_MS) }).catch(() => {})
      return undefined
    }
  }

  /**
   * Announce the router's address `ip` (as DHT servers see this peer) at the forwarded port:
   * a dial-back proved that it reaches this peer.
   */
  announce (ip: string): void {
    const f = this.forwarded
    if (f == null) return
    this.unannounce()
    this.c.addressManager.addPublicAddressMapping(f.internalHost, f.internalPort, ip, f.externalPort, 'tcp')
    this.c.addressManager.confirmObservedAddr(multiaddr(`/ip4/${ip}/tcp/${f.externalPort}`), { type: 'ip-mapping', ttl: ANNOUNCE_TTL_MS })
    this.announced = { ip, port: f.externalPort }
  }

  /** Remove the forwarding at the router (it did not make the peer reachable, or the peer stops). */
  async close (): Promise<void> {
    this.unannounce()
    const gateway = this.gateway
    this.gateway = undefined
    this.forwarded = undefined
    // unmaps every port it mapped, and stops renewing them
    await gateway?.stop({ signal: timeLimit(GATEWAY_REQUEST_MS) }).catch(err => { this.log('could not remove the forwarding: %s', err.message) })
  }

  private unannounce (): void {
    const a = this.announced
    const f = this.forwarded
    if (a == null || f == null) return
    this.c.addressManager.removePublicAddressMapping(f.internalHost, f.internalPort, a.ip, a.port, 'tcp')
    this.announced = undefined
  }
}

/** The first Internet Gateway Device to answer a UPnP (SSDP) search. */
async function findFirstGateway (signal: AbortSignal): Promise<Gateway | undefined> {
  // loaded when first needed: most peers never search (the XML and SSDP code stays unloaded)
  const { upnpNat } = await import('@achingbrain/nat-port-mapper')
  const client = upnpNat({ autoRefresh: true })
  for await (const gateway of client.findGateways({ signal })) {
    if (gateway.family === 'IPv4') return gateway
  }
  return undefined
}

/** The local address a datagram to `host` would leave from (a connected UDP socket sends nothing). */
async function localAddressTowards (host: string): Promise<string> {
  const socket = createSocket('udp4')
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject)
      socket.connect(9, host, () => { resolve() })
    })
    return socket.address().address
  } finally {
    socket.close()
  }
}
