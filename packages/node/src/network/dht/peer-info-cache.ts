/**
 * kad-dht's `peerStore.getInfo` answered from memory while the entry is unchanged.
 *
 * kad-dht builds the closer-peer list of every response it sends (and the first peers of
 * every query) with `getClosestPeersOffline`, which reads each of the k closest peers from
 * the peer store: a read lock, a datastore read and a protobuf decode per peer, 20 per
 * RPC. In a profile of bench:dht at 10 peers (after stream pooling and the discovery
 * filter) the peer store was still 5.5 % of the peers' busy CPU, mostly these reads. The
 * cache keeps what `getInfo` returned until libp2p reports the peer updated
 * (`peer:update`), for at most `ttlMs`.
 */
import type { PeerId, PeerInfo, PeerStore, TypedEventTarget, Libp2pEvents, AbortOptions } from '@libp2p/interface'

export interface PeerInfoCacheInit {
  /** An entry is read again after this long, changed or not. @default 60000 */
  ttlMs?: number
  /** Entries kept (oldest dropped first). @default 1024 */
  maxPeers?: number
  /** The clock. @default Date.now */
  now?: () => number
}

/** A minute: the peer store drops addresses by age in hours, so an entry this old is current enough. */
export const DEFAULT_PEER_INFO_TTL_MS = 60_000
/** Several routing tables' worth; bounded because the peers come from the network. */
export const DEFAULT_PEER_INFO_MAX_PEERS = 1024

export class PeerInfoCache {
  private readonly store: Pick<PeerStore, 'getInfo'>
  private readonly entries = new Map<string, { info: PeerInfo, at: number }>()
  private readonly ttlMs: number
  private readonly maxPeers: number
  private readonly now: () => number
  /** Reads answered from memory and from the store, for tests and benchmarks. */
  readonly counts = { hits: 0, misses: 0 }

  constructor (components: { peerStore: Pick<PeerStore, 'getInfo'>, events: TypedEventTarget<Libp2pEvents> }, init: PeerInfoCacheInit = {}) {
    this.store = components.peerStore
    this.ttlMs = init.ttlMs ?? DEFAULT_PEER_INFO_TTL_MS
    this.maxPeers = init.maxPeers ?? DEFAULT_PEER_INFO_MAX_PEERS
    this.now = init.now ?? Date.now
    components.events.addEventListener('peer:update', (evt) => { this.entries.delete(evt.detail.peer.id.toString()) })
  }

  async getInfo (peerId: PeerId, options?: AbortOptions): Promise<PeerInfo> {
    const key = peerId.toString()
    const entry = this.entries.get(key)
    if (entry != null && this.now() - entry.at < this.ttlMs) {
      this.counts.hits++
      return entry.info
    }
    this.counts.misses++
    const info = await this.store.getInfo(peerId, options)
    this.entries.delete(key)
    this.entries.set(key, { info, at: this.now() })
    if (this.entries.size > this.maxPeers) this.entries.delete(this.entries.keys().next().value as string)
    return info
  }
}
