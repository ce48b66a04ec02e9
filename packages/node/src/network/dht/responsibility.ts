/**
 * Whether this peer is among the peers responsible for a DHT key, as far as its routing
 * table can tell: fewer than `rank` of the peers it knows are closer to the key than it
 * is (Kademlia's XOR distance between SHA-256 ids, as kad-dht measures it).
 *
 * Holders store a record or a set item only under a key they are responsible for. Before
 * this check, a writer could send anything to any peer it liked: 1,000 records of 120 KiB
 * under fresh keys went onto one chosen holder, which nobody would ever ask for them.
 *
 * The check errs towards storing. A routing table holds real peers only, so a peer that
 * truly is among the `rank` closest never counts `rank` closer ones; a peer that knows
 * few peers (a small network, a peer just joined) takes every key.
 */
import { kadId, compareDistance } from '../records/quorums.js'
import type { PeerId } from '@libp2p/interface'

/** The part of kad-dht's routing table the check reads. */
export interface RoutingView {
  closestPeers: (kadId: Uint8Array, options?: { count?: number }) => PeerId[]
}

export class NotResponsibleError extends Error {
  override name = 'NotResponsibleError'
  readonly code = 'not-responsible'
  constructor (key: string, rank: number) {
    super(`this peer is not among the ${rank} closest to ${key.slice(0, 80)}`)
  }
}

export class Responsibility {
  private readonly self: Uint8Array
  private readonly table: () => RoutingView | undefined

  /** `table`: the routing table, read at each check (undefined before the DHT started: every key is taken). */
  constructor (peerId: PeerId, table: () => RoutingView | undefined) {
    this.self = kadId(peerId.toMultihash().bytes)
    this.table = table
  }

  /** How many known peers are closer to `key` than this peer, counted up to `limit`. */
  closerPeers (key: Uint8Array, limit: number): number {
    const target = kadId(key)
    const closest = this.table()?.closestPeers(target, { count: limit }) ?? []
    return closest.filter(p => compareDistance(target, kadId(p.toMultihash().bytes), this.self) < 0).length
  }

  /**
   * Whether `peer` is among the `rank` closest to `key` of the peers this one knows, itself
   * included (a holder asking whether a peer is one of the set's holders too).
   */
  isAmongClosest (peer: PeerId, key: Uint8Array, rank: number): boolean {
    return this.amongClosest([peer], key, rank).length > 0
  }

  /** Those of `peers` that are among the `rank` closest to `key` (as `isAmongClosest`), with one look at the table. */
  amongClosest (peers: PeerId[], key: Uint8Array, rank: number): PeerId[] {
    if (peers.length === 0) return []
    const target = kadId(key)
    const known = (this.table()?.closestPeers(target, { count: rank + 1 }) ?? []).map(p => ({ p, id: kadId(p.toMultihash().bytes) }))
    return peers.filter(peer => {
      const theirs = kadId(peer.toMultihash().bytes)
      const closer = known.filter(k => !k.p.equals(peer) && compareDistance(target, k.id, theirs) < 0).length +
        (compareDistance(target, this.self, theirs) < 0 ? 1 : 0)
      return closer < rank
    })
  }

  /** Whether this peer is among the `rank` closest peers to `key` that it knows of. */
  isResponsible (key: Uint8Array, rank: number): boolean {
    return this.closerPeers(key, rank) < rank
  }
}
