/**
 * kad-dht as this project runs it: kad-dht itself, unchanged, given a view of libp2p's
 * components whose connection manager hands out pooled DHT streams (stream-pool.ts), and
 * with the closer peers of its responses filtered before they reach the routing table and
 * the peer store (discovery-filter.ts).
 */
import { kadDHT, type KadDHT, type KadDHTComponents, type KadDHTInit } from '@libp2p/kad-dht'
import type { PeerInfo } from '@libp2p/interface'
import { DhtStreamPool, type StreamPoolInit, type StreamPoolStats } from './stream-pool.js'
import { DiscoveryFilter, type DiscoveryFilterInit } from './discovery-filter.js'

export interface DhtServiceInit {
  /** kad-dht's options; `protocol` is required (the pool serves that protocol only). */
  kad: KadDHTInit & { protocol: string }
  /** Pool options; `false` turns pooling off (a new stream per RPC, kad-dht's default). */
  pool?: Omit<StreamPoolInit, 'protocol'> | false
  /** Discovery filter options; `false` lets every closer peer through (kad-dht's default). */
  discovery?: DiscoveryFilterInit | false
}

/** What the wiring did so far, for tests and benchmarks. */
export interface DhtServiceStats {
  pool?: StreamPoolStats
  discovery?: { passed: number, dropped: number }
}

export class DhtService {
  private readonly init: DhtServiceInit
  private pool?: DhtStreamPool
  private filter?: DiscoveryFilter

  constructor (init: DhtServiceInit) {
    this.init = init
  }

  /** The service factory to give `createLibp2p({ services: { dht } })`. */
  factory (): (components: KadDHTComponents) => KadDHT {
    return (components) => {
      const log = components.logger.forComponent('conf-chat:network:dht')
      let view = components
      if (this.init.pool !== false) {
        const pool = this.pool = new DhtStreamPool({ opener: components.connectionManager, log }, { ...this.init.pool, protocol: this.init.kad.protocol })
        view = withConnectionManager(components, pool)
      }
      const dht = kadDHT(this.init.kad)(view)
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
    return { pool: this.pool?.stats, discovery: this.filter != null ? { ...this.filter.counts } : undefined }
  }

  /** Close the pooled streams (call before libp2p stops). */
  stop (): void {
    this.pool?.close()
  }
}

/** libp2p's components with `connectionManager.openStream` going through `pool`; every
 * other property (and the connection manager's other methods) is libp2p's own. */
function withConnectionManager (components: KadDHTComponents, pool: DhtStreamPool): KadDHTComponents {
  const real = components.connectionManager
  const connectionManager = new Proxy(real, {
    get (target, prop) {
      if (prop === 'openStream') return pool.openStream.bind(pool)
      const value = Reflect.get(target, prop, target)
      return typeof value === 'function' ? value.bind(target) : value
    }
  })
  return new Proxy(components, {
    get (target, prop, receiver) {
      if (prop === 'connectionManager') return connectionManager
      return Reflect.get(target, prop, receiver)
    }
  })
}
