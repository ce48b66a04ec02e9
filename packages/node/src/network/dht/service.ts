/**
 * kad-dht as this project runs it: kad-dht itself, unchanged, given a view of libp2p's
 * components whose connection manager hands out pooled DHT streams (stream-pool.ts), and
 * with the closer peers of its responses filtered before they reach the routing table and
 * the peer store (discovery-filter.ts), the peer-store reads behind every response's
 * closer-peer list answered from memory while unchanged (peer-info-cache.ts), and the
 * routing table offered only peers this peer is connected to (see `tableFromConnections`).
 */
import { kadDHT, type KadDHT, type KadDHTComponents, type KadDHTInit } from '@libp2p/kad-dht'
import type { PeerId, PeerInfo } from '@libp2p/interface'
import { DhtStreamPool, type StreamPoolInit, type StreamPoolStats } from './stream-pool.js'
import { DiscoveryFilter, type DiscoveryFilterInit } from './discovery-filter.js'
import { PeerInfoCache, type PeerInfoCacheInit } from './peer-info-cache.js'
import { overriding } from '../../utils/index.js'

/** kad-dht's default k (its KBUCKET_SIZE, not exported from the package's index). */
const K_BUCKET_SIZE = 20

export interface DhtServiceInit {
  /** kad-dht's options; `protocol` is required (the pool serves that protocol only). */
  kad: KadDHTInit & { protocol: string }
  /** Pool options; `false` turns pooling off (a new stream per RPC, kad-dht's default). */
  pool?: Omit<StreamPoolInit, 'protocol'> | false
  /** Discovery filter options; `false` lets every closer peer through (kad-dht's default). */
  discovery?: DiscoveryFilterInit | false
  /** Peer-info cache options; `false` reads the peer store every time (kad-dht's default). */
  peerInfo?: PeerInfoCacheInit | false
  /** Called when an RPC to a peer timed out with no answer (through the pool). */
  onStall?: (peer: PeerId) => void
  /**
   * How often kad-dht refreshes its routing table (a lookup of a random id per common
   * prefix length), ms. kad-dht has the option (RoutingTableRefresh's `refreshInterval`)
   * but its init does not pass one through: 5 minutes always. @default kad-dht's
   */
  tableRefreshIntervalMs?: number
  /**
   * Once the routing table holds k peers, offer it only peers this peer has a connection
   * to (they answered one of its queries, or dialed it), as go-libp2p's DHT does. kad-dht
   * offers it every closer peer of every response too, and a new contact is pinged before
   * it is added (and, in a full bucket, up to 3 old contacts): a dial and a noise
   * handshake each, for a peer only heard of. At 200 peers (`npm run bench:scale`) those
   * pings were the largest source of new connections while lookups ran. Below k (a small
   * network, or a peer that has just joined) every peer heard of is still offered, so a
   * small network's tables hold every server. Closer peers reach the peer store either
   * way (their addresses), so a lookup can dial them. The number is the table size from
   * which the rule holds; `false` offers every peer always (kad-dht's way). @default k (20)
   */
  tableFromConnections?: number | false
}

/** What the wiring did so far, for tests and benchmarks. */
export interface DhtServiceStats {
  pool?: StreamPoolStats
  discovery?: { passed: number, dropped: number }
  peerInfo?: { hits: number, misses: number }
}

export class DhtService {
  private readonly init: DhtServiceInit
  private pool?: DhtStreamPool
  private filter?: DiscoveryFilter
  private peerInfo?: PeerInfoCache

  constructor (init: DhtServiceInit) {
    this.init = init
  }

  /** The service factory to give `createLibp2p({ services: { dht } })`. */
  factory (): (components: KadDHTComponents) => KadDHT {
    return (components) => {
      const log = components.logger.forComponent('conf-chat:network:dht')
      let pool: DhtStreamPool | undefined
      let peerInfo: PeerInfoCache | undefined
      if (this.init.pool !== false) {
        pool = this.pool = new DhtStreamPool({ opener: components.connectionManager, log, onStall: this.init.onStall }, { ...this.init.pool, protocol: this.init.kad.protocol })
      }
      if (this.init.peerInfo !== false) {
        peerInfo = this.peerInfo = new PeerInfoCache({ peerStore: components.peerStore, events: components.events }, this.init.peerInfo === undefined ? {} : this.init.peerInfo)
      }
      const view = withWrappers(components, pool, peerInfo)
      const dht = kadDHT(this.init.kad)(view)
      if (this.init.tableRefreshIntervalMs != null) {
        // a public field of kad-dht's KadDHT class (not of the interface), read each time it schedules the next refresh
        const refresh = (dht as unknown as { routingTableRefresh?: { refreshInterval?: number } }).routingTableRefresh
        if (typeof refresh?.refreshInterval === 'number') refresh.refreshInterval = this.init.tableRefreshIntervalMs
        else log.error('kad-dht has no routing-table refresh to configure: it refreshes at its own interval')
      }
      if (this.init.tableFromConnections !== false) {
        // called by kad-dht for each closer peer and each connected DHT peer (a public
        // method of its KadDHT class, looked up on the instance at each call)
        const kad = dht as unknown as { onPeerConnect?: (peer: PeerInfo) => Promise<void>, routingTable?: { size: number } }
        const offer = kad.onPeerConnect?.bind(dht)
        const from = this.init.tableFromConnections ?? this.init.kad.kBucketSize ?? K_BUCKET_SIZE
        if (offer != null) {
          kad.onPeerConnect = async (peer: PeerInfo) => {
            if ((kad.routingTable?.size ?? 0) < from || components.connectionManager.getConnections(peer.id).length > 0) await offer(peer)
          }
        } else {
          log.error('kad-dht has no onPeerConnect to wrap: every closer peer is offered to the routing table')
        }
      }
      if (this.init.discovery !== false) {
        const filter = this.filter = new DiscoveryFilter(this.init.discovery)
        // kad-dht's Network (a public field of its KadDHT class, not of the interface) emits
        // one `peer` event per closer peer; both the routing-table job and the discovery
        // libp2p merges into its peer store listen to it
        const network = (dht as unknown as { network?: { dispatchEvent?: (evt: Event) => boolean } }).network
        if (typeof network?.dispatchEvent === 'function') {
          const dispatch = network.dispatchEvent.bind(network)
          network.dispatchEvent = (evt: Event) =>
            evt.type === 'peer' && !filter.admit((evt as CustomEvent<PeerInfo>).detail) ? true : dispatch(evt)
        } else {
          log.error('kad-dht has no network event target to filter: closer peers are not filtered')
        }
      }
      return dht
    }
  }

  get stats (): DhtServiceStats {
    return {
      pool: this.pool?.stats,
      discovery: this.filter != null ? { ...this.filter.counts } : undefined,
      peerInfo: this.peerInfo != null ? { ...this.peerInfo.counts } : undefined
    }
  }

  /** Close the pooled streams (call before libp2p stops). */
  stop (): void {
    this.pool?.close()
  }
}

/** libp2p's components with `connectionManager.openStream` going through `pool` and
 * `peerStore.getInfo` through `peerInfo`; every other property (and the wrapped objects'
 * other methods) is libp2p's own. */
function withWrappers (components: KadDHTComponents, pool?: DhtStreamPool, peerInfo?: PeerInfoCache): KadDHTComponents {
  const connectionManager = pool == null ? undefined : overriding(components.connectionManager, { openStream: pool.openStream.bind(pool) })
  const peerStore = peerInfo == null ? undefined : overriding(components.peerStore, { getInfo: peerInfo.getInfo.bind(peerInfo) })
  return new Proxy(components, {
    get (target, prop, receiver) {
      if (prop === 'connectionManager' && connectionManager != null) return connectionManager
      if (prop === 'peerStore' && peerStore != null) return peerStore
      return Reflect.get(target, prop, receiver)
    }
  })
}
