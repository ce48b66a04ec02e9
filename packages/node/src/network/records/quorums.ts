/**
 * How many valid records a read waits for, per namespace, and when a read that found
 * nothing may say "absent".
 *
 * Every namespace but names has one writer (the key names the owner's key, and only that
 * key can sign), and every record a read keeps was verified: a valid record is always one
 * the owner wrote. So a read needs no vote among the records it got: the highest sequence
 * number among them wins (see `selectRecord`), and a lower one only shows that a holder
 * missed a write (the read then corrects that holder, see corrections.ts). What a read
 * can still get wrong is the version: if a share `f` of the holders missed the newest
 * write, a read that stops after `Q` valid records returns an older one only if all `Q`
 * came from such holders, about `f^Q` (f = 0.3: Q=3 2.7 %, Q=5 0.24 %, Q=7 0.02 %). Each
 * further record costs one more holder's answer: measured at 10 peers, the first valid
 * record came in after 54-78 ms of a 140-163 ms read of every holder (kad-dht puts to the
 * 20 closest servers). So the quorum is small where a stale read costs little or the
 * record is read often, larger where a stale read leads to a decision.
 *
 * Names (`cc-user`) are first come, first served, so two owners can hold replicas of one
 * name for a moment (a registration race, until the loser releases it). The selector
 * takes the owner most of the records read hold, so a lookup reads enough for a majority
 * to mean something. Registration itself reads every replica (see accounts.ts).
 */
import { createHash } from 'node:crypto'
import { parseKey, type Namespace } from '@conf-chat/protocol'

/** Valid records (our own copy included) a read of each namespace stops at. */
export const READ_QUORUMS: Readonly<Record<Namespace, number>> = {
  /**
   * 7: the one namespace with more than one possible owner (a race for a name); of 7,
   * 3 holders can keep a losing claim or an old password hash and the majority still wins.
   * Used by holders checking a writer's name; accounts (login, registration, profiles)
   * read every replica instead, so that attackers answering first cannot hide a contest.
   */
  'cc-user': 7,
  /**
   * 3: a stale presence shows an old status or address for a moment, and a live send to an
   * old address falls back to the mailbox; friends are told of logins directly. Read for
   * every user shown and every live send: often, so kept cheap.
   */
  'cc-presence': 3,
  /**
   * 5: the private state read at login decides whom this session treats as friends (and so
   * what it refuses), and the read before each write decides what the write builds on (a
   * stale base is caught by the holders refusing the write, at the cost of a round). Read
   * at login and before writes: rare.
   */
  'cc-state': 5,
  /** 5, as the head: a page is read right after its head, and must be of the head's version. */
  'cc-state-page': 5,
  /**
   * 3: history pages are written by their owner's session, which keeps its own copy; a
   * stale page read is merged when the holders refuse the next write of that page. A
   * conversation's pages are read together (many reads) when first shown on a peer.
   */
  'cc-history': 3,
  /**
   * 5: a conference record lists the members; a stale one can make a member's message be
   * refused or an owner's change build on an older member list. Envelopes carry the
   * newest record too, so the DHT read is a fallback: rare.
   */
  'cc-conf': 5
}

/** The quorum of `key`'s namespace (throws InvalidRecordError for a key of no namespace). */
export function readQuorumOf (key: string): number {
  return READ_QUORUMS[parseKey(key).namespace]
}

/**
 * A put returns once this many holders stored the record (each echoed it back), or when
 * the put ends if fewer did; the same put goes on in the background to the rest of the
 * closest servers (kad-dht sends PUT_VALUE to all of them, 10 at a time), so the writer
 * does not wait for the slowest of 20 holders. Per namespace, the read quorum: a reader
 * right after the put waits for as many valid records as have been confirmed stored, and
 * the highest sequence among what it reads wins (a holder the tail has not reached yet
 * counts as one that missed the write, corrected by the reads). Names wait for every
 * holder: registration reads every replica right after its put, to see a contest, and a
 * replica still on its way would look like a claim that did not land.
 */
export const WRITE_QUORUMS: Readonly<Record<Namespace, number>> = {
  ...READ_QUORUMS,
  'cc-user': Infinity
}

/** The write quorum of `key`'s namespace (throws InvalidRecordError for a key of no namespace). */
export function writeQuorumOf (key: string): number {
  return WRITE_QUORUMS[parseKey(key).namespace]
}

/**
 * A read that found no valid record says "absent" only when its query ended on its own
 * (not at its time limit) and, of the `ABSENT_CLOSEST` peers closest to the key (Kademlia
 * distance) among those it tried, at least `ABSENT_MIN_ANSWERS` (or every one tried, in a
 * network of fewer servers) answered that they hold no record. Anything less is
 * "unknown". The closest peers to the key are the ones a put stores the record on (the 20
 * closest servers), so three of the five closest saying "none" means the record was not
 * put (or has expired everywhere); peers further away answering "none" say nothing about
 * it, and under load many RPCs fail (kad-dht's adaptive per-RPC time limit): counting
 * failures against answers anywhere on the path made a free name read as "unknown" when
 * 20 peers registered at once on a busy machine.
 */
export const ABSENT_CLOSEST = 5

/** See ABSENT_CLOSEST. */
export const ABSENT_MIN_ANSWERS = 3

/** The Kademlia id of a key or a peer: SHA-256 of its bytes, as kad-dht computes it. */
export function kadId (bytes: Uint8Array): Uint8Array {
  return createHash('sha256').update(bytes).digest()
}

/** Compares two peers' distances to `target` (kad ids): negative when `a` is closer. */
export function compareDistance (target: Uint8Array, a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < target.length; i++) {
    const da = (a[i] ?? 0) ^ (target[i] ?? 0)
    const db = (b[i] ?? 0) ^ (target[i] ?? 0)
    if (da !== db) return da - db
  }
  return 0
}

/**
 * Whether a read that got no valid record may say "absent": `tried` are the peers it
 * asked with whether each answered "none" (true) or failed (false), by kad id.
 */
export function isKnownAbsent (key: Uint8Array, tried: Array<{ id: Uint8Array, none: boolean }>): boolean {
  if (tried.length === 0) return false
  const target = kadId(key)
  const closest = [...tried].sort((a, b) => compareDistance(target, a.id, b.id)).slice(0, ABSENT_CLOSEST)
  return closest.filter(p => p.none).length >= Math.min(ABSENT_MIN_ANSWERS, tried.length)
}
