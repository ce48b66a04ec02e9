/**
 * Signed DHT records: the store (put, read up to a quorum per namespace with stale
 * holders corrected, republish, sweep) and kad-dht's validators and selectors for our
 * namespaces.
 */
export { RecordStore } from './record-store.js'
export type { RecordStoreInit, RecordStoreComponents, GetOptions, GetResult, ReadResult, ReadStatus } from './record-store.js'
export { HOLDERS_REUSE_MS, type PutResult } from './record-writer.js'
export { findPutTargets, CONVERGED_CLOSEST, PUT_HOLDERS, type PutTargetsComponents } from './put-targets.js'
export { UnknownRecordError } from './errors.js'
export { READ_QUORUMS, WRITE_QUORUMS, ABSENT_CLOSEST, ABSENT_MIN_ANSWERS, readQuorumOf, writeQuorumOf } from './quorums.js'
export { kadCorrect, kadPutTo, CORRECTION_INTERVAL_MS, type CorrectFn, type PutToFn, type PutOutcome } from './corrections.js'
export { recordValidators, recordSelectors } from './validators.js'
export type { RecordValidatorsComponents } from './validators.js'
export type { Namespace } from '@conf-chat/protocol'
