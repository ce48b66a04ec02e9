/**
 * Constants of the set store that no caller configures. The configurable defaults
 * (replicas, TTL, intervals, limits) are in the package's constants.ts.
 */
import { MAX_SET_FRAME_BYTES } from '@conf-chat/protocol'

/** Where the set store keeps its data in the datastore. */
export const SETS_ROOT = '/cc-sets'

/** Where the items of every set are (the bytes a holder holds for others, with the DHT records). */
export const SET_ITEMS_PREFIX = `${SETS_ROOT}/items/`

/** Page budget: half a frame, so that a page of items plus CBOR overhead always fits. */
export const PAGE_BYTES = MAX_SET_FRAME_BYTES / 2

/**
 * GETs a reader has in flight to one holder of a set (each for MAX_SET_GET_IDS items).
 * With the holders of a mailbox (2R = 10 asked) that is up to 40 at once: the 1,000 items
 * of a full mailbox come in a few round trips, where one GET at a time to one holder made
 * 63 round trips (4.8-8.6 s at 200 peers on two cores).
 */
export const SET_GETS_IN_FLIGHT_PER_HOLDER = 4

/** A holder that did not answer an add or a listing is asked once more, after this pause (ms). */
export const DEFAULT_SET_RETRY_DELAY_MS = 500

/** The sweep runs at least this often (ms)... */
export const MIN_SWEEP_INTERVAL_MS = 250
/** ...and at most this rarely (ms), whatever the TTL; in between, a quarter of the shortest TTL. */
export const MAX_SWEEP_INTERVAL_MS = 10 * 60_000

/** Longest error message a holder sends (the response schema's limit). */
export const MAX_SET_ERROR_MESSAGE_CHARS = 500
/** Longest item id and reason a holder sends for a refused item (the response schema's limits). */
export const MAX_REFUSED_ID_CHARS = 100
export const MAX_REFUSED_REASON_CHARS = 200
