/**
 * Storage: the peer's LevelDB datastore (shared with libp2p and kad-dht, with the write
 * guard for DHT records), its private local store, and its identity key on disk.
 */
export {
  ChatDatastore, DHT_RECORD_PREFIX, PEER_STORE_PREFIX, PEER_STORE_FLUSH_MS, PEER_STORE_MEMORY_ENTRIES
} from './datastore.js'
export type { ChatDatastoreComponents, ChatDatastoreInit, RecordWriteGuard, RecordExpiry } from './datastore.js'
export { LocalStore, LOCAL_STORE_DIR } from './local-store.js'
export type { LocalStoreComponents } from './local-store.js'
export { loadOrCreatePeerKey, PEER_KEY_FILE } from './identity.js'
