/**
 * Replicated append-only sets (mailboxes, directory shards) on the DHT servers closest
 * to each set's key: the SetStore, its init and components, its results and errors.
 */
export { SetStore } from './set-store.js'
export { SET_ITEMS_PREFIX } from './constants.js'
export type { SetStoreInit, SetStoreComponents, RoutingTableEvents } from './set-store.js'
export type { AddOptions, AddResult, RemoveResult, ListOptions } from './set-client.js'
export type { MaintenanceReport } from './replication.js'
export type { FindHoldersOptions } from './holder-lookup.js'
export { SetWriteError, SetRemoveError, SetReadError, NoSetHoldersError, SetRequestError } from './set-errors.js'
export type { SetItem, SetRemoveAuth, SetNamespaceRules } from '@conf-chat/protocol'
