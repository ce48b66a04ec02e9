/**
 * Half-open inbound connections: a TCP connection whose handshake (multistream-select,
 * Noise, yamux) has not finished. libp2p counts them and refuses every new inbound
 * connection once 10 are pending, for as long as they stay (up to its upgrade time
 * limit): ten idle sockets, reopened as they time out, kept every new peer from joining.
 *
 * The gate (libp2p's connection gater) admits every new connection, and makes room for it
 * first: with `perAddress` pending from its address, that address's oldest pending one is
 * closed; with `total` pending in all, the oldest of all is. So idle sockets never keep a
 * newcomer out: to crowd one out, an attacker must open `total` connections within the
 * few milliseconds an honest handshake takes. An honest handshake on a LAN or loopback
 * takes milliseconds; libp2p's upgrade time limit (INBOUND_UPGRADE_TIMEOUT_MS below)
 * bounds the rest.
 */
import type { Logger, MultiaddrConnection } from '@libp2p/interface'

export interface InboundGateInit {
  /** Pending connections from one address. */
  perAddress: number
  /** Pending connections in all. */
  total: number
}

/** Pending connections at most from one address, and in all (the peer's settings). */
export const INBOUND_GATE: InboundGateInit = { perAddress: 8, total: 64 }

/**
 * An inbound connection must finish its handshake (multistream-select, Noise, yamux) in
 * this long (libp2p's default is 10 s): milliseconds on a LAN, well under a second across
 * the internet.
 */
export const INBOUND_UPGRADE_TIMEOUT_MS = 5_000

export class InboundGate {
  /** Pending connections, oldest first (a Map keeps insertion order), and their address. */
  private readonly pending = new Map<MultiaddrConnection, string>()
  private readonly perAddress = new Map<string, number>()
  readonly counts = { admitted: 0, upgraded: 0, evicted: 0 }

  constructor (private readonly init: InboundGateInit, private readonly log: Logger) {}

  /** Pending connections now, in all and from `address`. */
  pendingCount (address?: string): number {
    return address == null ? this.pending.size : this.perAddress.get(address) ?? 0
  }

  /** `connectionGater.denyInboundConnection`: never denies; makes room for the new connection. */
  admit (maConn: MultiaddrConnection): boolean {
    const address = addressOf(maConn)
    if (this.pendingCount(address) >= this.init.perAddress) this.evictOldest(a => a === address, 'from its address')
    if (this.pending.size >= this.init.total) this.evictOldest(() => true, 'in all')
    this.pending.set(maConn, address)
    this.perAddress.set(address, this.pendingCount(address) + 1)
    this.counts.admitted++
    maConn.addEventListener('close', () => { this.settle(maConn) }, { once: true })
    return false
  }

  /** `connectionGater.denyInboundUpgradedConnection`: the handshake is done; never denies. */
  upgraded (maConn: MultiaddrConnection): boolean {
    if (this.settle(maConn)) this.counts.upgraded++
    return false
  }

  private settle (maConn: MultiaddrConnection): boolean {
    const address = this.pending.get(maConn)
    if (address == null) return false
    this.pending.delete(maConn)
    const left = this.pendingCount(address) - 1
    if (left > 0) this.perAddress.set(address, left)
    else this.perAddress.delete(address)
    return true
  }

  private evictOldest (matches: (address: string) => boolean, why: string): void {
    for (const [maConn, address] of this.pending) {
      if (!matches(address)) continue
      this.settle(maConn)
      this.counts.evicted++
      this.log('closing the oldest half-open connection %s (too many pending %s)', address, why)
      maConn.abort(new Error('handshake not finished: closed to make room'))
      return
    }
  }
}

/** The remote IP address (the whole multiaddr if it has none). */
function addressOf (maConn: MultiaddrConnection): string {
  const host = maConn.remoteAddr.getComponents().find(c => c.name === 'ip4' || c.name === 'ip6')
  return host?.value ?? maConn.remoteAddr.toString()
}
