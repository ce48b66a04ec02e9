/**
 * Keeps a peer's connections near a target, as go-libp2p's basic connection manager does
 * with its low and high water marks: when more than `highWater` connections are open,
 * the least useful are closed until `lowWater` remain.
 *
 * libp2p 3's own connection manager has one number, `maxConnections`, and it is a cap,
 * not a target: at the cap every inbound connection is refused, and its pruner runs only
 * when a new connection pushes the count over it. A low cap would make the bootstrap peer
 * refuse newcomers (every joiner dials it) and DHT servers refuse queriers; a high one
 * bounds nothing in practice. So the cap stays high (peer.ts) and this trims below it.
 * Without it a peer keeps a connection to every peer its lookups ever reached until the
 * TCP inactivity limit closes it: at 100 peers, 64 per peer (p50) and 100 at the
 * bootstrap peer (`npm run bench:scale`), each with its muxer and encryption state.
 *
 * Never closed:
 * - a connection younger than `gracePeriodMs` (a dial made for a lookup or a message is
 *   about to be used);
 * - a connection with a stream open other than identify and ping (a chat stream, a DHT
 *   RPC or a set transfer under way; the DHT's pooled streams close after a few idle
 *   seconds, so such a connection can go at a later trim);
 * - a connection to a peer tagged keep-alive (kad-dht tags the k peers closest to us, and
 *   libp2p dials a keep-alive peer again as soon as its connection closes);
 * - a connection to a peer that dialed us again right after we closed one: it keeps us
 *   alive (we are among its k closest), and closing it again would only repeat the dial,
 *   once a grace period, for as long as both run. (Its effect alone is not measured: at
 *   100 peers with marks of 48/64, `npm run bench:scale` sampled idle CPU per peer while
 *   the first trims ran, 0.26 % without this rule and 0.41 % with it, against 0.03 % with
 *   no trimming; with the default marks below, 0.028 %.)
 *
 * The others go in the order libp2p's own pruner uses: the lowest sum of peer tag values
 * first (kad-dht tags the peers of its routing table; hole-punch.ts a peer it punched
 * through to, whose direct connection is inbound on the side that answered the punch and
 * would otherwise go before outbound ones, though making it again costs a relayed
 * connection and another punch), then fewer streams, inbound before outbound, newest
 * first.
 */
import { KEEP_ALIVE, type Connection, type Logger, type PeerId, type Tag } from '@libp2p/interface'
import { LRUCache } from 'lru-cache'
import { shutdownController } from '../utils/index.js'

export interface ConnectionTrimmerComponents {
  /** Every open connection. */
  connections: () => Connection[]
  /** A peer's tags (from the peer store); an unknown peer has none. */
  tags: (peer: PeerId) => Promise<Map<string, Tag>>
  log: Logger
}

export interface ConnectionTrimmerInit {
  /** Trimming leaves this many connections (fewer if too many are protected). */
  lowWater?: number
  /** Trimming starts when more than this many are open. */
  highWater?: number
  /** A connection this young is never closed. */
  gracePeriodMs?: number
  /** Still over the high water mark after a trim (connections in use or too young): look
   * again this much later (or when the youngest comes of age, if sooner). */
  recheckMs?: number
  /** A peer that dials again this soon after its connection was trimmed wants it kept. */
  redialWindowMs?: number
  /** ...and is kept this long. */
  wantedForMs?: number
  /** @default Date.now */
  now?: () => number
}

/**
 * Three to five times kad-dht's k (20). Without any trimming a typical peer keeps about 65
 * connections at 100, 200 and 300 peers (`npm run bench:scale`: TCP's inactivity limit
 * closes the rest), but the bootstrap peer keeps one to every peer that ever joined (100
 * at 100 peers, 300 at 300). Marks of 48/64 at 100 peers cost put p50 520 -> 824 ms and
 * idle CPU per peer 0.03 -> 0.41 % (the trims and the dials they cause); with 64/96, put
 * 606 ms, idle 0.028 %, the bootstrap peer 88 connections (same session, 2026-12-04). So
 * the marks bound the outliers and leave a typical peer's connections alone.
 */
export const DEFAULT_LOW_WATER = 64
export const DEFAULT_HIGH_WATER = 96
/** A lookup's dials are used within a second or two; a minute also spans a user's pause
 * between two messages to a new contact. */
export const DEFAULT_GRACE_PERIOD_MS = 60_000
/** The DHT's pooled streams close after 5 s idle (stream-pool.ts): a connection they kept
 * from a trim can go at the next look. */
export const DEFAULT_RECHECK_MS = 10_000

/** libp2p's reconnect queue dials a keep-alive peer again within a second or two (its
 * retries back off from 1 s); a dial for other work comes later, or never. */
export const DEFAULT_REDIAL_WINDOW_MS = 5_000
/** Long enough that the pair settles, short enough that a peer which no longer needs the
 * connection (kad-dht's closest peers change as peers come and go) can be trimmed again. */
export const DEFAULT_WANTED_FOR_MS = 60 * 60_000
/** Peers remembered for the redial check and as wanted (a few times the high water mark). */
const REMEMBERED_PEERS = 1024

/** Streams of these protocols do not keep a connection open (libp2p's own list). */
const CLOSABLE_PROTOCOLS = new Set(['/ipfs/id/1.0.0', '/ipfs/id/push/1.0.0', '/ipfs/ping/1.0.0'])

export class ConnectionTrimmer {
  private readonly c: ConnectionTrimmerComponents
  readonly lowWater: number
  readonly highWater: number
  readonly gracePeriodMs: number
  readonly recheckMs: number
  private readonly now: () => number
  private readonly controller = shutdownController()
  /** The trim under way (one at a time). */
  private running?: Promise<void>
  /** Another trim was asked for while one ran. */
  private again = false
  /** The next look while over the high water mark. */
  private timer?: ReturnType<typeof setTimeout>
  /** When we closed a connection to each peer, for the redial check (bounded). */
  private readonly closedAt: LRUCache<string, number>
  /** Peers that dialed again right after a trim, and since when. */
  private readonly wanted: LRUCache<string, number>
  private readonly redialWindowMs: number
  private readonly wantedForMs: number
  readonly counts = { trims: 0, closed: 0, redialed: 0 }

  constructor (components: ConnectionTrimmerComponents, init: ConnectionTrimmerInit = {}) {
    this.c = components
    this.lowWater = init.lowWater ?? DEFAULT_LOW_WATER
    this.highWater = init.highWater ?? DEFAULT_HIGH_WATER
    this.gracePeriodMs = init.gracePeriodMs ?? DEFAULT_GRACE_PERIOD_MS
    this.recheckMs = init.recheckMs ?? DEFAULT_RECHECK_MS
    this.redialWindowMs = init.redialWindowMs ?? DEFAULT_REDIAL_WINDOW_MS
    this.wantedForMs = init.wantedForMs ?? DEFAULT_WANTED_FOR_MS
    this.closedAt = new LRUCache({ max: REMEMBERED_PEERS })
    this.wanted = new LRUCache({ max: REMEMBERED_PEERS })
    this.now = init.now ?? Date.now
    if (!(this.lowWater >= 0 && this.highWater >= this.lowWater)) {
      throw new RangeError(`connection low water ${this.lowWater} must be >= 0 and <= high water ${this.highWater}`)
    }
  }

  /**
   * A connection opened (or a planned look is due): trim if there are too many. Cheap
   * when there are not. A peer that comes back within `redialWindowMs` of a trim wants the
   * connection (libp2p dials a keep-alive peer again at once, and kad-dht keeps its
   * closest peers alive): it is kept from then on, or the two would close and dial
   * forever.
   */
  onConnectionOpen (conn?: Pick<Connection, 'remotePeer'>): void {
    if (conn != null) {
      const id = conn.remotePeer.toString()
      const closedAt = this.closedAt.get(id)
      if (closedAt != null) {
        this.closedAt.delete(id)
        if (this.now() - closedAt <= this.redialWindowMs) {
          this.wanted.set(id, this.now())
          this.counts.redialed++
        }
      }
    }
    if (this.c.connections().length <= this.highWater || this.controller.signal.aborted) return
    if (this.running != null) {
      this.again = true
      return
    }
    this.running = this.trim()
      .catch(err => { this.c.log.error('trimming connections failed - %e', err) })
      .finally(() => {
        this.running = undefined
        if (this.again) {
          this.again = false
          this.onConnectionOpen()
        }
      })
  }

  private isWanted (peer: PeerId, now: number): boolean {
    const since = this.wanted.get(peer.toString())
    return since != null && now - since < this.wantedForMs
  }

  /** Resolves when no trim is under way. */
  async idle (): Promise<void> {
    while (this.running != null) await this.running
  }

  stop (): void {
    this.controller.abort()
    clearTimeout(this.timer)
  }

  private async trim (): Promise<void> {
    const connections = this.c.connections()
    const excess = connections.length - this.lowWater
    if (connections.length <= this.highWater) return
    const now = this.now()
    let youngest = Infinity
    const unprotected = connections.filter(conn => {
      if (conn.status !== 'open' || inUse(conn) || this.isWanted(conn.remotePeer, now)) return false
      const age = now - conn.timeline.open
      if (age < this.gracePeriodMs) {
        youngest = Math.min(youngest, age)
        return false
      }
      return true
    })
    // the tags of the peers that could go (a peer-store read each)
    const values = new Map<string, number>()
    const keepAlive = new Set<string>()
    await Promise.all([...new Map(unprotected.map(c => [c.remotePeer.toString(), c.remotePeer])).entries()].map(async ([id, peer]) => {
      const tags = await this.c.tags(peer).catch(() => new Map<string, Tag>())
      if (tags.has(KEEP_ALIVE)) keepAlive.add(id)
      values.set(id, [...tags.values()].reduce((sum, tag) => sum + tag.value, 0))
    }))
    if (this.controller.signal.aborted) return
    const candidates = unprotected.filter(conn => !keepAlive.has(conn.remotePeer.toString()))
    candidates.sort((a, b) =>
      (values.get(a.remotePeer.toString()) ?? 0) - (values.get(b.remotePeer.toString()) ?? 0) ||
      a.streams.length - b.streams.length ||
      Number(a.direction === 'outbound') - Number(b.direction === 'outbound') ||
      b.timeline.open - a.timeline.open)
    const toClose = candidates.slice(0, excess)
    for (const conn of toClose) this.closedAt.set(conn.remotePeer.toString(), now)
    this.counts.trims++
    this.counts.closed += toClose.length
    this.c.log('%d connections open, over %d: closing %d (%d protected)', connections.length, this.highWater, toClose.length, connections.length - candidates.length)
    await Promise.all(toClose.map(async conn => {
      await conn.close({ signal: AbortSignal.timeout(1_000) }).catch(err => { conn.abort(err) })
    }))
    // still over the high water mark (connections in use or too young): look again later
    if (connections.length - toClose.length > this.highWater && this.timer == null && !this.controller.signal.aborted) {
      this.timer = setTimeout(() => {
        this.timer = undefined
        this.onConnectionOpen()
      }, youngest === Infinity ? this.recheckMs : Math.min(this.recheckMs, this.gracePeriodMs - youngest + 1))
      this.timer.unref?.()
    }
  }
}

/** Has a stream open that the connection is kept for (not identify or ping). */
function inUse (conn: Connection): boolean {
  return conn.streams.some(s => s.protocol == null || !CLOSABLE_PROTOCOLS.has(s.protocol))
}
