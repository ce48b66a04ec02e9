/**
 * The persistent outbox: every envelope a user sends is written to this peer's local
 * store BEFORE any attempt to send it, and deleted only once it was delivered live (an
 * ack) or stored in the recipient's mailbox. What is left (recipient offline and mailbox
 * unreachable, or the process killed mid-send) is retried with backoff while the peer
 * runs and at its next start; it is reported failed only when it can never be sent.
 * Envelopes are signed and sealed at creation, so a retry needs no logged-in user.
 */
import { logger } from '@libp2p/logger'
import type { AbortOptions } from '@libp2p/interface'
import { decodeEnvelope, encodeEnvelope, type Envelope } from '@conf-chat/protocol'
import type { LocalStore } from '../storage/local-store.js'
import type { Mailbox } from './mailbox.js'
import type { Messenger } from './messenger.js'

const log = logger('conf-chat:outbox')

export const DEFAULT_OUTBOX_RETRY_MS = 5_000
export const DEFAULT_OUTBOX_RETRY_MAX_MS = 5 * 60_000
/** An envelope older than a mailbox item's lifetime could never reach its recipient. */
export const DEFAULT_OUTBOX_MAX_AGE_MS = 30 * 24 * 60 * 60 * 1000
/** How long a recipient's peer found by a presence read (or told by a notice) is used
 * without reading again; a send that fails there reads the presence again at once. */
export const DEFAULT_PRESENCE_CACHE_MS = 30_000
/** Limit for one mailbox store (finding the holders and writing to them). */
export const DEFAULT_MAILBOX_TIMEOUT_MS = 30_000

export interface OutboxInit {
  /** First wait before retrying an envelope that could not be sent; doubles each time. @default 5000 ms */
  outboxRetryMs?: number
  /** Longest wait between retries. @default 5 min */
  outboxRetryMaxMs?: number
  /** An envelope still unsent after this long is reported failed. @default 30 days */
  outboxMaxAgeMs?: number
  /** How long a presence lookup (where a user is online) is reused. @default 5000 ms */
  presenceCacheMs?: number
  /** Limit for one mailbox store or fetch. @default 30 s */
  mailboxTimeoutMs?: number
}

export type DeliveryStatus = 'delivered' | 'queued' | 'failed'

export interface Delivery {
  id: string
  status: DeliveryStatus
  /** delivered: 'live'; queued: 'mailbox' (with the recipient's holders) or 'outbox' (kept here, retried). */
  where?: 'live' | 'mailbox' | 'outbox'
  /** Why it was not delivered live, or why it failed. */
  reason?: string
}

/** Where a user's peer is, as a presence record (account layer) tells it. */
export interface PeerLocation {
  online: boolean
  peerId: string
  addrs: string[]
}

export interface OutboxComponents {
  local: LocalStore
  mailbox: Mailbox
  messenger: Pick<Messenger, 'send'>
  /** Reads where a user (by key id) is online, if anywhere. */
  locate: (keyId: string, options?: AbortOptions) => Promise<PeerLocation | undefined>
}

/** What the outbox tells about envelopes it sends in the background (retries). */
export type OutboxListener = (envelope: Envelope, delivery: Delivery) => void

interface OutboxEntry {
  envelope: Uint8Array
  /** The recipient, readable without decoding (and verifying) the envelope. */
  toKeyId: string
  createdAt: number
  attempts: number
  nextAt: number
  lastError?: string
}

export interface QueuedEnvelope {
  id: string
  kind: string
  from: string
  to: string
  createdAt: number
  attempts: number
  lastError?: string
}

interface Location { online: boolean, peerId: string, addrs: string[], at: number }

const PREFIX = '/outbox/'

/** A refusal the recipient will repeat for this envelope, wherever it is delivered. */
function isFinalRefusal (reason: string | undefined): boolean {
  return reason != null && /^not a friend\b/.test(reason)
}

export class Outbox {
  private readonly c: OutboxComponents
  private readonly retryMs: number
  private readonly retryMaxMs: number
  private readonly maxAgeMs: number
  private readonly presenceCacheMs: number
  private readonly mailboxTimeoutMs: number
  private readonly listener: OutboxListener
  private readonly inFlight = new Set<string>()
  private readonly locations = new Map<string, Location>()
  private timer?: NodeJS.Timeout
  private retrying?: Promise<void>
  /** A kick that came while a round ran: run another round after it. */
  private kicked?: { force?: boolean, keyId?: string }
  private running = false

  constructor (components: OutboxComponents, init: OutboxInit, listener: OutboxListener) {
    this.c = components
    this.retryMs = init.outboxRetryMs ?? DEFAULT_OUTBOX_RETRY_MS
    this.retryMaxMs = init.outboxRetryMaxMs ?? DEFAULT_OUTBOX_RETRY_MAX_MS
    this.maxAgeMs = init.outboxMaxAgeMs ?? DEFAULT_OUTBOX_MAX_AGE_MS
    this.presenceCacheMs = init.presenceCacheMs ?? DEFAULT_PRESENCE_CACHE_MS
    this.mailboxTimeoutMs = init.mailboxTimeoutMs ?? DEFAULT_MAILBOX_TIMEOUT_MS
    this.listener = listener
  }

  start (): void {
    if (this.running) return
    this.running = true
    this.timer = setInterval(() => { this.retry() }, Math.max(100, Math.min(this.retryMs, 1_000)))
    this.timer.unref()
  }

  async stop (): Promise<void> {
    this.running = false
    clearInterval(this.timer)
    await this.retrying
  }

  /** Persist the envelope, then try to deliver it: live if the recipient is online, else to their mailbox. */
  async send (envelope: Envelope): Promise<Delivery> {
    const now = Date.now()
    const entry: OutboxEntry = { envelope: encodeEnvelope(envelope), toKeyId: envelope.toKeyId, createdAt: now, attempts: 0, nextAt: now + this.retryMs }
    await this.c.local.put(PREFIX + envelope.id, entry)
    this.inFlight.add(envelope.id)
    try {
      return await this.attempt(envelope, entry)
    } finally {
      this.inFlight.delete(envelope.id)
    }
  }

  /** Where a user is, as last seen by a presence lookup or told by a presence notice. */
  noteLocation (keyId: string, where: { online: boolean, peerId: string, addrs: string[] }): void {
    this.locations.set(keyId, { ...where, at: Date.now() })
  }

  /** Retry now what waits for `keyId` (e.g. they just came online), or everything. */
  kick (keyId?: string): void {
    this.retry({ force: true, keyId })
  }

  /** The envelopes not sent yet, oldest first. */
  async queued (): Promise<QueuedEnvelope[]> {
    const out: QueuedEnvelope[] = []
    for await (const { value } of this.c.local.entries<OutboxEntry>(PREFIX)) {
      try {
        const e = decodeEnvelope(value.envelope)
        out.push({ id: e.id, kind: e.kind, from: e.from, to: e.to, createdAt: value.createdAt, attempts: value.attempts, lastError: value.lastError })
      } catch { /* an unreadable entry is dropped at the next retry */ }
    }
    return out
  }

  private retry (options: { force?: boolean, keyId?: string } = {}): void {
    if (!this.running) return
    if (this.retrying != null) {
      if (options.force === true) this.kicked = this.kicked == null || this.kicked.keyId !== options.keyId ? { force: true } : options
      return
    }
    this.retrying = this.retryDue(options)
      .catch(err => { log.error('outbox retry failed: %e', err) })
      .finally(() => {
        this.retrying = undefined
        const again = this.kicked
        this.kicked = undefined
        if (again != null) this.retry(again)
      })
  }

  private async retryDue (options: { force?: boolean, keyId?: string }): Promise<void> {
    const now = Date.now()
    // one failed mailbox store per recipient per round: the others would wait for the same timeout
    const unreachable = new Set<string>()
    for await (const { key, value } of this.c.local.entries<OutboxEntry>(PREFIX)) {
      if (!this.running) return
      // cheap checks first: the tick runs every second over every waiting entry
      if (this.inFlight.has(key.slice(PREFIX.length))) continue
      if (options.force !== true && value.nextAt > now) continue
      if (options.keyId != null && value.toKeyId !== options.keyId) continue
      let envelope: Envelope
      try {
        envelope = decodeEnvelope(value.envelope)
      } catch (err: any) {
        log.error('dropped an unreadable outbox entry %s: %s', key, err.message)
        await this.c.local.delete(key)
        continue
      }
      if (unreachable.has(envelope.toKeyId)) {
        await this.postpone(envelope, value, value.lastError ?? 'mailbox unreachable')
        continue
      }
      this.inFlight.add(envelope.id)
      try {
        const delivery = await this.attempt(envelope, value)
        if (delivery.where === 'outbox') unreachable.add(envelope.toKeyId)
        if (delivery.where !== 'outbox') this.listener(envelope, delivery)
      } catch (err: any) {
        log.error('outbox attempt for %s failed: %e', envelope.id, err)
      } finally {
        this.inFlight.delete(envelope.id)
      }
    }
  }

  private async attempt (envelope: Envelope, entry: OutboxEntry): Promise<Delivery> {
    const id = envelope.id
    if (Date.now() - entry.createdAt > this.maxAgeMs) {
      await this.c.local.delete(PREFIX + id)
      return { id, status: 'failed', reason: `not delivered within ${Math.round(this.maxAgeMs / 3_600_000)} h` }
    }
    const live = await this.sendLive(envelope)
    if (live.delivered) {
      await this.c.local.delete(PREFIX + id)
      return { id, status: 'delivered', where: 'live' }
    }
    if (isFinalRefusal(live.reason)) {
      await this.c.local.delete(PREFIX + id)
      return { id, status: 'failed', reason: live.reason }
    }
    try {
      await this.c.mailbox.store(envelope, { signal: AbortSignal.timeout(this.mailboxTimeoutMs) })
      await this.c.local.delete(PREFIX + id)
      return { id, status: 'queued', where: 'mailbox', reason: live.reason }
    } catch (err: any) {
      if (err.name === 'InvalidSetItemError') {
        await this.c.local.delete(PREFIX + id)
        return { id, status: 'failed', reason: err.message }
      }
      if (alreadyDelivered(err, id)) {
        // stored and removed by its recipient before: an earlier attempt got through
        await this.c.local.delete(PREFIX + id)
        return { id, status: 'queued', where: 'mailbox' }
      }
      log('mailbox store of %s failed: %s', id, err.message)
      await this.postpone(envelope, entry, String(err.message))
      return { id, status: 'queued', where: 'outbox', reason: String(err.message) }
    }
  }

  private async postpone (envelope: Envelope, entry: OutboxEntry, reason: string): Promise<void> {
    entry.attempts++
    entry.lastError = reason.slice(0, 200)
    entry.nextAt = Date.now() + Math.min(this.retryMs * 2 ** (entry.attempts - 1), this.retryMaxMs)
    await this.c.local.put(PREFIX + envelope.id, entry)
  }

  private async sendLive (envelope: Envelope): Promise<{ delivered: boolean, reason?: string }> {
    let where = await this.locate(envelope.toKeyId)
    if (where == null) return { delivered: false, reason: 'recipient offline' }
    let result = await this.c.messenger.send(where.peerId, where.addrs, envelope)
    if (!result.delivered && !where.fresh && !isFinalRefusal(result.reason)) {
      // the cached address may be stale: look again once
      where = await this.locate(envelope.toKeyId, true)
      if (where == null) return { delivered: false, reason: 'recipient offline' }
      result = await this.c.messenger.send(where.peerId, where.addrs, envelope)
    }
    if (!result.delivered) this.locations.delete(envelope.toKeyId)
    return result
  }

  /** The recipient's peer if online: a recent lookup or notice, else the presence record. */
  private async locate (keyId: string, fresh = false): Promise<{ peerId: string, addrs: string[], fresh: boolean } | undefined> {
    const cached = this.locations.get(keyId)
    if (!fresh && cached != null && Date.now() - cached.at < this.presenceCacheMs) {
      return cached.online ? { peerId: cached.peerId, addrs: cached.addrs, fresh: false } : undefined
    }
    let info: PeerLocation | undefined
    try {
      info = await this.c.locate(keyId)
    } catch (err: any) {
      log('presence of %s unknown: %s', keyId, err.message)
    }
    if (info == null) return undefined
    this.noteLocation(keyId, info)
    return info.online ? { peerId: info.peerId, addrs: info.addrs, fresh: true } : undefined
  }
}

/** Holders refuse an id they hold a tombstone for ("removed"): the recipient already had it. */
function alreadyDelivered (err: any, id: string): boolean {
  const rejected = err?.rejected as Record<string, string[] | string> | undefined
  const reasons = rejected?.[id]
  if (reasons == null) return false
  const list = Array.isArray(reasons) ? reasons : [reasons]
  return list.length > 0 && list.every(r => r === 'removed')
}
