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
 *    observed address) and a free local port it will dial from, held until the dial
 *    (`holdTcpPort`).
 * 2. The other answers with its own `{ ip, port }`, if it has a reason to talk to the
 *    asker directly (`wanted`: by default, the relayed connection carries a chat stream).
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
 * relayed connection may ask; one attempt per peer a minute and four at once. An answer
 * makes this peer send SYNs to the address in the offer, and peer ids are free to make:
 * so it answers only a peer it has a reason to talk to (`wanted`), and at most 30 a
 * minute from all peers together. Private ranges stay allowed (a LAN, the NAT test's
 * "internet" in 10/8): those two rules are what keeps a stranger from scanning our LAN.
 *
 * A punched connection is tagged in the peer store (`PUNCHED_TAG`): the connection
 * trimmer and libp2p's pruner close connections to the peers of lowest tag value first,
 * and inbound before outbound, which the answering side's connection is (it upgraded as
 * the responder); made again it would cost a relayed connection and another punch.
 */
import { createServer } from 'node:net'
import { lpStream, RateLimiter } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import { z } from 'zod'
import type { RefusalCode } from '@conf-chat/protocol'
import type { ComponentLogger, Connection, Libp2pEvents, Logger, PeerId, PeerStore, Startable, Stream, TypedEventTarget } from '@libp2p/interface'
import type { ConnectionManager, Registrar, TransportManager } from '@libp2p/interface-internal'
import { RefusalError } from '../errors.js'
import { delay, dialLimit, timeLimit } from '../utils/index.js'
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
/**
 * Punches answered a minute, from all peers: the per-peer limit alone bounds nothing
 * (peer ids are free), and each answer sends SYNs where the asker says.
 */
export const PUNCH_ANSWERS_PER_MINUTE = 30
/**
 * How long an answer waits for the asker to become wanted: the asker opens its chat
 * stream and the punch on the relayed connection at about the same time, and either may
 * be negotiated first here. Well within the asker's OFFER_TIMEOUT_MS.
 */
const WANTED_WAIT_MS = 2_000
const WANTED_POLL_MS = 50
/** Protocols of a relayed connection that are no reason to punch: this one's (libp2p's identify and ping are not `/conf-chat/`). */
const NOT_WANTED_PROTOCOLS = new Set([PUNCH_PROTOCOL])
/** The peer-store tag of a peer we punched through to; its value counts in the trimmer's order. */
export const PUNCHED_TAG = 'conf-chat-punched'
/** Above a routing-table peer (kad-dht's 1: a DHT server is dialled again at once), below kad-dht's closest peers (50). */
export const PUNCHED_TAG_VALUE = 10
/** A conversation's pauses; after that a new message goes through the relay and punches again. */
const PUNCHED_TAG_TTL_MS = 60 * 60_000
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
  /** The punched peer's tag (PUNCHED_TAG). */
  peerStore: Pick<PeerStore, 'merge'>
  /** The dial goes straight to the transport: libp2p's dial queue keeps only its own options (no local port). */
  transportManager: Pick<TransportManager, 'dial'>
  events: TypedEventTarget<Libp2pEvents>
  logger: ComponentLogger
}

export interface HolePunchInit {
  /** This peer's public IPv4 address as public peers see it (its router's); undefined while unknown. */
  publicIp: () => string | undefined
  /**
   * Whether this peer has a reason to talk to `peer` directly, asked when it asks for a
   * punch over `relayed`. @default `carriesChat`: the relayed connection carries a
   * `/conf-chat/` stream (chat) besides the punch
   */
  wanted?: (peer: PeerId, relayed: Connection) => boolean
  /** @default PUNCH_ANSWERS_PER_MINUTE */
  answersPerMinute?: number
  /** A free local TCP port to dial from, held until released. @default holdTcpPort */
  holdPort?: () => Promise<PortHold>
}

/** A local TCP port kept from others until `release()` (which may be called more than once). */
export interface PortHold {
  port: number
  release: () => Promise<void>
}

export interface HolePunchStats {
  /** Attempts made (either side). */
  attempts: number
  /** Attempts that ended with a direct connection. */
  direct: number
  /** Attempts whose dial failed (the NATs did not allow it): chat stays relayed. */
  failed: number
  /** Requests refused (not over a relay, too soon, too many, not wanted, malformed). */
  refused: number
  /** The same, by refusal code. */
  refusedFor: Partial<Record<RefusalCode, number>>
}

/** The libp2p service (`services: { punch: holePunch(init) }`). */
export function holePunch (init: HolePunchInit): (components: HolePunchComponents) => HolePuncher {
  return components => new HolePuncher(components, init)
}

export class HolePuncher implements Startable {
  readonly stats: HolePunchStats = { attempts: 0, direct: 0, failed: 0, refused: 0, refusedFor: {} }
  private readonly c: HolePunchComponents
  private readonly init: HolePunchInit
  private readonly log: Logger
  private readonly limit = new PeerWorkLimit({ intervalMs: PUNCH_INTERVAL_MS, concurrent: MAX_CONCURRENT_PUNCHES })
  /** Answers of the minute, from all peers (consume() throws past them). */
  private readonly answers: RateLimiter
  private readonly wanted: (peer: PeerId, relayed: Connection) => boolean
  private stopped = new AbortController()

  constructor (components: HolePunchComponents, init: HolePunchInit) {
    this.c = components
    this.init = init
    this.log = components.logger.forComponent('conf-chat:network:hole-punch')
    this.answers = new RateLimiter({ points: init.answersPerMinute ?? PUNCH_ANSWERS_PER_MINUTE, duration: 60 })
    this.wanted = init.wanted ?? carriesChat
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
      const hold = await this.holdPort()
      try {
        const signal = timeLimit(OFFER_TIMEOUT_MS, { signal: this.stopped.signal })
        const stream = await relayed.newStream(PUNCH_PROTOCOL, { runOnLimitedConnection: true, signal })
        const lp = lpStream(stream, { maxDataLength: MAX_PUNCH_FRAME_BYTES })
        await lp.write(encodeOffer({ ip, port: hold.port }), { signal })
        const theirs = decodeOffer((await lp.read({ signal })).subarray())
        await stream.close({ signal }).catch(() => {})
        if (await this.dial(peer, theirs, hold, true)) this.closeLater(peer, relayed)
      } finally {
        await hold.release()
      }
    } finally {
      this.end()
    }
  }

  /** The relayed connection closes once what it carried has had time to be acked, and only while the direct one is still up: else the relay is all there is. */
  private closeLater (peer: PeerId, relayed: Connection): void {
    setTimeout(() => {
      const connections = this.c.connectionManager.getConnections(peer)
      if (!connections.some(c => c.status === 'open' && !isRelayed(c.remoteAddr))) return
      if (connections.includes(relayed)) relayed.close().catch(() => {})
    }, RELAYED_CLOSE_DELAY_MS).unref()
  }

  /**
   * The answering side: only over a relayed connection, for a peer we want to talk to
   * directly, within the limits above. Each refusal has its code (in the log and the stats;
   * the asker sees its stream reset).
   */
  private async answer (stream: Stream, relayed: Connection): Promise<void> {
    const peer = relayed.remotePeer
    const ip = this.init.publicIp()
    if (!isRelayed(relayed.remoteAddr)) { this.refuse(stream, peer, 'malformed', 'not over a relay'); return }
    if (ip == null) { this.refuse(stream, peer, 'not-ready', 'own public address not known yet'); return }
    if (!this.begin(peer)) { this.refuse(stream, peer, 'rate-limited', 'one a minute per peer, four at once'); return }
    try {
      const signal = timeLimit(OFFER_TIMEOUT_MS, { signal: this.stopped.signal })
      if (!await this.becomesWanted(peer, relayed, signal)) { this.refuse(stream, peer, 'not-listed', 'no reason to talk to this peer directly'); return }
      const lp = lpStream(stream, { maxDataLength: MAX_PUNCH_FRAME_BYTES })
      let theirs: PunchOffer
      try {
        theirs = decodeOffer((await lp.read({ signal })).subarray())
      } catch (err: any) {
        this.refuse(stream, peer, 'malformed', err.message)
        return
      }
      if (!this.takeAnswer()) { this.refuse(stream, peer, 'rate-limited', `${this.init.answersPerMinute ?? PUNCH_ANSWERS_PER_MINUTE} answers a minute from all peers`); return }
      const hold = await this.holdPort()
      try {
        await lp.write(encodeOffer({ ip, port: hold.port }), { signal })
        await stream.close({ signal }).catch(() => {})
        await this.dial(peer, theirs, hold, false)
      } finally {
        await hold.release()
      }
    } finally {
      this.end()
    }
  }

  private refuse (stream: Stream, peer: PeerId, code: RefusalCode, why: string): void {
    this.stats.refused++
    this.stats.refusedFor[code] = (this.stats.refusedFor[code] ?? 0) + 1
    this.log('punch asked by %p refused (%s): %s', peer, code, why)
    stream.abort(new RefusalError(code, `punch refused: ${why}`))
  }

  /** Whether `peer` is wanted, or becomes so within WANTED_WAIT_MS (its chat stream may be negotiated after the punch's). */
  private async becomesWanted (peer: PeerId, relayed: Connection, signal: AbortSignal): Promise<boolean> {
    const until = Date.now() + WANTED_WAIT_MS
    while (!this.wanted(peer, relayed)) {
      if (Date.now() >= until || signal.aborted || relayed.status === 'closed') return false
      await delay(WANTED_POLL_MS, { signal }).catch(() => {})
    }
    return true
  }

  /** Whether an answer of the minute is left (and if so, takes it). */
  private takeAnswer (): boolean {
    try {
      this.answers.consume('all')
      return true
    } catch {
      return false
    }
  }

  /**
   * Dial `peer` at its offer from the port held: whether a direct connection came of it.
   * The hold ends just before the dial binds the port (@libp2p/tcp cannot take a bound
   * socket): only another process binding that very port in between can take it, and
   * then the dial fails with EADDRINUSE. Another port would not do: the other side dials
   * the one we offered, and only a SYN from that port opens our router to its SYN.
   */
  private async dial (peer: PeerId, to: PunchOffer, hold: PortHold, initiator: boolean): Promise<boolean> {
    const addr = multiaddr(`/ip4/${to.ip}/tcp/${to.port}/p2p/${peer.toString()}`)
    const started = Date.now()
    const limit = dialLimit(PUNCH_DIAL_TIMEOUT_MS, this.stopped.signal)
    try {
      await hold.release()
      // localPort reaches net.connect through @libp2p/tcp's dial options, initiator the upgrader
      // (the answering side is the responder of noise, multistream-select and yamux)
      await this.c.transportManager.dial(addr, {
        signal: limit.signal,
        localPort: hold.port,
        ...(initiator ? {} : { initiator: false })
      } as Parameters<TransportManager['dial']>[1])
      this.stats.direct++
      this.log('direct connection to %p through the NATs after %d ms', peer, Date.now() - started)
      await this.tag(peer)
      return true
    } catch (err: any) {
      this.stats.failed++
      if (err.code === 'EADDRINUSE') this.log('no direct connection to %p: port %d was taken between its hold and the dial', peer, hold.port)
      else this.log('no direct connection to %p (%s): staying on the relay', peer, err.message)
      return false
    } finally {
      limit.clear()
    }
  }

  /** Mark `peer` as punched through to, so that its connection is kept (PUNCHED_TAG). */
  private async tag (peer: PeerId): Promise<void> {
    await this.c.peerStore.merge(peer, { tags: { [PUNCHED_TAG]: { value: PUNCHED_TAG_VALUE, ttl: PUNCHED_TAG_TTL_MS } } })
      .catch(err => { this.log('could not tag %p as punched: %s', peer, err.message) })
  }

  /** Whether an attempt with `peer` may start now (and if so, it is counted as started). */
  private begin (peer: PeerId): boolean {
    if (!this.limit.begin(peer)) return false
    this.stats.attempts++
    return true
  }

  private end (): void { this.limit.end() }

  private async holdPort (): Promise<PortHold> {
    return await (this.init.holdPort ?? holdTcpPort)()
  }
}

/**
 * The default `wanted`: the relayed connection carries a negotiated `/conf-chat/` stream
 * other than the punch, that is a chat stream (the only other one that runs over a relay):
 * the asker dialled us to chat. A peer that only asks for punches is not answered.
 */
export function carriesChat (_peer: PeerId, relayed: Connection): boolean {
  return relayed.streams.some(s => s.protocol?.startsWith('/conf-chat/') === true && !NOT_WANTED_PROTOCOLS.has(s.protocol))
}

export function encodeOffer (offer: PunchOffer): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(offer))
}

/** An offer from the network, checked; throws on anything else. */
export function decodeOffer (bytes: Uint8Array): PunchOffer {
  return offerSchema.parse(JSON.parse(new TextDecoder().decode(bytes)))
}

/**
 * A TCP port the kernel picks, held by a listener until `release()`. The port is offered
 * before the dial (the whole exchange over the relay, up to seconds): a port found free
 * and let go at once could meanwhile be taken by another process, and the dial fail. A
 * listener keeps other binds and the kernel's picks for outgoing connections off it; a
 * connection that reaches it is closed at once. `host`: where it listens, all addresses
 * by default (the dial binds the port on all of them).
 */
export async function holdTcpPort (host?: string): Promise<PortHold> {
  const server = createServer(socket => { socket.destroy() })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen({ port: 0, host }, () => { server.off('error', reject); resolve() })
  })
  server.unref()
  const address = server.address()
  if (address == null || typeof address !== 'object') {
    server.close()
    throw new Error('no port')
  }
  let released: Promise<void> | undefined
  return {
    port: address.port,
    release: async () => {
      released ??= new Promise(resolve => { server.close(() => { resolve() }) })
      await released
    }
  }
}
