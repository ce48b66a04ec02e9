/**
 * Is this peer reachable? A dial-back check, as AutoNAT does it: the peer asks DHT servers
 * it is connected to to dial it back, at the address they see it from and the port it
 * listens on, and goes by their answers: one that got through makes it `public` (a DHT
 * server); answers that all failed make it `private` (a DHT client that keeps relay
 * reservations, relay.ts); no answer leaves it `unknown`, a DHT client until the next join.
 *
 * libp2p's AutoNAT services (@libp2p/autonat, @libp2p/autonat-v2) skip private addresses
 * and count an address confirmed only after 4 answers from distinct /16 networks, so on a
 * LAN, in a test network, or in a network with fewer than 4 servers they never decide;
 * this module keeps their rules that protect others (the answering peer dials only the
 * address the request came from, never one named in it, and one peer id: noise checks
 * it) and drops those two.
 *
 * `/conf-chat/dialback/1.0.0`: the asker writes one length-prefixed JSON frame
 * `{ port }` (at most 64 bytes), the answerer dials and writes `{ ok }`. An answerer
 * serves only while it is a DHT server itself, only over a direct connection, one request
 * per peer every 5 s and per source host every 5 s (peer ids are free to make: one host
 * could otherwise ask with a thousand ids and have us dial it a thousand times), 32 at
 * once, each dial within 3 s.
 */
import { lpStream } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import { z } from 'zod'
import type { ComponentLogger, Connection, Libp2pEvents, Logger, PeerId, Startable, Stream, TypedEventTarget } from '@libp2p/interface'
import type { ConnectionManager, Registrar, TransportManager } from '@libp2p/interface-internal'
import { dialLimit, timeLimit, within } from '../utils/index.js'
import { isRelayed } from './relay.js'
import { PeerWorkLimit } from './peer-work-limit.js'

export const DIALBACK_PROTOCOL = '/conf-chat/dialback/1.0.0'
const MAX_DIALBACK_FRAME_BYTES = 64
/** The answerer's dial; the asker waits this and the exchange. */
export const DIALBACK_DIAL_TIMEOUT_MS = 3_000
const DIALBACK_EXCHANGE_TIMEOUT_MS = DIALBACK_DIAL_TIMEOUT_MS + 2_000
/** One dial-back per asking peer, and per host it asks from, this often (an asker with no answer asks again after REACHABILITY_RETRY_MS in peer.ts). */
const DIALBACK_INTERVAL_MS = 5_000
/** A dial to a peer behind NAT waits out its time limit: many joiners at once each hold one. */
const MAX_CONCURRENT_DIALBACKS = 32
/** How long an answer of "got through" waits for its connection to be seen here. */
const DIALBACK_LATE_CONNECTION_MS = 1_000
/** How many servers a check asks (at once). */
export const DIALBACK_ASKED = 3

const requestSchema = z.object({ port: z.number().int().min(1).max(65_535) }).strict()
const answerSchema = z.object({ ok: z.boolean() }).strict()

export type Reached = 'public' | 'private' | 'unknown'

export interface ReachabilityComponents {
  registrar: Pick<Registrar, 'handle' | 'unhandle'>
  connectionManager: Pick<ConnectionManager, 'getConnections'>
  transportManager: Pick<TransportManager, 'dial' | 'listen' | 'getListeners'>
  /** `connection:open`: the asker counts an answer of "reached" only with the dial-back connection seen. */
  events: TypedEventTarget<Libp2pEvents>
  logger: ComponentLogger
}

export interface ReachabilityInit {
  /** Whether this peer answers requests now (a DHT server). */
  serving: () => boolean
}

export interface DialbackStats { answered: number, reached: number, refused: number }

/** The libp2p service (`services: { reachability: reachability(init) }`). */
export function reachability (init: ReachabilityInit): (components: ReachabilityComponents) => DialbackService {
  return components => new DialbackService(components, init)
}

export class DialbackService implements Startable {
  readonly stats: DialbackStats = { answered: 0, reached: 0, refused: 0 }
  private readonly c: ReachabilityComponents
  private readonly init: ReachabilityInit
  private readonly log: Logger
  private readonly limit = new PeerWorkLimit({ intervalMs: DIALBACK_INTERVAL_MS, concurrent: MAX_CONCURRENT_DIALBACKS })
  private stopped = new AbortController()

  constructor (components: ReachabilityComponents, init: ReachabilityInit) {
    this.c = components
    this.init = init
    this.log = components.logger.forComponent('conf-chat:network:reachability')
  }

  readonly [Symbol.toStringTag] = 'conf-chat:reachability'

  async start (): Promise<void> {
    this.stopped = new AbortController()
    await this.c.registrar.handle(DIALBACK_PROTOCOL, (stream, connection) => {
      this.answer(stream, connection).catch(err => { this.log('dial-back for %p failed: %s', connection.remotePeer, err.message) })
    }, { maxInboundStreams: 4, maxOutboundStreams: DIALBACK_ASKED })
  }

  async stop (): Promise<void> {
    this.stopped.abort()
    await this.c.registrar.unhandle(DIALBACK_PROTOCOL).catch(() => {})
  }

  /**
   * Ask up to DIALBACK_ASKED of `servers` (connected DHT servers) to dial this peer back at
   * `port`: `public` as soon as one got through (a slow server, up to the exchange's 5 s,
   * does not hold the answer up), `private` if every answer says it did not, `unknown`
   * without an answer.
   */
  async check (servers: PeerId[], port: number): Promise<Reached> {
    const asked = servers.slice(0, DIALBACK_ASKED)
    const answers: Array<boolean | undefined> = []
    await new Promise<void>(resolve => {
      let left = asked.length
      if (left === 0) resolve()
      for (const peer of asked) {
        void this.ask(peer, port).catch(err => {
          this.log('dial-back asked of %p: no answer (%s)', peer, err.message)
          return undefined
        }).then(answer => {
          answers.push(answer)
          left--
          if (answer === true || left === 0) resolve()
        })
      }
    })
    const given = answers.filter(a => a != null)
    const result: Reached = given.includes(true) ? 'public' : given.length > 0 ? 'private' : 'unknown'
    this.log('reachability: %s (%d asked, %d reached us, %d did not, %d still asked)', result, asked.length, given.filter(a => a).length, given.filter(a => !a).length, asked.length - answers.length)
    return result
  }

  /** Listen on more addresses once started (the relayed ones, when this peer turned out to be private). */
  async listen (addrs: string[]): Promise<void> {
    await this.c.transportManager.listen(addrs.map(a => multiaddr(a)))
  }

  /**
   * Stop listening on relays (a peer found reachable after all): its reservations end, and
   * its relayed addresses go. A relay listener is one with no address but relayed ones (it
   * has none until a relay holds a reservation).
   */
  async unlistenRelays (): Promise<void> {
    const relayListeners = this.c.transportManager.getListeners().filter(l => l.getAddrs().every(isRelayed))
    await Promise.all(relayListeners.map(async l => { await l.close() }))
  }

  /**
   * One server's answer: true only when it says it got through and its connection came in
   * (noise proved its peer id), so a lying server cannot make a peer behind NAT a DHT
   * server; "got through" with no connection seen counts as no answer.
   */
  private async ask (peer: PeerId, port: number): Promise<boolean | undefined> {
    const conn = this.c.connectionManager.getConnections(peer).find(c => c.status === 'open' && !isRelayed(c.remoteAddr))
    if (conn == null) throw new Error('not connected directly')
    let came = false
    let seen = (): void => {}
    const arrived = new Promise<void>(resolve => { seen = resolve })
    const onOpen = ({ detail }: CustomEvent<Connection>): void => {
      if (detail.direction === 'inbound' && detail.remotePeer.equals(peer) && !isRelayed(detail.remoteAddr)) {
        came = true
        seen()
      }
    }
    this.c.events.addEventListener('connection:open', onOpen)
    const signal = timeLimit(DIALBACK_EXCHANGE_TIMEOUT_MS, { signal: this.stopped.signal })
    const stream = await conn.newStream(DIALBACK_PROTOCOL, { signal })
    try {
      const lp = lpStream(stream, { maxDataLength: MAX_DIALBACK_FRAME_BYTES })
      await lp.write(encode({ port }), { signal })
      const { ok } = answerSchema.parse(decode((await lp.read({ signal })).subarray()))
      await stream.close({ signal }).catch(() => {})
      // the answerer's dial is done when its side of the handshake is: ours ends a moment
      // later (noise's last message is the dialler's), and the answer may come first
      if (ok && !came) await within(arrived, DIALBACK_LATE_CONNECTION_MS, undefined, { signal })
      if (ok && !came) this.log('%p says it reached us, but no connection from it came in', peer)
      return ok ? (came ? true : undefined) : false
    } catch (err: any) {
      stream.abort(err)
      throw err
    } finally {
      this.c.events.removeEventListener('connection:open', onOpen)
    }
  }

  /** The answering side: dial the asker at the address its request came from, once. */
  private async answer (stream: Stream, conn: Connection): Promise<void> {
    const ip = conn.remoteAddr.getComponents().find(c => c.name === 'ip4' || c.name === 'ip6')
    const host = ip?.value == null ? undefined : sourceHost(ip.name, ip.value)
    if (!this.init.serving() || isRelayed(conn.remoteAddr) || ip == null || !this.limit.begin(host == null ? conn.remotePeer : [conn.remotePeer, host])) {
      this.log('dial-back for %p refused (serving %s, over %a, %d running; one a peer and a host every %d ms)', conn.remotePeer, this.init.serving(), conn.remoteAddr, this.limit.active, DIALBACK_INTERVAL_MS)
      this.stats.refused++
      stream.abort(new Error('dial-back refused'))
      return
    }
    try {
      const signal = timeLimit(DIALBACK_EXCHANGE_TIMEOUT_MS, { signal: this.stopped.signal })
      const lp = lpStream(stream, { maxDataLength: MAX_DIALBACK_FRAME_BYTES })
      let port: number
      try {
        port = requestSchema.parse(decode((await lp.read({ signal })).subarray())).port
      } catch (err) {
        this.stats.refused++
        stream.abort(err as Error)
        return
      }
      const ok = await this.dialBack(`/${ip.name}/${ip.value}/tcp/${port}/p2p/${conn.remotePeer.toString()}`)
      this.stats.answered++
      if (ok) this.stats.reached++
      await lp.write(encode({ ok }), { signal })
      await stream.close({ signal }).catch(() => {})
    } finally {
      this.limit.end()
    }
  }

  /** A new connection to `addr` (noise checks the peer id), closed at once: whether it came up. */
  private async dialBack (addr: string): Promise<boolean> {
    const { signal, clear } = dialLimit(DIALBACK_DIAL_TIMEOUT_MS, this.stopped.signal)
    const dialling = this.c.transportManager.dial(multiaddr(addr), { signal })
    try {
      // the limit holds even where a dial does not end at its signal (one was seen to hang past it)
      const conn = await Promise.race([dialling, new Promise<never>((_resolve, reject) => {
        if (signal.aborted) reject(signal.reason)
        signal.addEventListener('abort', () => { reject(signal.reason) }, { once: true })
      })])
      await conn.close().catch(() => {})
      return true
    } catch (err: any) {
      this.log('dial-back to %s failed: %s', addr, err.message)
      dialling.then(async conn => { await conn.close() }).catch(() => {})
      return false
    } finally {
      clear()
    }
  }

}

/**
 * The host a dial-back request came from, as its limit counts it: an IPv4 address, or the
 * /64 of an IPv6 one (a host is given a /64 and may use any address in it). Undefined for
 * this host (loopback): every peer of a local network of test peers asks from 127.0.0.1,
 * and whoever runs them has this host already.
 */
export function sourceHost (family: string, ip: string): string | undefined {
  if (family === 'ip4') return ip.startsWith('127.') ? undefined : ip
  // the address's 16 bytes, parsed by multiaddr (after its one-byte protocol code)
  const bytes = multiaddr(`/ip6/${ip}`).bytes.subarray(1, 17)
  // an IPv4 host in IPv6 form (::ffff:a.b.c.d) is that IPv4 host
  if (bytes.subarray(0, 10).every(b => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff) return sourceHost('ip4', [...bytes.subarray(12)].join('.'))
  if (bytes.every((b, i) => b === (i === 15 ? 1 : 0))) return undefined // ::1
  return `${Buffer.from(bytes.subarray(0, 8)).toString('hex').replace(/(.{4})(?!$)/g, '$1:')}::/64`
}

function encode (value: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(value))
}

function decode (bytes: Uint8Array): unknown {
  return JSON.parse(new TextDecoder().decode(bytes))
}
