/**
 * What became of each message the user sent (a direct message, or each member's copy of a
 * conference message), and what the user tells senders.
 *
 * A sent message goes `sending` → `queued` (kept in the outbox, or waiting in the
 * recipient's mailbox) → `delivered` (the recipient's peer has it: its ack on a live
 * stream, or its `delivered` receipt after reading it from the mailbox) → `read` (its
 * `read` receipt, sent when the recipient opened the conversation); `failed` when every
 * way refused it. A state only moves forward. Receipts are envelopes like any other:
 * signed by the recipient's account, sealed to the sender, live or through the mailbox,
 * so nobody but the recipient can make one.
 *
 * Kept on this peer (its local store): the state of each message sent from here, and the
 * ids of the messages shown here that were not yet told read. Another peer of the same
 * account knows the states of what was sent from it, and the receipts that reach it.
 *
 * Incoming receipts are bounded (MAX_RECEIPT_IDS ids, each checked against a message this
 * peer sent to the key that signed the receipt): an id it did not send there changes
 * nothing and stores nothing. A receipt from someone who is neither a friend nor the
 * recipient of one of the ids is refused (`not-a-friend`).
 */
import type { AbortOptions, ComponentLogger, Logger } from '@libp2p/interface'
import {
  openEnvelope, receiptBodySchema, bytesEqual, RECEIPT_KIND, MAX_RECEIPT_IDS,
  type Envelope, type FriendEntry, type ReceiptBody
} from '@conf-chat/protocol'
import type { Delivery, SendOptions } from '../../delivery/index.js'
import type { EnvelopeContext, UserProfile } from '../../account/index.js'
import type { LocalStore } from '../../storage/index.js'
import type { Friends } from '../friends/index.js'
import { NotFriendError } from '../../errors.js'

export type MessageState = 'sending' | 'queued' | 'delivered' | 'read' | 'failed'

export interface MessageStateInfo {
  state: MessageState
  /** queued: kept in this peer's outbox, or in the recipient's mailbox. */
  where?: 'outbox' | 'mailbox'
}

export interface MessageStateChange extends MessageStateInfo {
  id: string
  /** The recipient's username. */
  to: string
  /** failed: why. */
  reason?: string
  /** A conference message's copy to `to`: the conference, and the message's id (`mid`, the same in every copy). */
  conference?: string
  mid?: string
}

/** A conference message's copy: which conference, which message. */
export interface CopyOf { conference: string, mid: string }

export interface ReceiptEvents {
  /** A direct message the user sent moved to a new state. */
  'message:state': CustomEvent<MessageStateChange>
}

/** Sends of this session kept in memory (a receipt for an older one reads the store). */
const RECENT_SENDS = 1_000

/** A message sent from here: to whom, and its state. */
interface Sent { friendKeyId: string, to: string, info: MessageStateInfo, copyOf?: CopyOf }

/** A state as kept in the local store, with the recipient's name. */
interface StoredState extends MessageStateInfo {
  to: string
  copyOf?: CopyOf
}

/** The state an outbox result (a Delivery) puts a message in. */
export function stateOfDelivery (delivery: Pick<Delivery, 'status' | 'where'>): MessageStateInfo {
  if (delivery.status === 'delivered') return { state: 'delivered' }
  if (delivery.status === 'failed') return { state: 'failed' }
  return delivery.where === 'mailbox' || delivery.where === 'outbox' ? { state: 'queued', where: delivery.where } : { state: 'queued' }
}

/** The states a message may move to from each state: forward only. */
const NEXT: Record<MessageState, ReadonlySet<MessageState>> = {
  sending: new Set(['queued', 'delivered', 'read', 'failed']),
  queued: new Set(['queued', 'delivered', 'read', 'failed']),
  failed: new Set(['delivered', 'read']),
  delivered: new Set(['read']),
  read: new Set()
}

export interface ReceiptsComponents {
  me: { keyId: string }
  local: Pick<LocalStore, 'get' | 'put' | 'entries' | 'writeMany'>
  friends: Pick<Friends, 'friend' | 'profileOf'>
  keys: Parameters<typeof openEnvelope>[1]
  seal: (kind: string, content: unknown, to: UserProfile) => Envelope
  dispatch: (envelope: Envelope, options?: SendOptions) => Promise<Delivery>
  /** Whether `read` receipts are sent (`delivered` ones always are). */
  readReceipts: () => boolean
  /** Send a receipt to a member of a conference for its messages (a member may not be a friend). */
  conferenceReceipt?: (conference: string, toKeyId: string, body: ReceiptBody) => Promise<void>
  emit: <K extends keyof ReceiptEvents>(type: K, detail: ReceiptEvents[K]['detail']) => void
  logger: ComponentLogger
}

export class Receipts {
  private readonly c: ReceiptsComponents
  private readonly log: Logger
  /** Sends of this session and states read back, by id (a receipt may come before a write is done). */
  private readonly recent = new Map<string, Sent>()
  private readonly loading = new Map<string, Promise<Sent | undefined>>()
  /** Messages a mailbox read showed, by sender: told delivered together (`flushDelivered`). */
  private readonly delivered = new Map<string, { to: { keyId: string, username: string }, ids: string[], conference?: string }>()
  /** Local writes not yet begun (key → value): those of one moment go in one batch. */
  private pending = new Map<string, unknown>()
  private writes: Promise<unknown> = Promise.resolve()

  constructor (components: ReceiptsComponents) {
    this.c = components
    this.log = components.logger.forComponent('conf-chat:chat:receipts')
  }

  private stateKey (friendKeyId: string, id: string): string { return `/msgstate/${this.c.me.keyId}/${friendKeyId}/${id}` }
  private unreadKey (friendKeyId: string, id: string): string { return `/unread/${this.c.me.keyId}/${friendKeyId}/${id}` }

  /** A message to `to` (a friend, or a conference member: `copyOf`) is about to be sent. */
  sending (to: { keyId: string, username: string }, id: string, copyOf?: CopyOf): void {
    this.remember(id, { friendKeyId: to.keyId, to: to.username, info: { state: 'sending' }, ...(copyOf != null ? { copyOf } : {}) })
    // kept in memory only: the outcome, a moment later, is what is written
    this.c.emit('message:state', { id, to: to.username, state: 'sending', ...copyOf })
  }

  /**
   * What the outbox made of a message sent to `to` (at once, or later from its retries,
   * also of a send an earlier run here began and could not finish).
   */
  async delivery (to: { keyId: string, username: string }, id: string, delivery: Pick<Delivery, 'status' | 'where' | 'reason'>, options: AbortOptions = {}): Promise<void> {
    const info = stateOfDelivery(delivery)
    await this.move(id, info, to.keyId, options, info.state === 'failed' ? delivery.reason : undefined, to.username)
  }

  /**
   * A receipt (checked: for us, signed by `env.from`'s key) from a friend, or from someone
   * this peer sent a conference message to (under the key it was sent to); anyone else's
   * is refused (`not-a-friend`).
   */
  async receive (env: Envelope, ctx: EnvelopeContext, options: AbortOptions = {}): Promise<void> {
    options.signal?.throwIfAborted()
    const friend = this.c.friends.friend(env.from, env.fromKey)
    // the key it was signed with (the session checked it against the sender's user record)
    const keyId = friend?.keyId ?? (ctx.sender.username === env.from && bytesEqual(ctx.sender.signPublic, env.fromKey) ? ctx.sender.keyId : undefined)
    if (keyId == null) throw new NotFriendError(env.from)
    const body: ReceiptBody = openEnvelope(env, this.c.keys, receiptBodySchema)
    const found = await Promise.all([...new Set(body.ids)].map(async id => await this.move(id, { state: body.state }, keyId, options)))
    if (friend == null && !found.some(f => f)) throw new NotFriendError(env.from)
    // on disk before the receipt is acknowledged (or removed from the mailbox)
    await this.writes
  }

  /** The states of the messages sent to `friendKeyId` from this peer, by id. */
  async states (friendKeyId: string, options: AbortOptions = {}): Promise<Map<string, MessageStateInfo>> {
    const states = new Map<string, MessageStateInfo>()
    const prefix = `/msgstate/${this.c.me.keyId}/${friendKeyId}/`
    for await (const { key, value } of this.c.local.entries<StoredState>(prefix, options)) {
      states.set(key.slice(prefix.length), { state: value.state, ...(value.where != null ? { where: value.where } : {}) })
    }
    for (const [id, sent] of this.recent) if (sent.friendKeyId === friendKeyId) states.set(id, sent.info)
    return states
  }

  /**
   * A message from `from` (a friend; or a member, in `conference`) was shown here: it waits
   * to be told read. From the mailbox, its sender is told now that it was delivered (with
   * the others of the same read: `flushDelivered`).
   */
  shown (from: { keyId: string, username: string }, id: string, live: boolean, conference?: string): void {
    this.write(this.unreadKey(from.keyId, id), conference != null ? { conf: conference } : 1)
    if (!live) {
      const key = `${conference ?? ''}/${from.keyId}`
      const pending = this.delivered.get(key) ?? { to: from, ids: [], ...(conference != null ? { conference } : {}) }
      pending.ids.push(id)
      this.delivered.set(key, pending)
    }
  }

  /** Send the `delivered` receipts for what a mailbox read showed. */
  flushDelivered (): void {
    const all = [...this.delivered.values()]
    this.delivered.clear()
    for (const { to, ids, conference } of all) this.tell(to, 'delivered', ids, conference)
  }

  /**
   * The user opened (or is looking at) the conversation with `friend`: what was shown from
   * them is read. Sends the `read` receipt unless read receipts are off; resolves with how
   * many messages it named.
   */
  async markRead (friend: FriendEntry, options: AbortOptions = {}): Promise<number> {
    const prefix = `/unread/${this.c.me.keyId}/${friend.keyId}/`
    return await this.markWhere(prefix, v => v === 1, () => friend, undefined, options)
  }

  /** The same for a conference: each sender of what was shown there is told. */
  async markConferenceRead (conference: string, options: AbortOptions = {}): Promise<number> {
    const prefix = `/unread/${this.c.me.keyId}/`
    return await this.markWhere(prefix, v => (v as { conf?: unknown })?.conf === conference, key => ({ keyId: key.split('/')[0]!, username: '' }), conference, options)
  }

  /** Forget the unread marks under `prefix` that `pick` takes, and tell their senders. */
  private async markWhere (prefix: string, pick: (value: unknown) => boolean, senderOf: (rest: string) => { keyId: string, username: string }, conference: string | undefined, options: AbortOptions): Promise<number> {
    await this.writes
    const found: Array<{ key: string, rest: string }> = []
    for await (const { key, value } of this.c.local.entries(prefix, options)) if (pick(value)) found.push({ key, rest: key.slice(prefix.length) })
    if (found.length === 0) return 0
    await this.c.local.writeMany([], found.map(f => f.key), options)
    if (!this.c.readReceipts()) return 0
    const bySender = new Map<string, { to: { keyId: string, username: string }, ids: string[] }>()
    for (const { rest } of found) {
      const to = senderOf(rest)
      const entry = bySender.get(to.keyId) ?? { to, ids: [] }
      entry.ids.push(rest.slice(rest.lastIndexOf('/') + 1))
      bySender.set(to.keyId, entry)
    }
    for (const { to, ids } of bySender.values()) this.tell(to, 'read', ids, conference)
    return found.length
  }

  /** Wait for the local writes begun so far. */
  async settled (): Promise<void> { await this.writes }

  private tell (to: { keyId: string, username: string }, state: ReceiptBody['state'], ids: string[], conference?: string): void {
    for (let i = 0; i < ids.length; i += MAX_RECEIPT_IDS) {
      const body = { state, ids: ids.slice(i, i + MAX_RECEIPT_IDS) }
      const sent = conference != null ? this.c.conferenceReceipt?.(conference, to.keyId, body) : this.tellFriend(to, body)
      sent?.catch(err => { this.log('%s receipt to %s: %s', state, to.username === '' ? to.keyId : to.username, err.message) })
    }
  }

  private async tellFriend (to: { keyId: string, username: string }, body: ReceiptBody): Promise<void> {
    const friend = this.c.friends.friend(to.username)
    if (friend == null || friend.keyId !== to.keyId) return // no longer a friend: nothing to tell
    const profile = this.c.friends.profileOf(friend)
    const d = await this.c.dispatch(this.c.seal(RECEIPT_KIND, body, profile), { recipientBoxPublic: profile.boxPublic })
    if (d.status === 'failed') this.log('%s receipt to %s failed: %s', body.state, to.username, d.reason)
  }

  /**
   * Move message `id` to `next` if that is forward, only if it was sent to `friendKeyId`.
   * `create` (the outbox's own word, never a receipt's): the recipient's name, for a
   * message whose state was never written (a run that ended while sending it).
   */
  private async move (id: string, next: MessageStateInfo, friendKeyId: string, options: AbortOptions, reason?: string, create?: string): Promise<boolean> {
    const sent = this.recent.get(id) ?? await this.load(friendKeyId, id, create, options)
    // not a message sent to them from here: nothing to change
    if (sent == null || sent.friendKeyId !== friendKeyId) return false
    // checked and changed in one step: moves of one id at the same time see each other's
    if (!NEXT[sent.info.state].has(next.state)) return true
    if (next.state === 'queued' && sent.info.state === 'queued' && sent.info.where === next.where) return true
    sent.info = next
    this.persist(sent, id)
    this.c.emit('message:state', { id, to: sent.to, ...next, ...(reason != null ? { reason } : {}), ...sent.copyOf })
    return true
  }

  /**
   * A message sent in an earlier session here, as the store has it (or a write of it not
   * yet begun), kept with this session's sends from then on; loads of one id at the same
   * time share one read.
   */
  private async load (friendKeyId: string, id: string, create: string | undefined, options: AbortOptions): Promise<Sent | undefined> {
    let loading = this.loading.get(id)
    if (loading == null) {
      const key = this.stateKey(friendKeyId, id)
      loading = (async () => {
        const stored = (this.pending.get(key) as StoredState | undefined) ?? await this.c.local.get<StoredState>(key, options)
        if (stored == null) return undefined
        return { friendKeyId, to: stored.to, info: { state: stored.state, ...(stored.where != null ? { where: stored.where } : {}) }, ...(stored.copyOf != null ? { copyOf: stored.copyOf } : {}) }
      })()
      this.loading.set(id, loading)
      loading.finally(() => { this.loading.delete(id) }).catch(() => {})
    }
    const found = await loading
    let sent = this.recent.get(id) ?? found
    if (sent == null && create != null) sent = { friendKeyId, to: create, info: { state: 'sending' } }
    if (sent != null && sent.friendKeyId === friendKeyId) this.remember(id, sent)
    return sent
  }

  private remember (id: string, sent: Sent): void {
    this.recent.set(id, sent)
    // the oldest are in the store by now
    if (this.recent.size > RECENT_SENDS) this.recent.delete(this.recent.keys().next().value as string)
  }

  private persist (sent: Sent, id: string): void {
    const stored: StoredState = { ...sent.info, to: sent.to, ...(sent.copyOf != null ? { copyOf: sent.copyOf } : {}) }
    this.write(this.stateKey(sent.friendKeyId, id), stored)
  }

  private write (key: string, value: unknown): void {
    const first = this.pending.size === 0
    this.pending.set(key, value)
    if (!first) return
    this.writes = this.writes
      .then(async () => {
        const batch = [...this.pending]
        this.pending = new Map()
        await this.c.local.writeMany(batch, [])
      })
      .catch(err => { this.log('local write: %s', err.message) })
  }
}
