/** Defaults for a conf-chat peer; every one can be changed through `ChatPeerInit`. */

/** The project's own DHT protocol: never mixes with the public IPFS DHT. */
export const DHT_PROTOCOL = '/conf-chat/kad/1.0.0'

/** Where the supernode listens unless told otherwise. */
export const DEFAULT_SUPERNODE_PORT = 4300
export const DEFAULT_HOST = '127.0.0.1'

/** How long a store keeps a record after its last put (kad-dht's own limit: 48 h). */
export const DEFAULT_RECORD_TTL_MS = 48 * 60 * 60 * 1000

/**
 * A store takes a record from the network only if fewer known peers than this are closer
 * to its key: kad-dht puts a record on the 20 closest peers its lookup finds (its K).
 */
export const DEFAULT_RECORD_RESPONSIBLE_RANK = 20

/** How often a store republishes what it holds (Kademlia's hourly republish). */
export const DEFAULT_REPUBLISH_INTERVAL_MS = 60 * 60 * 1000

/** How long one DHT query may run. */
export const DEFAULT_QUERY_TIMEOUT_MS = 15_000

/**
 * First and largest delay between bootstrap attempts while no bootstrap peer answers. The
 * first is short: peers started together with their supernode (docker-compose up, two
 * terminals) find it listening a second or two later.
 */
export const BOOTSTRAP_RETRY_MIN_MS = 500
export const BOOTSTRAP_RETRY_MAX_MS = 30_000

/** How many remembered peers a restarted node dials to rejoin. */
export const KNOWN_PEERS_TO_DIAL = 8

/**
 * Dial time limits of a join. Bootstrap and remembered peers are dialled together and the
 * first to answer wins; a remembered address may be long dead (a container's address from
 * its last run, a laptop's old network) and hang rather than fail, so it gets a short
 * limit: a live peer on a LAN or loopback answers a dial in milliseconds.
 */
export const BOOTSTRAP_DIAL_TIMEOUT_MS = 5_000
export const REMEMBERED_DIAL_TIMEOUT_MS = 1_500

/** bcrypt cost for new passwords (2^10 rounds, ~0.1 s here). */
export const DEFAULT_BCRYPT_COST = 10

/**
 * A presence record says "online" for this long unless refreshed: the longest a crashed
 * peer's user (who never said goodbye) still reads as online to a user who is not their
 * friend (directory, profile). Friends do not wait for it: logins and logouts are told to
 * them directly, and a friend connected to the crashed peer sees the connection close
 * (checked with a dial). So the record only serves strangers, and is refreshed rarely:
 * each refresh is a DHT put to the 20 closest servers (a lookup and 20 stores), work for
 * every peer it reaches. At 10 idle users a refresh every 200 s (TTL 10 min) was about
 * half of the RPCs an idle logged-in peer sent and served.
 */
export const DEFAULT_PRESENCE_TTL_MS = 30 * 60_000

/** How often a logged-in peer refreshes its presence: a third of the TTL, so two refreshes in a row may fail before the record lapses. */
export const DEFAULT_PRESENCE_REFRESH_MS = 10 * 60_000

/** Wrong passwords on one peer: the first retry waits this long, doubling up to the max. */
export const LOGIN_THROTTLE_BASE_MS = 500
export const LOGIN_THROTTLE_MAX_MS = 30_000

/** How many DHT servers (the closest to a set's key) hold each replicated set (R). */
export const DEFAULT_SET_REPLICAS = 5

/** How long a set item (a mailbox envelope) lives after it was added. */
export const DEFAULT_SET_ITEM_TTL_MS = 30 * 24 * 60 * 60 * 1000

/** How often a set holder hands its sets on to the current closest peers (jittered ±25 %). */
export const DEFAULT_SET_MAINTENANCE_INTERVAL_MS = 10 * 60 * 1000

/**
 * How long after a DHT server enters a holder's routing table the holder hands it the sets
 * it is now among the closest holders of (replication.ts): joins within this time are
 * welcomed together, and the newcomer has finished starting.
 */
export const DEFAULT_SET_WELCOME_DELAY_MS = 5_000

/** Limit for one set request to one holder. */
export const DEFAULT_SET_REQUEST_TIMEOUT_MS = 10_000

/** Most bytes of DHT records and set items a peer holds for others before it deletes the oldest. */
export const DEFAULT_STORAGE_BUDGET_BYTES = 512 * 1024 * 1024

/** Most items a holder keeps in one set (a flood into one mailbox stops there). */
export const DEFAULT_MAX_ITEMS_PER_SET = 10_000

/** Most bytes of item data a holder keeps in one set: 10,000 items of the largest size would be 640 MiB. */
export const DEFAULT_MAX_BYTES_PER_SET = 32 * 1024 * 1024

/**
 * Most items and bytes one writer may have in one set, unless its namespace sets its own:
 * a friend can leave a month of messages in a mailbox, one stranger cannot fill it.
 */
export const DEFAULT_WRITER_LIMITS = { items: 2_000, bytes: 4 * 1024 * 1024 }

/** Concurrent set streams per connection and direction (libp2p's default of 32 is too few for bursts of writers). */
export const SET_MAX_STREAMS_PER_CONNECTION = 256

/**
 * Concurrent inbound DHT streams per connection. kad-dht's defaults let a peer open 64
 * outbound streams to another while that one accepts only 32 inbound: a burst of reads
 * (a mailbox of 50 senders, each sender's record read at once) had its RPCs reset by the
 * neighbours (StreamStateError on every one), and the reads ended with no answer. Above
 * kad-dht's outbound 64, so one peer's burst is never refused by design.
 */
export const DHT_MAX_INBOUND_STREAMS = 128

/**
 * The longest kad-dht waits for one RPC's answer. Its time limit adapts to the answers
 * (at least 5 s), but every RPC that ended without an answer counts twice its time, and
 * that includes the RPCs a read ends itself once it has its quorum and, above all, every
 * RPC to a peer that vanished: a dead peer on a query's path pushed the limit to 10-20 s,
 * and a write (which waits for its whole closest-peers query) ran into its own 15 s limit
 * with nothing stored (the multi-host test, after the supernode's host was cut). A live
 * peer answers in milliseconds, seconds at worst on a loaded machine: 8 s bounds the cost
 * of a dead one.
 */
export const DHT_RPC_MAX_TIMEOUT_MS = 8_000

/**
 * kad-dht's lookup shape. Its defaults are alpha 10 and as many disjoint paths (each path
 * keeps alpha RPCs in flight and runs until it has heard from the k closest peers it knows):
 * up to 100 RPCs in flight for one lookup, which on a machine of a few cores is CPU spent
 * by every peer a lookup reaches, and a write waits for its whole closest-peers lookup.
 * Kademlia's alpha is 3; three disjoint paths keep S/Kademlia's protection against a few
 * bad peers on one path (a lookup succeeds if one path avoids them).
 */
export const DHT_ALPHA = 3
export const DHT_DISJOINT_PATHS = 3

/**
 * kad-dht's periodic lookups: of its own id (so that its neighbours keep it and it keeps
 * them) and of a random id per common prefix length (the routing-table refresh). Its
 * defaults are 5 minutes each, and in a small network every one of those lookups reaches
 * every peer, so each peer's work every 5 minutes grows with N: they were most of what an
 * idle logged-in peer did once its mailbox reads reused their holders (bench:idle,
 * 10 users). Kademlia refreshes a bucket after an hour without a lookup in it; a peer
 * here looks up keys all the time (presence, mailboxes), and each answer refreshes the
 * routing table too, and a dead peer is found when it is used (liveness.ts). Half an
 * hour each.
 */
export const DHT_SELF_LOOKUP_INTERVAL_MS = 30 * 60_000
export const DHT_TABLE_REFRESH_INTERVAL_MS = 30 * 60_000
