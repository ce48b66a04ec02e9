/**
 * Presence: while a user is logged in, their peer keeps a short-lived presence record
 * (`/cc-presence/<keyId>`) fresh; logout publishes "offline" at once; after a crash the
 * record simply expires. Sequence numbers are times, so the newest write wins.
 */
import type { AbortOptions, ComponentLogger, Logger } from '@libp2p/interface'
import { createSignedRecord, encodeSignedRecord, presenceKey, type PresencePayload, type AccountKeys } from '@conf-chat/protocol'
import type { RecordStore } from '../network/index.js'
import { DEFAULT_PRESENCE_REFRESH_MS, DEFAULT_PRESENCE_TTL_MS } from '../constants.js'


export interface PresenceInit {
  /** How long a presence record says "online" without a refresh. @default 60 s */
  presenceTtlMs?: number
  /** How often a logged-in peer refreshes it. @default 20 s */
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
}

export class Presence {
  private readonly records: PresenceComponents['records']
  private readonly log: Logger
  readonly ttlMs: number
  readonly refreshMs: number
  private lastSeq = 0

  constructor (components: PresenceComponents, init: PresenceInit = {}) {
    this.records = components.records
    this.log = components.logger.forComponent('conf-chat:account:presence')
    this.ttlMs = init.presenceTtlMs ?? DEFAULT_PRESENCE_TTL_MS
    this.refreshMs = init.presenceRefreshMs ?? Math.min(DEFAULT_PRESENCE_REFRESH_MS, Math.floor(this.ttlMs / 3))
  }

  async publish (owner: PresenceOwner, status: 'online' | 'offline', peer: { peerId: string, addrs: string[] }, options: AbortOptions = {}): Promise<void> {
    const now = Date.now()
    // times as sequence numbers: strictly rising even within one millisecond
    const seq = this.lastSeq = Math.max(now, this.lastSeq + 1)
    const payload: PresencePayload = {
      username: owner.username,
      status,
      peerId: peer.peerId,
      addrs: peer.addrs.slice(0, 16),
      expiresAt: status === 'online' ? now + this.ttlMs : now,
      since: owner.since,
      updatedAt: now
    }
    const key = presenceKey(owner.keyId)
    const result = await this.records.put(key, encodeSignedRecord(createSignedRecord(key, seq, payload, owner.keys)), options)
    this.log('published %s %s (%d replicas)', owner.username, status, result.replicas)
  }

  /**
   * The user's presence, undefined when there is none or the read could not tell (for a
   * display and a live-send hint, unknown reads as offline; a caller's abort still throws).
   * Reads up to the `cc-presence` quorum (see READ_QUORUMS).
   */
  async read (keyId: string, options: AbortOptions = {}): Promise<PresenceInfo | undefined> {
    const found = await this.records.get<PresencePayload>(presenceKey(keyId), options)
      .catch(err => { if (err.name === 'UnknownRecordError') return undefined; throw err })
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
