/** Defaults of the conferences part (see ConferencesInit). */

/** Shortest time between two DHT reads of one conference's record caused by a message, in ms. */
export const DEFAULT_REFRESH_MIN_MS = 5_000
/** Presence lookups `list()` and `members()` run at once. */
export const DEFAULT_PRESENCE_CONCURRENCY = 8
/** Records read at once after login. */
export const DEFAULT_REFRESH_CONCURRENCY = 4
