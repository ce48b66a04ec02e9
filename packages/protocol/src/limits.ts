/** Limits shared by every peer. Values from the network beyond them are refused. */

/** Largest DHT record value we accept, well under kad-dht's 4 MiB message buffer. */
export const MAX_RECORD_BYTES = 128 * 1024

/** Largest envelope (direct message, conference message, friend request...). */
export const MAX_ENVELOPE_BYTES = 64 * 1024

/** Largest text a user may send in one message, in characters. */
export const MAX_MESSAGE_CHARS = 4000

/** Usernames: lower-case, 2 to 32 characters (DESIGN.md). */
export const USERNAME_PATTERN = /^[a-z0-9_][a-z0-9_.-]{1,31}$/

/** Full names: a display string. */
export const MAX_FULL_NAME_CHARS = 100

/** kad-dht's own (hard-coded) record lifetime on a remote store: 48 h. */
export const DHT_RECORD_TTL_MS = 48 * 60 * 60 * 1000

/** Verified records remembered per process (see verifyRecordValue): a DHT read or write
 * passes each record through 2-4 checks on every peer it reaches. */
export const VERIFIED_CACHE_ENTRIES = 1024
/** ... and the bytes of their values at most (records are up to MAX_RECORD_BYTES). */
export const VERIFIED_CACHE_BYTES = 2 * 1024 * 1024
