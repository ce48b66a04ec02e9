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
import type { PeerId } from '@libp2p/interface'

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
  const server = circuitRelayServer({
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
  return components => renewReservationsAfresh(server(components))
}

/** What renewReservationsAfresh uses of the server's reservation store (not part of its API). */
interface ReservationStoreInternals {
  reservations: { get: (peer: PeerId) => { signal: { clear: () => void } } | undefined, delete: (peer: PeerId) => void }
  reserve: (peer: PeerId, ...rest: unknown[]) => unknown
}

/**
 * libp2p's relay server renews a reservation by re-timing its timer (retimeable-signal
 * 1.0.1), and each re-timing leaves the previous one's timer running (it listens with a
 * handler the next re-timing does not remove). So a reservation renewed twice was deleted
 * one lifetime after its first renewal, while the peer behind NAT, which renews 5 minutes
 * before the end, went on advertising it: with a 1 h lifetime, unreachable through that
 * relay from 1 h 55 min to 2 h 45 min, and so on. Configured around here (libp2p is not
 * patched): a renewal ends the reservation's timer (a timer never re-timed stops cleanly)
 * and makes the reservation anew, with a fresh timer.
 */
export function renewReservationsAfresh (service: CircuitRelayService): CircuitRelayService {
  const store = (service as unknown as { reservationStore?: ReservationStoreInternals }).reservationStore
  if (typeof store?.reserve !== 'function' || typeof store.reservations?.get !== 'function') {
    throw new Error('@libp2p/circuit-relay-v2 changed: its server has no reservationStore to renew reservations with (see renewReservationsAfresh)')
  }
  const reserve = store.reserve.bind(store)
  store.reserve = (peer, ...rest) => {
    const existing = store.reservations.get(peer)
    if (existing != null) {
      existing.signal.clear()
      store.reservations.delete(peer)
    }
    return reserve(peer, ...rest)
  }
  return service
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
