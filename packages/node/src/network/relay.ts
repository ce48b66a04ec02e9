/**
 * Relaying for peers that cannot be dialled (behind a home router's NAT): a reachable
 * peer (the supernode) runs libp2p's circuit-relay-v2 server; a peer that is not
 * reachable reserves a slot on a relay and is dialled at
 * `/p2p/<relay>/p2p-circuit/p2p/<peer>`.
 *
 * The limits are chosen for chat. A relayed connection carries DMs, acks, receipts and
 * presence notices of one pair of users, never DHT traffic (a peer that is not reachable
 * is a DHT client: nobody queries it, and it queries over its own direct connections).
 * libp2p's defaults (2 minutes and 128 KiB per relayed connection) would end a
 * conversation's connection every few minutes; chat bytes are small (an envelope is at
 * most 64 KiB), so the data limit is set where one relayed connection carries a long
 * conversation, and the duration where a relay holding `maxReservations` peers is not
 * held by idle ones. A connection that reaches a limit is closed by the relay; the next
 * message dials a new one (the outbox and acks keep each message exactly once).
 */
import { circuitRelayServer, circuitRelayTransport, type CircuitRelayService } from '@libp2p/circuit-relay-v2'

export interface RelayLimits {
  /** Peers that may hold a reservation at once. */
  maxReservations: number
  /** How long a reservation lasts before the peer must renew it (libp2p renews it before it ends). */
  reservationTtlMs: number
  /** Most time one relayed connection stays open. */
  durationLimitMs: number
  /** Most bytes one relayed connection carries, both ways together (libp2p counts them on one counter). */
  dataLimitBytes: number
}

export const DEFAULT_RELAY_LIMITS: RelayLimits = {
  maxReservations: 128,
  reservationTtlMs: 60 * 60_000,
  durationLimitMs: 10 * 60_000,
  dataLimitBytes: 4 * 1024 * 1024
}

/** Relayed connections one peer may open (or be sent) through this relay at once. */
const RELAY_STREAMS_PER_CONNECTION = 16

/** How many relays a peer that is not reachable keeps a reservation on (fewer when fewer exist). */
export const RELAY_RESERVATIONS = 2

/** How long a peer that is not reachable waits at join for its first reservation before it goes on without one. */
export const FIRST_RESERVATION_WAIT_MS = 10_000

/** Whether other peers can dial this one: `public` listens and serves the DHT; `private`
 * (behind NAT) is a DHT client reached through relays; `auto`: find out at each join
 * (reachability.ts). */
export type Reachability = 'auto' | 'public' | 'private'

/** The relay server service for libp2p, with `limits` over the defaults. */
export function relayServer (limits: Partial<RelayLimits> = {}): ReturnType<typeof circuitRelayServer> {
  const l = { ...DEFAULT_RELAY_LIMITS, ...limits }
  return circuitRelayServer({
    // relayed connections per connection at once: libp2p's defaults let one peer open hundreds
    maxInboundHopStreams: RELAY_STREAMS_PER_CONNECTION,
    maxOutboundStopStreams: RELAY_STREAMS_PER_CONNECTION,
    reservations: {
      maxReservations: l.maxReservations,
      reservationTtl: l.reservationTtlMs,
      applyDefaultLimit: true,
      defaultDurationLimit: l.durationLimitMs,
      defaultDataLimit: BigInt(l.dataLimitBytes)
    }
  })
}

/** The transport that dials relayed addresses and, for a `private` peer, keeps reservations. */
export function relayTransport (): ReturnType<typeof circuitRelayTransport> {
  return circuitRelayTransport({ reservationCompletionTimeout: 5_000 })
}

/** The listen addresses that ask the transport for `count` reservations on relays it finds. */
export function relayListenAddrs (count = RELAY_RESERVATIONS): string[] {
  return Array.from({ length: count }, () => '/p2p-circuit')
}

/** Whether `addr` is a relayed address (`.../p2p-circuit/...`). */
export function isRelayed (addr: { toString: () => string }): boolean {
  return addr.toString().includes('/p2p-circuit')
}

export type { CircuitRelayService }
