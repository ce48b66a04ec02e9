/**
 * The DHT as this project wires it: kad-dht unchanged, with pooled RPC streams and only
 * news from closer-peer lists reaching the routing table and the peer store.
 */
export { DhtService, type DhtServiceInit, type DhtServiceStats } from './service.js'
export {
  DhtStreamPool, FrameCounter, DEFAULT_IDLE_TIMEOUT_MS, DEFAULT_DRAIN_TIMEOUT_MS, DEFAULT_MAX_IDLE_PER_PEER,
  type StreamOpener, type StreamPoolComponents, type StreamPoolInit, type StreamPoolStats
} from './stream-pool.js'
export { DiscoveryFilter, DEFAULT_DISCOVERY_MAX_PEERS, DEFAULT_DISCOVERY_REPEAT_MS, type DiscoveryFilterInit } from './discovery-filter.js'
export { Responsibility, NotResponsibleError, type RoutingView } from './responsibility.js'
export { PeerInfoCache, DEFAULT_PEER_INFO_TTL_MS, DEFAULT_PEER_INFO_MAX_PEERS, type PeerInfoCacheInit } from './peer-info-cache.js'
