/**
 * Only news from kad-dht's closer-peer lists reaches the peer store and the routing table.
 *
 * kad-dht's network emits a `peer` event for every closer peer of every response; each
 * one queues a routing-table job and is re-emitted as a discovery that libp2p merges into
 * the peer store (a write lock, a read, a write to the datastore, even when nothing
 * changed). At 10 peers a get brought about 100 of them, nearly all for peers whose
 * addresses the node already had. The filter lets an event through when the peer is new,
 * when it brings an address not seen with it before, or when the peer was last let
 * through more than `repeatAfterMs` ago (so a peer that left the routing table is tried
 * again now and then); it drops the rest.
 */
import type { PeerInfo } from '@libp2p/interface'

export interface DiscoveryFilterInit {
  /** Peers remembered (least recently let through forgotten first). @default 2048 */
  maxPeers?: number
  /** A peer with no new address is let through again after this long. @default 300000 */
  repeatAfterMs?: number
  /** The clock. @default Date.now */
  now?: () => number
}

/** Far more than a routing table holds at the network sizes this project runs (k=20 per
 * bucket, ~160 peers at 1,000 nodes); bounded because closer-peer lists come from the network. */
export const DEFAULT_DISCOVERY_MAX_PEERS = 2048
/** Five minutes: kad-dht's own self-query interval, the pace at which it looks for peers anyway. */
export const DEFAULT_DISCOVERY_REPEAT_MS = 5 * 60_000
/** Addresses remembered per peer: a peer lists a few (one per interface and transport). */
const MAX_ADDRS_PER_PEER = 16

interface Seen { addrs: Set<string>, at: number }

export class DiscoveryFilter {
  private readonly seen = new Map<string, Seen>()
  private readonly maxPeers: number
  private readonly repeatAfterMs: number
  private readonly now: () => number
  /** Events let through and dropped, for tests and benchmarks. */
  readonly counts = { passed: 0, dropped: 0 }

  constructor (init: DiscoveryFilterInit = {}) {
    this.maxPeers = init.maxPeers ?? DEFAULT_DISCOVERY_MAX_PEERS
    this.repeatAfterMs = init.repeatAfterMs ?? DEFAULT_DISCOVERY_REPEAT_MS
    this.now = init.now ?? Date.now
  }

  /** Whether the discovery of `peer` is news (and remember it if so). */
  admit (peer: PeerInfo): boolean {
    const key = peer.id.toString()
    const now = this.now()
    const seen = this.seen.get(key)
    const addrs = peer.multiaddrs.map(ma => ma.toString())
    if (seen != null && now - seen.at < this.repeatAfterMs && addrs.every(a => seen.addrs.has(a))) {
      this.counts.dropped++
      return false
    }
    const next = new Set(seen != null && now - seen.at < this.repeatAfterMs ? seen.addrs : [])
    for (const a of addrs) if (next.size < MAX_ADDRS_PER_PEER) next.add(a)
    // re-insert: Map order is the order of last admission, the oldest is evicted first
    this.seen.delete(key)
    this.seen.set(key, { addrs: next, at: now })
    if (this.seen.size > this.maxPeers) this.seen.delete(this.seen.keys().next().value as string)
    this.counts.passed++
    return true
  }

  /** Forget `peerId` (its next discovery passes). */
  forget (peerId: string): void {
    this.seen.delete(peerId)
  }
}
