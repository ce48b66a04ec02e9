/**
 * Conferences (group chats) of the logged-in account: an owner-signed membership record
 * in the DHT, one sealed envelope per member for every message, and each member's view
 * in its private state. See conferences.ts.
 */
export { Conferences } from './conferences.js'
export { isConferenceMessage } from './types.js'
export type {
  ConferencesComponents, ConferencesInit, ConferenceEvents, ConferenceEmit, ConferenceState, ConferenceHistory, ConferenceFriends,
  ConferenceInfo, ConferenceMemberInfo, ConferenceMessage, ConferenceDelivery, ConferenceSendResult, ConferenceChangeResult
} from './types.js'
export {
  UnknownConferenceError, AmbiguousConferenceIdError, NotConferenceMemberError, NotConferenceOwnerError,
  AlreadyConferenceMemberError, ConferenceFullError, NotConferenceEnvelopeError
} from './errors.js'
export { DEFAULT_REFRESH_MIN_MS, DEFAULT_PRESENCE_CONCURRENCY, DEFAULT_REFRESH_CONCURRENCY } from './constants.js'
