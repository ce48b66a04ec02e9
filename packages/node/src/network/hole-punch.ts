/**
 * A direct connection after a relayed one (hole punching) between two peers behind NATs.
 *
 * libp2p's DCUtR (@libp2p/dcutr) has both peers dial each other's observed address at
 * once, from the port their listener uses, so that each router sees an outgoing
 * connection before the other's packets arrive. Its TCP form needs the listening port to
 * be reused for dialling (SO_REUSEPORT), which Node 20's `net` cannot do: an outgoing
 * connection gets a fresh port, its router maps that port, and the other side's packets
 * for the advertised one are dropped. (It also skips private addresses, so it does
 * nothing on a LAN or in a test network.) This module does the same dance with ports it
 * chooses:
 *
 * 1. The peer that dialled the relayed connection opens `/conf-chat/punch/1.0.0` on it
 *    and offers `{ ip, port }`: its router's address as public peers see it (identify's
 *    observed address) and a free local port it will dial from.
 * 2. The other answers with its own `{ ip, port }`.
 * 3. Both dial each other at once, each from its chosen port (`localPort`). A router that
 *    keeps a connection's source port (masquerade, endpoint-independent mapping) lets the
 *    other's SYN through as part of the connection it just saw go out: a TCP simultaneous
 *    open. The answering side runs the upgrade as the responder (`initiator: false`), so
 *    noise and multistream-select have one initiator.
 * 4. Once the direct connection is up, new chat streams use it (messenger.ts moves a
 *    conversation's stream over); the dialling side closes the relayed connection when
 *    what it carried has had time to be acked (a message lost with it is sent again and
 *    kept once by its id).
 *
 * Behind a router that picks a new port for each connection (symmetric NAT) the SYNs
 * never match: the dial times out and chat stays on the relay. Hostile input: a frame is
 * at most 128 bytes and checked by a schema (an IPv4 address, a port from 1024); only a
 * relayed connection may ask; one attempt per peer a minute and four at once.
 */
import { createServer } from 'node:net'
import { lpStream } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import { z } from 'zod'
import type { ComponentLogger, Connection, Libp2pEvents, Logger, PeerId, Startable, Stream, TypedEventTarget } from '@libp2p/interface'
import type { ConnectionManager, Registrar, TransportManager } from '@libp2p/interface-internal'
import { dialLimit, timeLimit } from '../utils/index.js'
import { isRelayed } from './relay.js'
import { PeerWorkLimit } from './peer-work-limit.js'

export const PUNCH_PROTOCOL = '/conf-chat/punch/1.0.0'
/** An offer is ~40 bytes of JSON. */
const MAX_PUNCH_FRAME_BYTES = 128
/** The exchange of offers, over the relay. */
const OFFER_TIMEOUT_MS = 5_000
/** The dial: TCP retransmits a SYN after 1 s and 3 s; the first may be dropped by a router that has not seen the other side's yet. */
const PUNCH_DIAL_TIMEOUT_MS = 6_000
/** One attempt per peer this often, whoever asks. */
const PUNCH_INTERVAL_MS = 60_000
const MAX_CONCURRENT_PUNCHES = 4
/** After the direct connection: the relayed one closes once what it carried is acked (the messenger's ack limit is 5 s). */
const RELAYED_CLOSE_DELAY_MS = 10_000

/** An address no peer can be at: this host (0/8, 127/8), link-local, multicast, reserved, broadcast. */
function notAPeer (ip: string): boolean {
  const [a, b] = ip.split('.').map(Number) as [number, number]
  return a === 0 || a === 127 || (a === 169 && b === 254) || a >= 224
}

const offerSchema = z.object({
  ip: z.ipv4().refine(ip => !notAPeer(ip), 'not an address a peer can be at'),
  port: z.number().int().min(1024).max(65_535)
}).strict()
export type PunchOffer = z.infer<typeof offerSchema>

/** What the service takes of libp2p's components. */
export interface HolePunchComponents {
  registrar: Pick<Registrar, 'handle' | 'unhandle'>
  connectionManager: Pick<ConnectionManager, 'getConnections'>
  /** The dial goes straight to the transport: libp2p's dial queue keeps only its own options (no local port). */
  transportManager: Pick<TransportManager, 'dial'>
  events: TypedEventTarget<Libp2pEvents>
  logger: ComponentLogger
}

export interface HolePunchInit {
  /** This peer's public IPv4 address as public peers see it (its router's); undefined while unknown. */
  publicIp: () => string | undefined
  /** A free local TCP port to dial from. */
  freePort?: () => Promise<number>
}

export interface HolePunchStats {
  /** Attempts made (either side). */
  attempts: number
  /** Attempts that ended with a direct connection. */
  direct: number
  /** Attempts whose dial failed (the NATs did not allow it): chat stays relayed. */
  failed: number
  /** Requests refused (not over a relay, too soon, too many, malformed). */
  refused: number
}

/** The libp2p service (`services: { punch: holePunch(init) }`). */
export function holePunch (init: HolePunchInit): (components: HolePunchComponents) => HolePuncher {
  return components => new HolePuncher(components, init)
}

export class HolePuncher implements Startable {
  readonly stats: HolePunchStats = { attempts: 0, direct: 0, failed: 0, refused: 0 }
  private readonly c: HolePunchComponents
  private readonly init: HolePunchInit
  private readonly log: Logger
  private readonly limit = new PeerWorkLimit({ intervalMs: PUNCH_INTERVAL_MS, concurrent: MAX_CONCURRENT_PUNCHES })
  private stopped = new AbortController()

  constructor (components: HolePunchComponents, init: HolePunchInit) {
    this.c = components
    this.init = init
    this.log = components.logger.forComponent('conf-chat:network:hole-punch')
  }

  readonly [Symbol.toStringTag] = 'conf-chat:hole-punch'

  async start (): Promise<void> {
    this.stopped = new AbortController()
    await this.c.registrar.handle(PUNCH_PROTOCOL, (stream, connection) => {
      this.answer(stream, connection).catch(err => { this.log('punch asked by %p failed: %s', connection.remotePeer, err.message) })
    }, { runOnLimitedConnection: true, maxInboundStreams: 2, maxOutboundStreams: 2 })
    this.c.events.addEventListener('connection:open', this.onOpen)
  }

  async stop (): Promise<void> {
    this.stopped.abort()
    this.c.events.removeEventListener('connection:open', this.onOpen)
    await this.c.registrar.unhandle(PUNCH_PROTOCOL).catch(() => {})
  }

  /** A relayed connection this peer dialled: try for a direct one. */
  private readonly onOpen = (evt: CustomEvent<Connection>): void => {
    const conn = evt.detail
    if (conn.direction !== 'outbound' || !isRelayed(conn.remoteAddr)) return
    this.punch(conn).catch(err => { this.log('punch to %p failed: %s', conn.remotePeer, err.message) })
  }

  /** The dialling side: offer, read the answer, dial, and close the relayed connection once direct. */
  private async punch (relayed: Connection): Promise<void> {
    const peer = relayed.remotePeer
    const ip = this.init.publicIp()
    if (ip == null || !this.begin(peer)) return
    try {
      const port = await this.freePort()
      const signal = timeLimit(OFFER_TIMEOUT_MS, { signal: this.stopped.signal })
      const stream = await relayed.newStream(PUNCH_PROTOCOL, { runOnLimitedConnection: true, signal })
      const lp = lpStream(stream, { maxDataLength: MAX_PUNCH_FRAME_BYTES })
      await lp.write(encodeOffer({ ip, port }), { signal })
      const theirs = decodeOffer((await lp.read({ signal })).subarray())
      await stream.close({ signal }).catch(() => {})
      if (await this.dial(peer, theirs, port, true)) {
        setTimeout(() => {
          const connections = this.c.connectionManager.getConnections(peer)
          // only while the direct one is still up: else the relay is all there is
          if (!connections.some(c => c.status === 'open' && !isRelayed(c.remoteAddr))) return
          if (connections.includes(relayed)) relayed.close().catch(() => {})
        }, RELAYED_CLOSE_DELAY_MS).unref()
      }
    } finally {
      this.end()
    }
  }

  /** The answering side: only over a relayed connection, within the limits above. */
  private async answer (stream: Stream, relayed: Connection): Promise<void> {
    const peer = relayed.remotePeer
    const ip = this.init.publicIp()
    if (!isRelayed(relayed.remoteAddr) || ip == null || !this.begin(peer)) {
      this.stats.refused++
      stream.abort(new Error('punch refused'))
      return
    }
    try {
      const signal = timeLimit(OFFER_TIMEOUT_MS, { signal: this.stopped.signal })
      const lp = lpStream(stream, { maxDataLength: MAX_PUNCH_FRAME_BYTES })
      let theirs: PunchOffer
      try {
        theirs = decodeOffer((await lp.read({ signal })).subarray())
      } catch (err) {
        this.stats.refused++
        stream.abort(err as Error)
        return
      }
      const port = await this.freePort()
      await lp.write(encodeOffer({ ip, port }), { signal })
      await stream.close({ signal }).catch(() => {})
      await this.dial(peer, theirs, port, false)
    } finally {
      this.end()
    }
  }

  /** Dial `peer` at its offer from `localPort`; whether a direct connection came of it. */
  private async dial (peer: PeerId, to: PunchOffer, localPort: number, initiator: boolean): Promise<boolean> {
    const addr = multiaddr(`/ip4/${to.ip}/tcp/${to.port}/p2p/${peer.toString()}`)
    const started = Date.now()
    const limit = dialLimit(PUNCH_DIAL_TIMEOUT_MS, this.stopped.signal)
    try {
      // localPort reaches net.connect through @libp2p/tcp's dial options, initiator the upgrader
      // (the answering side is the responder of noise, multistream-select and yamux)
      await this.c.transportManager.dial(addr, {
        signal: limit.signal,
        localPort,
        ...(initiator ? {} : { initiator: false })
      } as Parameters<TransportManager['dial']>[1])
      this.stats.direct++
      this.log('direct connection to %p through the NATs after %d ms', peer, Date.now() - started)
      return true
    } catch (err: any) {
      this.stats.failed++
      this.log('no direct connection to %p (%s): staying on the relay', peer, err.message)
      return false
    } finally {
      limit.clear()
    }
  }

  /** Whether an attempt with `peer` may start now (and if so, it is counted as started). */
  private begin (peer: PeerId): boolean {
    if (!this.limit.begin(peer)) return false
    this.stats.attempts++
    return true
  }

  private end (): void { this.limit.end() }

  private async freePort (): Promise<number> {
    return await (this.init.freePort ?? freeTcpPort)()
  }
}

export function encodeOffer (offer: PunchOffer): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(offer))
}

/** An offer from the network, checked; throws on anything else. */
export function decodeOffer (bytes: Uint8Array): PunchOffer {
  return offerSchema.parse(JSON.parse(new TextDecoder().decode(bytes)))
}

/** A TCP port that is free now (the kernel's pick, released at once). */
export async function freeTcpPort (): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, () => {
      const address = server.address()
      server.close(() => { typeof address === 'object' && address != null ? resolve(address.port) : reject(new Error('no port')) })
    })
  })
}
