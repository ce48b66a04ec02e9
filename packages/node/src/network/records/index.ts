/**
 * Signed DHT records: the store (put, read from every replica, republish, sweep) and
 * kad-dht's validators and selectors for our namespaces.
 */
export { RecordStore } from './record-store.js'
export type { RecordStoreInit, RecordStoreComponents, PutResult, GetOptions, GetResult } from './record-store.js'
export { recordValidators, recordSelectors } from './validators.js'
export type { RecordValidatorsComponents } from './validators.js'
export type { Namespace } from '@conf-chat/protocol'
