/**
 * What became of each direct message the user sent, and what the user tells senders.
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
 * Incoming receipts are bounded (MAX_RECEIPT_IDS ids, each checked against a message sent
 * to that friend from this peer): an id this peer did not send to that friend changes
 * nothing and stores nothing.
 */
import type { AbortOptions, ComponentLogger, Logger } from '@libp2p/interface'
import {
  openEnvelope, receiptBodySchema, RECEIPT_KIND, MAX_RECEIPT_IDS,
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
}

export interface ReceiptEvents {
  /** A direct message the user sent moved to a new state. */
  'message:state': CustomEvent<MessageStateChange>
}

/** Sends of this session kept in memory (a receipt for an older one reads the store). */
const RECENT_SENDS = 1_000

/** A message sent from here: to whom, and its state. */
interface Sent { friendKeyId: string, to: string, info: MessageStateInfo }

/** A state as kept in the local store, with the recipient's name. */
interface StoredState extends MessageStateInfo {
  to: string
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
  private readonly delivered = new Map<string, { friend: FriendEntry, ids: string[] }>()
  /** Local writes not yet begun (key → value): those of one moment go in one batch. */
  private pending = new Map<string, unknown>()
  private writes: Promise<unknown> = Promise.resolve()

  constructor (components: ReceiptsComponents) {
    this.c = components
    this.log = components.logger.forComponent('conf-chat:chat:receipts')
  }

  private stateKey (friendKeyId: string, id: string): string { return `/msgstate/${this.c.me.keyId}/${friendKeyId}/${id}` }
  private unreadKey (friendKeyId: string, id: string): string { return `/unread/${this.c.me.keyId}/${friendKeyId}/${id}` }

  /** A message to `friend` is about to be sent. */
  sending (friend: FriendEntry, id: string): void {
    this.remember(id, { friendKeyId: friend.keyId, to: friend.username, info: { state: 'sending' } })
    // kept in memory only: the outcome, a moment later, is what is written
    this.c.emit('message:state', { id, to: friend.username, state: 'sending' })
  }

  /**
   * What the outbox made of a message sent to `to` (at once, or later from its retries,
   * also of a send an earlier run here began and could not finish).
   */
  async delivery (to: { keyId: string, username: string }, id: string, delivery: Pick<Delivery, 'status' | 'where' | 'reason'>, options: AbortOptions = {}): Promise<void> {
    const state: MessageState = delivery.status === 'delivered' ? 'delivered' : delivery.status === 'queued' ? 'queued' : 'failed'
    const where = delivery.where === 'mailbox' || delivery.where === 'outbox' ? delivery.where : undefined
    const reason = state === 'failed' ? delivery.reason : undefined
    await this.move(id, { state, ...(state === 'queued' && where != null ? { where } : {}) }, to.keyId, options, reason, to.username)
  }

  /** A receipt from a friend (checked: for us, signed by `env.from`'s key). */
  async receive (env: Envelope, ctx: EnvelopeContext, options: AbortOptions = {}): Promise<void> {
    options.signal?.throwIfAborted()
    const friend = this.c.friends.friend(env.from, env.fromKey)
    if (friend == null) throw new NotFriendError(env.from)
    const body: ReceiptBody = openEnvelope(env, this.c.keys, receiptBodySchema)
    await Promise.all([...new Set(body.ids)].map(async id => { await this.move(id, { state: body.state }, friend.keyId, options) }))
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
   * A message from `friend` was shown here: it waits to be told read. From the mailbox, its
   * sender is told now that it was delivered (with the others of the same read: `flush`).
   */
  shown (friend: FriendEntry, id: string, live: boolean): void {
    this.write(this.unreadKey(friend.keyId, id), 1)
    if (!live) {
      const ids = this.delivered.get(friend.username) ?? { friend, ids: [] }
      ids.ids.push(id)
      this.delivered.set(friend.username, ids)
    }
  }

  /** Send the `delivered` receipts for what a mailbox read showed. */
  flushDelivered (): void {
    const all = [...this.delivered.values()]
    this.delivered.clear()
    for (const { friend, ids } of all) this.tell(friend, 'delivered', ids)
  }

  /**
   * The user opened (or is looking at) the conversation with `friend`: what was shown from
   * them is read. Sends the `read` receipt unless read receipts are off; resolves with how
   * many messages it named.
   */
  async markRead (friend: FriendEntry, options: AbortOptions = {}): Promise<number> {
    await this.writes
    const prefix = `/unread/${this.c.me.keyId}/${friend.keyId}/`
    const keys: string[] = []
    for await (const { key } of this.c.local.entries(prefix, options)) keys.push(key)
    if (keys.length === 0) return 0
    await this.c.local.writeMany([], keys, options)
    if (!this.c.readReceipts()) return 0
    this.tell(friend, 'read', keys.map(k => k.slice(prefix.length)))
    return keys.length
  }

  /** Wait for the local writes begun so far. */
  async settled (): Promise<void> { await this.writes }

  private tell (friend: FriendEntry, state: ReceiptBody['state'], ids: string[]): void {
    const to = this.c.friends.profileOf(friend)
    for (let i = 0; i < ids.length; i += MAX_RECEIPT_IDS) {
      const envelope = this.c.seal(RECEIPT_KIND, { state, ids: ids.slice(i, i + MAX_RECEIPT_IDS) }, to)
      this.c.dispatch(envelope, { recipientBoxPublic: to.boxPublic })
        .then(d => { if (d.status === 'failed') this.log('%s receipt to %s failed: %s', state, friend.username, d.reason) })
        .catch(err => { this.log('%s receipt to %s: %s', state, friend.username, err.message) })
    }
  }

  /**
   * Move message `id` to `next` if that is forward, only if it was sent to `friendKeyId`.
   * `create` (the outbox's own word, never a receipt's): the recipient's name, for a
   * message whose state was never written (a run that ended while sending it).
   */
  private async move (id: string, next: MessageStateInfo, friendKeyId: string, options: AbortOptions, reason?: string, create?: string): Promise<void> {
    const sent = this.recent.get(id) ?? await this.load(friendKeyId, id, create, options)
    // not a message sent to them from here: nothing to change
    if (sent == null || sent.friendKeyId !== friendKeyId) return
    // checked and changed in one step: moves of one id at the same time see each other's
    if (!NEXT[sent.info.state].has(next.state)) return
    if (next.state === 'queued' && sent.info.state === 'queued' && sent.info.where === next.where) return
    sent.info = next
    this.persist(sent.friendKeyId, sent.to, id, next)
    this.c.emit('message:state', { id, to: sent.to, ...next, ...(reason != null ? { reason } : {}) })
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
        return stored != null ? { friendKeyId, to: stored.to, info: { state: stored.state, ...(stored.where != null ? { where: stored.where } : {}) } } : undefined
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

  private persist (friendKeyId: string, to: string, id: string, info: MessageStateInfo): void {
    const stored: StoredState = { ...info, to }
    this.write(this.stateKey(friendKeyId, id), stored)
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
