/**
 * Presence: while a user is logged in, their peer keeps a presence record
 * (`/cc-presence/<keyId>`) fresh; logout publishes "offline" at once; after a crash the
 * record simply expires. Friends are told of logins and logouts directly (chat/presence-
 * notices.ts), so the record is refreshed rarely and never read before a refresh: the
 * sequence numbers order sessions first (see `seqOf`), so the holders themselves refuse
 * an older session's refresh once a newer login wrote, and the refresher learns of it
 * from the refusal.
 */
import type { AbortOptions, ComponentLogger, Logger } from '@libp2p/interface'
import { createSignedRecord, encodeSignedRecord, presenceKey, type PresencePayload, type AccountKeys } from '@conf-chat/protocol'
import type { RecordStore } from '../network/index.js'
import { DEFAULT_PRESENCE_REFRESH_MS, DEFAULT_PRESENCE_TTL_MS } from '../constants.js'

/**
 * Writes one session can make before its sequence numbers would reach those of a session
 * begun a millisecond later: 2^11, so that `since * 2^11` stays a safe integer until 2109.
 * At a refresh every 10 min that is 14 days; a longer session moves its base on (seqOf).
 */
export const PRESENCE_WRITES_PER_SESSION = 2048

export interface PresenceInit {
  /** How long a presence record says "online" without a refresh. @default 30 min */
  presenceTtlMs?: number
  /** How often a logged-in peer refreshes it. @default 10 min (a third of the TTL) */
  presenceRefreshMs?: number
}

export interface PresenceInfo {
  online: boolean
  peerId: string
  addrs: string[]
  since?: number
  updatedAt: number
}

export interface PresenceOwner {
  username: string
  keyId: string
  keys: AccountKeys
  since: number
}

export interface PresenceComponents {
  records: Pick<RecordStore, 'get' | 'put'>
  logger: ComponentLogger
  /** The clock for the records' times and sequence numbers (ms since the epoch). @default Date.now */
  now?: () => number
}

/** What a presence write got: the replicas that took it, and those that refused it. */
export interface PublishResult {
  replicas: number
  /** Replicas that refused it: for our own record, a holder that has a newer one (a later login). */
  refused: number
}

export class Presence {
  private readonly records: PresenceComponents['records']
  private readonly log: Logger
  readonly ttlMs: number
  readonly refreshMs: number
  private readonly now: () => number
  /** This peer's presence writes: the session they belong to, its base time, and how many. */
  private writes = { since: -1, base: 0, count: 0 }

  constructor (components: PresenceComponents, init: PresenceInit = {}) {
    this.records = components.records
    this.log = components.logger.forComponent('conf-chat:account:presence')
    this.ttlMs = init.presenceTtlMs ?? DEFAULT_PRESENCE_TTL_MS
    this.refreshMs = init.presenceRefreshMs ?? Math.min(DEFAULT_PRESENCE_REFRESH_MS, Math.floor(this.ttlMs / 3))
    this.now = components.now ?? Date.now
  }

  /**
   * The sequence number of this peer's next write for `owner`'s session: the session's
   * start time, then the count of its writes (`since * 2^11 + n`). A later login (by its
   * start time) writes above every write of an earlier session, however long that one
   * has run, so no refresh needs to read the record first; logout's "offline" comes after
   * the session's refreshes. After 2^11 writes the base moves on to the present.
   */
  private seqOf (owner: PresenceOwner, now: number): number {
    if (this.writes.since !== owner.since) this.writes = { since: owner.since, base: owner.since, count: 0 }
    if (this.writes.count >= PRESENCE_WRITES_PER_SESSION) this.writes = { ...this.writes, base: Math.max(now, this.writes.base + 1), count: 0 }
    return this.writes.base * PRESENCE_WRITES_PER_SESSION + this.writes.count++
  }

  /** Put `owner`'s presence; never reads the record first (see `seqOf`). */
  async publish (owner: PresenceOwner, status: 'online' | 'offline', peer: { peerId: string, addrs: string[] }, options: AbortOptions = {}): Promise<PublishResult> {
    const now = this.now()
    const seq = this.seqOf(owner, now)
    const payload: PresencePayload = {
      username: owner.username,
      status,
      peerId: peer.peerId,
      addrs: peer.addrs.slice(0, 16),
      // an offline record lives as long as the online one it replaces could (its lifetime on every peer)
      expiresAt: now + this.ttlMs,
      since: owner.since,
      updatedAt: now
    }
    const key = presenceKey(owner.keyId)
    const result = await this.records.put(key, encodeSignedRecord(createSignedRecord(key, seq, payload, owner.keys)), options)
    this.log('published %s %s (%d replicas, %d refused)', owner.username, status, result.replicas, result.refused)
    return { replicas: result.replicas, refused: result.refused }
  }

  /**
   * The user's presence, undefined when there is none or the read could not tell (for a
   * display and a live-send hint, unknown reads as offline; a caller's abort still throws).
   * Reads up to the `cc-presence` quorum (see READ_QUORUMS).
   */
  async read (keyId: string, options: AbortOptions = {}): Promise<PresenceInfo | undefined> {
    return await this.readOrThrow(keyId, options).catch(err => { if (err.name === 'UnknownRecordError') return undefined; throw err })
  }

  /** As `read`, but a read that could not tell throws UnknownRecordError: undefined is "no record". */
  async readOrThrow (keyId: string, options: AbortOptions = {}): Promise<PresenceInfo | undefined> {
    const found = await this.records.get<PresencePayload>(presenceKey(keyId), options)
    if (found == null) return undefined
    const p = found.payload
    return {
      online: p.status === 'online' && p.expiresAt > Date.now(),
      peerId: p.peerId,
      addrs: p.addrs,
      since: p.since,
      updatedAt: p.updatedAt
    }
  }
}
