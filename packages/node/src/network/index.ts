/**
 * The network layer: a libp2p peer in the project's DHT (ChatPeer), the signed records
 * it stores and reads (RecordStore), and the append-only sets held by the closest DHT
 * servers (SetStore). The supernode is a ChatPeer with no user.
 */
export { parseBootstrapAddrs } from './addresses.js'
export { ChatPeer, type ChatPeerInit, type ChatPeerEvents, type ChatLibp2p, type PeerStatus } from './peer.js'
export { DEFAULT_RELAY_LIMITS, RELAY_RESERVATIONS, isRelayed, type RelayLimits, type Reachability } from './relay.js'
export * from './records/index.js'
export * from './sets/index.js'
export { ChatDatastore, DHT_RECORD_PREFIX } from '../storage/index.js'
export { DHT_PROTOCOL, DHT_SELF_LOOKUP_INTERVAL_MS, DHT_TABLE_REFRESH_INTERVAL_MS } from '../constants.js'
