/**
 * Finding a dead connection when it is used, not by pinging every connection all the time.
 *
 * libp2p's connection monitor pings every connection on a timer; this peer does not run
 * it (see peer.ts): at 10 s it was a quarter of an idle peer's CPU, and it grows with the
 * number of connections. A host that vanished without a FIN or RST (a
 * cut link, a laptop lid, a NAT that forgot the mapping) leaves a connection that looks
 * open: every stream opened on it waits for an answer that never comes. kad-dht then
 * times out one RPC after another on it, and its adaptive time limit grows with each
 * failure, so reads and writes that need that peer's answer stall for many seconds.
 *
 * So an RPC that timed out without a byte of answer makes its peer suspect: the peer is
 * pinged (libp2p's ping service, on the connection it has) with a short time limit, and
 * if no answer comes, every connection to it is aborted. The next RPC then dials afresh
 * and fails fast (or reaches the peer again). One probe per peer at a time, and at most
 * one per `minIntervalMs`, so a burst of timeouts costs one ping.
 *
 * A peer found dead may mean that this host is the one cut off (a pulled cable, a Wi-Fi
 * gone): then every connection is dead, but only those that RPCs used are found out, and
 * one left unused looks open until it is used (or, after 10 minutes, closed by the
 * inactivity limit). Meanwhile this peer does not see that it lost every connection, nor
 * join again when the link is back (the mailbox read and the friends' notices that follow
 * a rejoin, peer.ts). So a peer that did not answer in time
 * starts a sweep, once per `sweepIntervalMs` at most: three other peers are pinged, and if
 * none of them answers either, every other one (direct connections only). A peer that
 * vanished alone costs three pings; a host cut off finds every dead connection.
 */
import type { Connection, Logger, PeerId, AbortOptions } from '@libp2p/interface'
import { shutdownController, timeLimit } from '../utils/index.js'
import { isRelayed } from './relay.js'

export interface LivenessComponents {
  /** A ping over the peer's connection (libp2p's ping service); resolves the round trip in ms. */
  ping: (peer: PeerId, options: AbortOptions) => Promise<number>
  /** The open connections to a peer. */
  connections: (peer: PeerId) => Connection[]
  /** The peers connected: probed when one is found dead (is this peer cut off?). */
  peers?: () => PeerId[]
  log: Logger
}

export interface LivenessInit {
  /** How long a probe waits for its answer. @default 5000 */
  probeTimeoutMs?: number
  /** Least time between two probes of one peer. @default 10000 */
  minIntervalMs?: number
  /** Least time between two sweeps of every connected peer after a dead one. @default 60000 */
  sweepIntervalMs?: number
  /** @default Date.now */
  now?: () => number
}

/** Long enough for a live peer on a loaded machine (kad-dht's RPCs answer within
 * milliseconds there), short next to kad-dht's own per-RPC limit of 5 s or more. */
export const DEFAULT_PROBE_TIMEOUT_MS = 5_000
export const DEFAULT_PROBE_INTERVAL_MS = 10_000
/** A sweep once a minute at most, and only while peers are found dead. */
export const DEFAULT_SWEEP_INTERVAL_MS = 60_000
/** How many other peers a sweep pings before the rest: one answer says this host is not cut off. */
const SWEEP_FIRST = 3

/** A probe found no answer: the connections to the peer were aborted with this. */
export class DeadConnectionError extends Error {
  override name = 'DeadConnectionError'
}

export class ConnectionLiveness {
  private readonly c: LivenessComponents
  private readonly probeTimeoutMs: number
  private readonly minIntervalMs: number
  private readonly sweepIntervalMs: number
  private readonly now: () => number
  /** When every connected peer was last probed after a dead one. */
  private lastSweep = -Infinity
  /** When each peer was last probed (or is being probed). */
  private readonly probed = new Map<string, number>()
  private readonly controller = shutdownController()
  readonly counts = { probes: 0, dead: 0 }

  constructor (components: LivenessComponents, init: LivenessInit = {}) {
    this.c = components
    this.probeTimeoutMs = init.probeTimeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS
    this.minIntervalMs = init.minIntervalMs ?? DEFAULT_PROBE_INTERVAL_MS
    this.sweepIntervalMs = init.sweepIntervalMs ?? DEFAULT_SWEEP_INTERVAL_MS
    this.now = init.now ?? Date.now
  }

  /** An RPC to `peer` went unanswered: check the connection (in the background). */
  suspect (peer: PeerId): void {
    void this.check(peer, c => c.status === 'open')
  }

  /**
   * Probe `peer` (its connections that `which` picks) unless it was probed within the
   * interval: whether it answered, undefined if it was not probed now.
   */
  private async check (peer: PeerId, which: (c: Connection) => boolean): Promise<boolean | undefined> {
    if (this.controller.signal.aborted) return undefined
    const key = peer.toString()
    const last = this.probed.get(key)
    const now = this.now()
    if (last != null && now - last < this.minIntervalMs) return undefined
    const connections = this.c.connections(peer).filter(which)
    if (connections.length === 0) return undefined
    this.probed.set(key, now)
    this.prune(now)
    return await this.probe(peer, connections)
  }

  /** Stop: probes under way end (their connections are kept), later suspicions are ignored. */
  stop (): void {
    this.controller.abort()
    this.probed.clear()
  }

  /** Whether `peer` answers a ping within the probe limit; if not, abort `connections`. */
  async probe (peer: PeerId, connections: Connection[]): Promise<boolean> {
    this.counts.probes++
    const signal = timeLimit(this.probeTimeoutMs, { signal: this.controller.signal })
    try {
      await this.c.ping(peer, { signal })
      return true
    } catch (err: any) {
      if (this.controller.signal.aborted) return true
      // the remote refusing the ping protocol still answered: the connection is alive
      if (err?.name === 'UnsupportedProtocolError') return true
      this.counts.dead++
      this.c.log('no answer from %p within %d ms (%s): aborting %d connection(s)', peer, this.probeTimeoutMs, err?.message, connections.length)
      const reason = new DeadConnectionError(`no answer to a ping within ${this.probeTimeoutMs} ms`)
      for (const conn of connections) if (conn.status === 'open') conn.abort(reason)
      // no answer in time (not a refusal or a reset): is this host the one cut off?
      if (signal.aborted) void this.sweep(peer)
      return false
    }
  }

  /**
   * `dead` did not answer: is it this host that is cut off? A few other peers are pinged
   * first, and one that answers says no; if none does, every other peer is. Direct
   * connections only (a relay may refuse a ping over the connections it relays).
   */
  private async sweep (dead: PeerId): Promise<void> {
    const now = this.now()
    if (this.c.peers == null || now - this.lastSweep < this.sweepIntervalMs) return
    this.lastSweep = now
    const direct = (c: Connection): boolean => c.status === 'open' && !isRelayed(c.remoteAddr)
    const others = this.c.peers().filter(p => !p.equals(dead))
    const first = others.slice(0, SWEEP_FIRST)
    if ((await Promise.all(first.map(async p => await this.check(p, direct)))).includes(true)) return
    const rest = others.slice(SWEEP_FIRST)
    if (rest.length > 0) this.c.log('%p and %d others did not answer: probing the %d other peers connected', dead, first.length, rest.length)
    for (const p of rest) void this.check(p, direct)
  }

  /** Forget probes older than the interval (the map holds recent peers only). */
  private prune (now: number): void {
    if (this.probed.size < 256) return
    for (const [key, at] of this.probed) if (now - at >= this.minIntervalMs) this.probed.delete(key)
  }
}
