/**
 * The persistent outbox: every envelope a user sends is written to this peer's local
 * store BEFORE any attempt to send it, and deleted only once it was delivered live (an
 * ack) or stored in the recipient's mailbox. What is left (recipient offline and mailbox
 * unreachable, or the process killed mid-send) is retried with backoff while the peer
 * runs and at its next start; it is reported failed only when it can never be sent.
 * Envelopes are signed and sealed at creation, so a retry needs no logged-in user.
 *
 * Decisions are taken on refusal codes (@conf-chat/protocol refusals.ts), never on the
 * other peer's wording: a final refusal ends the envelope (failed, dropped), any other
 * outcome keeps it (the mailbox, or this outbox and a later retry).
 */
import { defaultLogger } from '@libp2p/logger'
import type { AbortOptions, ComponentLogger, Logger } from '@libp2p/interface'
import { decodeEnvelope, isFinalRefusal, isRefusalCode, type Envelope, type RefusalCode } from '@conf-chat/protocol'
import type { LocalStore } from '../storage/index.js'
import { shutdownController, timeLimit, untilEither } from '../utils/index.js'
import type { Mailbox, StoreOptions } from './mailbox.js'
import { envelopeBytes } from './chat-wire.js'
import { GroupWriter } from './group-writer.js'
import type { DeliveryResult, Messenger } from './messenger.js'

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
  /** How long a presence lookup (where a user is online) is reused. @default 30 s */
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
  /** failed because of a refusal (the recipient's, or every mailbox holder's): its code. */
  code?: RefusalCode
}

/** Where a user's peer is, as a presence record (account layer) tells it. */
export interface PeerLocation {
  online: boolean
  peerId: string
  addrs: string[]
}

export interface OutboxComponents {
  /** Written through a GroupWriter: the envelopes sent at once share a LevelDB batch. */
  local: Pick<LocalStore, 'writeMany' | 'entries' | 'get'>
  mailbox: Pick<Mailbox, 'store'>
  /**
   * The sender's box keys, to seal the envelope into its recipient's mailbox (Mailbox.store),
   * while the account that sent it is logged in here; else undefined (it goes as it is).
   */
  senderBoxKeys?: (envelope: Envelope) => NonNullable<StoreOptions['seal']>['keys'] | undefined
  messenger: Pick<Messenger, 'send'>
  /** Reads where a user (by key id) is online, if anywhere. */
  locate: (keyId: string, options?: AbortOptions) => Promise<PeerLocation | undefined>
  /** @default defaultLogger() */
  logger?: ComponentLogger
  /** The clock (ms since epoch) for ages, backoff and the presence cache. @default Date.now */
  now?: () => number
}

/** What the outbox tells about envelopes it sends in the background (retries). */
export type OutboxListener = (envelope: Envelope, delivery: Delivery) => void

/** How an envelope is sent. */
export interface SendOptions extends AbortOptions {
  /**
   * The recipient's box key the envelope was sealed to: with it the envelope is sealed
   * again, whole, into the recipient's mailbox (Mailbox.store); without it, it goes there as it is.
   */
  recipientBoxPublic?: Uint8Array
  /** The seed of a conference owner's writer key into the recipient's mailbox, to seal it with there (Mailbox.store). */
  mailboxWriter?: Uint8Array
}

interface OutboxEntry {
  envelope: Uint8Array
  /** The recipient's box key the envelope was sealed to (to seal it into their mailbox), if known when it was queued. */
  boxPublic?: Uint8Array
  /** SendOptions.mailboxWriter, kept for the retries. */
  writer?: Uint8Array
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

export interface RetryOptions extends AbortOptions {
  /** Only what waits for this recipient (key id). */
  keyId?: string
  /** Also what is not due yet. @default false */
  force?: boolean
}

interface Location { online: boolean, peerId: string, addrs: string[], at: number }

const PREFIX = '/outbox/'

/**
 * A live refusal that the recipient would repeat wherever the envelope went. Not so
 * 'not-for-recipient': the peer that presence named now hosts someone else (the presence
 * was stale), which says nothing about the recipient's mailbox.
 */
function endsLive (result: DeliveryResult): boolean {
  return !result.delivered && result.final === true && result.code !== 'not-for-recipient'
}

export class Outbox {
  private readonly c: OutboxComponents
  private readonly log: Logger
  private readonly now: () => number
  private readonly retryMs: number
  private readonly retryMaxMs: number
  private readonly maxAgeMs: number
  private readonly presenceCacheMs: number
  private readonly mailboxTimeoutMs: number
  private readonly listener: OutboxListener
  private readonly writes: GroupWriter
  private readonly inFlight = new Set<string>()
  private readonly locations = new Map<string, Location>()
  private timer?: ReturnType<typeof setInterval>
  private retrying?: Promise<void>
  /** A retry asked for while a round ran: run another round after it. */
  private kicked?: RetryOptions
  private running = false
  private shutdown = shutdownController()

  constructor (components: OutboxComponents, init: OutboxInit, listener: OutboxListener) {
    this.c = components
    this.log = (components.logger ?? defaultLogger()).forComponent('conf-chat:delivery:outbox')
    this.now = components.now ?? Date.now
    this.retryMs = init.outboxRetryMs ?? DEFAULT_OUTBOX_RETRY_MS
    this.retryMaxMs = init.outboxRetryMaxMs ?? DEFAULT_OUTBOX_RETRY_MAX_MS
    this.maxAgeMs = init.outboxMaxAgeMs ?? DEFAULT_OUTBOX_MAX_AGE_MS
    this.presenceCacheMs = init.presenceCacheMs ?? DEFAULT_PRESENCE_CACHE_MS
    this.mailboxTimeoutMs = init.mailboxTimeoutMs ?? DEFAULT_MAILBOX_TIMEOUT_MS
    this.listener = listener
    this.writes = new GroupWriter(components.local)
  }

  start (): void {
    if (this.running) return
    this.running = true
    if (this.shutdown.signal.aborted) this.shutdown = shutdownController()
    this.timer = setInterval(() => { this.schedule() }, Math.max(100, Math.min(this.retryMs, 1_000)))
    this.timer.unref?.()
  }

  /** Stop retrying; a round under way is cancelled (what it had not sent stays kept). */
  async stop (): Promise<void> {
    this.running = false
    clearInterval(this.timer)
    this.shutdown.abort(new Error('outbox stopped'))
    await this.retrying
  }

  /** Persist the envelope, then try to deliver it: live if the recipient is online, else to their mailbox. */
  async send (envelope: Envelope, options: SendOptions = {}): Promise<Delivery> {
    const now = this.now()
    const boxPublic = options.recipientBoxPublic
    const entry: OutboxEntry = {
      envelope: envelopeBytes(envelope),
      ...(boxPublic != null ? { boxPublic } : {}),
      ...(boxPublic != null && options.mailboxWriter != null ? { writer: options.mailboxWriter } : {}),
      toKeyId: envelope.toKeyId,
      createdAt: now,
      attempts: 0,
      nextAt: now + this.retryMs
    }
    // kept even when the caller gives up: the change it goes with (history, private state)
    // is already made, so the envelope must go out; the signal cuts only this attempt
    await this.writes.put(PREFIX + envelope.id, entry)
    this.inFlight.add(envelope.id)
    try {
      return await this.attempt(envelope, entry, options)
    } finally {
      this.inFlight.delete(envelope.id)
    }
  }

  /** Where a user is, as last seen by a presence lookup or told by a presence notice. */
  noteLocation (keyId: string, where: { online: boolean, peerId: string, addrs: string[] }): void {
    this.locations.set(keyId, { online: where.online, peerId: where.peerId, addrs: where.addrs, at: this.now() })
  }

  /** Retry now, in the background, what waits for `keyId` (e.g. they just came online), or everything. */
  kick (keyId?: string): void {
    this.schedule({ force: true, keyId })
  }

  /**
   * Run a retry round now (after the one under way, if any) and wait for it: what is due,
   * or with `force` everything, or only what waits for `keyId`. Results go to the listener.
   */
  async retry (options: RetryOptions = {}): Promise<void> {
    while (this.retrying != null) await this.retrying
    if (!this.running) return
    const round = this.round(options)
    this.retrying = round
    await round
  }

  /** The envelopes not sent yet, oldest first. */
  async queued (options: AbortOptions = {}): Promise<QueuedEnvelope[]> {
    const out: QueuedEnvelope[] = []
    for await (const { value } of this.c.local.entries<OutboxEntry>(PREFIX, options)) {
      try {
        const e = decodeEnvelope(value.envelope)
        out.push({ id: e.id, kind: e.kind, from: e.from, to: e.to, createdAt: value.createdAt, attempts: value.attempts, lastError: value.lastError })
      } catch { /* an unreadable entry is dropped at the next retry */ }
    }
    return out
  }

  /** A round in the background; one asked for while another runs comes after it. */
  private schedule (options: RetryOptions = {}): void {
    if (!this.running) return
    if (this.retrying != null) {
      if (options.force === true) this.kicked = this.kicked == null || this.kicked.keyId !== options.keyId ? { force: true } : options
      return
    }
    this.retrying = this.round(options)
  }

  private async round (options: RetryOptions): Promise<void> {
    try {
      await this.retryDue(options, { signal: untilEither(options, this.shutdown.signal) })
    } catch (err: any) {
      if (!this.shutdown.signal.aborted && options.signal?.aborted !== true) this.log.error('outbox retry failed: %e', err)
    } finally {
      this.retrying = undefined
      const again = this.kicked
      this.kicked = undefined
      if (again != null) this.schedule(again)
    }
  }

  private async retryDue (which: RetryOptions, options: AbortOptions): Promise<void> {
    const now = this.now()
    // one failed mailbox store per recipient per round: the others would wait for the same timeout
    const unreachable = new Set<string>()
    for await (const { key, value: listed } of this.c.local.entries<OutboxEntry>(PREFIX, options)) {
      if (!this.running || options.signal?.aborted === true) return
      // cheap checks first: the tick runs every second over every waiting entry
      if (this.inFlight.has(key.slice(PREFIX.length))) continue
      if (which.force !== true && listed.nextAt > now) continue
      if (which.keyId != null && listed.toKeyId !== which.keyId) continue
      // the round walks a snapshot, and an attempt can take seconds: an entry its first send
      // has delivered (and deleted) since the round began is not sent again, and one
      // postponed since is taken as it is now
      const value = await this.c.local.get<OutboxEntry>(key)
      if (value == null || this.inFlight.has(key.slice(PREFIX.length))) continue
      if (which.force !== true && value.nextAt > now) continue
      let envelope: Envelope
      try {
        envelope = decodeEnvelope(value.envelope)
      } catch (err: any) {
        this.log.error('dropped an unreadable outbox entry %s: %s', key, err.message)
        await this.writes.delete(key)
        continue
      }
      if (unreachable.has(envelope.toKeyId)) {
        await this.postpone(envelope, value, value.lastError ?? 'mailbox unreachable')
        continue
      }
      this.inFlight.add(envelope.id)
      try {
        const delivery = await this.attempt(envelope, value, options)
        if (delivery.where === 'outbox') unreachable.add(envelope.toKeyId)
        else this.listener(envelope, delivery)
      } catch (err: any) {
        this.log.error('outbox attempt for %s failed: %e', envelope.id, err)
      } finally {
        this.inFlight.delete(envelope.id)
      }
    }
  }

  private async attempt (envelope: Envelope, entry: OutboxEntry, options: AbortOptions): Promise<Delivery> {
    const id = envelope.id
    const key = PREFIX + id
    if (this.now() - entry.createdAt > this.maxAgeMs) {
      await this.writes.delete(key)
      return { id, status: 'failed', reason: `not delivered within ${Math.round(this.maxAgeMs / 3_600_000)} h` }
    }
    const live = await this.sendLive(envelope, options)
    if (live.delivered || live.code === 'already-delivered') {
      await this.writes.delete(key)
      return { id, status: 'delivered', where: 'live' }
    }
    if (endsLive(live)) {
      this.log('%s refused by its recipient for good (%s): %s', id, live.code, live.reason)
      await this.writes.delete(key)
      return { id, status: 'failed', reason: live.reason, ...(live.code != null ? { code: live.code } : {}) }
    }
    try {
      const keys = entry.boxPublic != null ? this.c.senderBoxKeys?.(envelope) : undefined
      await this.c.mailbox.store(envelope, {
        signal: timeLimit(this.mailboxTimeoutMs, options),
        ...(keys != null ? { seal: { keys, recipientBoxPublic: entry.boxPublic!, ...(entry.writer != null ? { writer: entry.writer } : {}) } } : {})
      })
      await this.writes.delete(key)
      return { id, status: 'queued', where: 'mailbox', reason: live.reason }
    } catch (err: any) {
      if (err.name === 'InvalidSetItemError') {
        await this.writes.delete(key)
        return { id, status: 'failed', reason: err.message, code: isRefusalCode(err.code) ? err.code : 'malformed' }
      }
      // every holder refused it for good: a tombstone among them means an earlier attempt got
      // through (the recipient had it and removed it), else it can never be stored
      const codes = holderCodes(err, id)
      if (codes.length > 0 && codes.every(c => isRefusalCode(c) && isFinalRefusal(c))) {
        await this.writes.delete(key)
        if (codes.includes('already-delivered')) return { id, status: 'queued', where: 'mailbox' }
        this.log('%s refused by every mailbox holder for good (%s)', id, codes.join(', '))
        return { id, status: 'failed', reason: String(err.message), code: codes[0] as RefusalCode }
      }
      this.log('mailbox store of %s failed: %s', id, err.message)
      await this.postpone(envelope, entry, String(err.message))
      return { id, status: 'queued', where: 'outbox', reason: String(err.message) }
    }
  }

  /** Keep the entry for a later round. Local writes after a send take no signal: a caller
   * who gave up must not leave a delivered envelope behind, or lose a kept one. */
  private async postpone (envelope: Envelope, entry: OutboxEntry, reason: string): Promise<void> {
    entry.attempts++
    entry.lastError = reason.slice(0, 200)
    entry.nextAt = this.now() + Math.min(this.retryMs * 2 ** (entry.attempts - 1), this.retryMaxMs)
    await this.writes.put(PREFIX + envelope.id, entry)
  }

  private async sendLive (envelope: Envelope, options: AbortOptions): Promise<DeliveryResult> {
    let where = await this.where(envelope.toKeyId, false, options)
    if (where == null) return { delivered: false, reason: 'recipient offline' }
    let result = await this.c.messenger.send(where.peerId, where.addrs, envelope, options)
    if (!result.delivered && !where.fresh && !endsLive(result) && result.code !== 'already-delivered') {
      // the cached address may be stale: look again once
      where = await this.where(envelope.toKeyId, true, options)
      if (where == null) return { delivered: false, reason: 'recipient offline' }
      result = await this.c.messenger.send(where.peerId, where.addrs, envelope, options)
    }
    if (!result.delivered) this.locations.delete(envelope.toKeyId)
    return result
  }

  /** The recipient's peer if online: a recent lookup or notice, else the presence record. */
  private async where (keyId: string, fresh: boolean, options: AbortOptions): Promise<{ peerId: string, addrs: string[], fresh: boolean } | undefined> {
    const cached = this.locations.get(keyId)
    if (!fresh && cached != null && this.now() - cached.at < this.presenceCacheMs) {
      return cached.online ? { peerId: cached.peerId, addrs: cached.addrs, fresh: false } : undefined
    }
    let info: PeerLocation | undefined
    try {
      info = await this.c.locate(keyId, options)
    } catch (err: any) {
      this.log('presence of %s unknown: %s', keyId, err.message)
    }
    // no presence record, or a read that could not tell (peers of the network gone): the peer
    // last seen online is still worth a live attempt before the mailbox
    if (info == null) return cached?.online === true ? { peerId: cached.peerId, addrs: cached.addrs, fresh: true } : undefined
    this.noteLocation(keyId, info)
    return info.online ? { peerId: info.peerId, addrs: info.addrs, fresh: true } : undefined
  }
}

/**
 * The codes with which the mailbox holders that answered refused item `id`, as the set
 * store's SetWriteError tells (`refusals`: per item id, each holder's refusal with its
 * code). Empty when the error says nothing about the item.
 */
function holderCodes (err: any, id: string): string[] {
  const refusals: unknown = err?.refusals?.[id]
  return Array.isArray(refusals) ? refusals.map(r => String((r as { code?: unknown } | null)?.code)) : []
}
