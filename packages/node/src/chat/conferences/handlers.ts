/**
 * Conference envelopes from other members, one handler per kind in a map keyed by kind:
 * messages, the owner's invites and updates (the newest record), and leaves. Each one is
 * already checked when it arrives here (for us, signed by the owner of `from`); a handler
 * refuses one by throwing an error with a refusal code.
 */
import type { AbortOptions, Logger } from '@libp2p/interface'
import {
  openEnvelope, keyIdOf, conferenceIdOf, confMessageBodySchema, confRecordBodySchema, confLeaveBodySchema,
  verifyConferenceRecord, isMemberAt, leftSince, mergeLeft,
  CONF_MESSAGE_KIND, CONF_INVITE_KIND, CONF_UPDATE_KIND, CONF_LEAVE_KIND,
  type AccountKeys, type ConferenceEntry, type ConferenceKind, type ConferenceRef, type Envelope, type HistoryEntry
} from '@conf-chat/protocol'
import type { EnvelopeContext } from '../../account/index.js'
import { NoSessionError, NotFriendError } from '../../errors.js'
import { InFlight } from '../../utils/index.js'
import type { OfflineBatch } from './batch.js'
import { NotConferenceMemberError, NotConferenceOwnerError, UnknownConferenceError } from './errors.js'
import { conversationOf, infoOf, type Membership } from './membership.js'
import type { ConferenceStateView } from './state-view.js'
import type { ConferenceMessage, ConferencesComponents } from './types.js'

export interface ConferenceEnvelopeHandler {
  handle: (envelope: Envelope, ctx: EnvelopeContext, options?: AbortOptions) => Promise<void>
}

/** Everything a handler may need; each one picks its part. */
export interface ConferenceHandlerComponents {
  me: { username: string, keyId: string }
  keys: Pick<AccountKeys, 'boxPublic' | 'boxSecret'>
  friends: ConferencesComponents['friends']
  history: ConferencesComponents['history']
  emit: ConferencesComponents['emit']
  receipts?: ConferencesComponents['receipts']
  view: ConferenceStateView
  membership: Membership
  batch: OfflineBatch
  log: Logger
}

export type ConfMessageHandlerComponents = Pick<ConferenceHandlerComponents, 'me' | 'keys' | 'history' | 'emit' | 'receipts' | 'view' | 'membership' | 'batch'>

/**
 * `conf-msg`: kept in the history and shown (live: one event; from the mailbox: in the
 * offline batch), once, if its sender was a member when it was sent and this user is one.
 */
export class ConfMessageHandler implements ConferenceEnvelopeHandler {
  private readonly c: ConfMessageHandlerComponents
  /** Message ids being handled: a copy arriving twice at once (live and from the mailbox). */
  private readonly receiving = new InFlight()

  constructor (components: ConfMessageHandlerComponents) {
    this.c = components
  }

  async handle (env: Envelope, ctx: EnvelopeContext, options: AbortOptions = {}): Promise<void> {
    const { me, history, emit } = this.c
    const body = openEnvelope(env, this.c.keys, confMessageBodySchema)
    const id = conferenceIdOf(body.conf.owner, body.conf.local)
    const senderKeyId = keyIdOf(env.fromKey)
    const entry = await this.c.membership.serial(id, async () => await this.entryFor(id, body.conf, env.from, senderKeyId, env.sentAt, options))
    // a copy arriving while another is handled is answered with that one's outcome, once it
    // is shown (or, from a mailbox read, kept here to be shown at the end of the read)
    await this.receiving.run(body.mid, async () => {
      const conv = conversationOf(body.conf)
      // shown on this peer (local history), or, from a mailbox, perhaps on another peer (DHT pages)
      const known = ctx.live ? await history.knows(conv, body.mid, options) : await history.has(conv, body.mid, options)
      if (known) return
      const entryH: HistoryEntry = { id: body.mid, from: env.from, to: me.username, text: body.text, sentAt: env.sentAt }
      const conference = { id, name: entry.name }
      // shown at the end of the mailbox read: kept as unshown until then
      const batched = !ctx.live && this.c.batch.open
      // the session is ending: shown here, the account's next peer would show it again
      if (!await history.append(conv, entryH, true, batched ? { conference } : undefined)) throw new NoSessionError('the session is ending')
      const message: ConferenceMessage = { ...entryH, direction: 'in', live: ctx.live, conference }
      // this copy waits to be told read (and, from the mailbox, delivered)
      this.c.receipts?.shown({ keyId: senderKeyId, username: env.from }, env.id, ctx.live, id)
      if (ctx.live) emit('conference:message', message)
      else if (!this.c.batch.add(message)) {
        emit('messages:offline', { messages: [message] })
        this.c.receipts?.flushDelivered()
      }
    }, options)
  }

  /**
   * The conference a message belongs to, if its sender was a member when it was sent and
   * this user is one. A sender not in our view makes us read the record again (at most
   * every few seconds for each sender): the update that added them may still be on its
   * way, and a refusal of their first message is final only after that read.
   */
  private async entryFor (id: string, ref: ConferenceRef, from: string, senderKeyId: string, sentAt: number, options: AbortOptions): Promise<ConferenceEntry> {
    let entry = this.c.view.entry(id)
    if (entry == null || (entry.leftAt == null && !isMemberAt(entry, senderKeyId, sentAt))) {
      // an unknown conference: the invite may come later than a member's first message (login)
      entry = await this.c.membership.refresh(id, false, ref, options, `${id}/${senderKeyId}`) ?? entry
    }
    if (entry == null) throw new UnknownConferenceError(id)
    if (!isMemberAt(entry, this.c.me.keyId, sentAt)) throw new NotConferenceMemberError(id, this.c.me.username)
    if (!isMemberAt(entry, senderKeyId, sentAt)) throw new NotConferenceMemberError(id, from)
    return entry
  }
}

export type ConfRecordHandlerComponents = Pick<ConferenceHandlerComponents, 'keys' | 'friends' | 'view' | 'membership'>

/**
 * `conf-invite` and `conf-update`: the owner's newest record, applied if newer. Only
 * the owner sends them (the record's one writer), and nobody puts a user in a
 * conference unless a friend asks.
 */
export class ConfRecordHandler implements ConferenceEnvelopeHandler {
  private readonly c: ConfRecordHandlerComponents

  constructor (components: ConfRecordHandlerComponents) {
    this.c = components
  }

  async handle (env: Envelope, _ctx: EnvelopeContext, options: AbortOptions = {}): Promise<void> {
    const { friends, view, membership } = this.c
    const body = openEnvelope(env, this.c.keys, confRecordBodySchema)
    const id = conferenceIdOf(body.conf.owner, body.conf.local)
    if (keyIdOf(env.fromKey) !== body.conf.owner) throw new NotConferenceOwnerError(id, env.from)
    const record = verifyConferenceRecord(body.conf, body.record)
    await membership.serial(id, async () => {
      const known = view.entry(id)
      if ((known == null || known.leftAt != null) && friends.friend(env.from, env.fromKey) == null) throw new NotFriendError(env.from)
      await membership.applyRecord(body.conf, record, env.from, false, options, body.writers)
    })
  }
}

export type ConfLeaveHandlerComponents = Pick<ConferenceHandlerComponents, 'me' | 'keys' | 'emit' | 'view' | 'membership' | 'log'>

/**
 * `conf-leave`: a member left (signed by them, so it works while the owner is away). The
 * owner writes it into the record and tells the members, so that every view agrees: in
 * the background, as the ack waits for no DHT write (the leave is in the owner's view at
 * once, and a record write that fails is made at the next refresh: Membership.catchUpLeaves).
 */
export class ConfLeaveHandler implements ConferenceEnvelopeHandler {
  private readonly c: ConfLeaveHandlerComponents

  constructor (components: ConfLeaveHandlerComponents) {
    this.c = components
  }

  async handle (env: Envelope, _ctx: EnvelopeContext, options: AbortOptions = {}): Promise<void> {
    const { me, emit, view, membership } = this.c
    const body = openEnvelope(env, this.c.keys, confLeaveBodySchema)
    const id = conferenceIdOf(body.conf.owner, body.conf.local)
    const keyId = keyIdOf(env.fromKey)
    const leave = await membership.serial(id, async () => {
      const entry = view.entry(id)
      if (entry == null || entry.leftAt != null) return undefined
      const member = entry.members.find(m => m.keyId === keyId)
      if (member == null) throw new NotConferenceMemberError(id, env.from)
      // already known to have left, or a leave from before they were invited again
      if (leftSince(entry, keyId) != null || env.sentAt < member.joinedAt) return undefined
      const leave = { username: env.from, keyId, leftAt: env.sentAt }
      const updated = view.update(id, e => e != null ? { ...e, left: mergeLeft(e.left, [leave]) } : undefined)
      emit('conference:left', { conference: infoOf(updated ?? entry), username: env.from })
      return entry.ref.owner === me.keyId ? leave : undefined
    })
    if (leave == null) return
    // not tied to this envelope's handling (nor its signal)
    membership.serial(id, async () => {
      const entry = view.entry(id)
      if (entry == null) return
      const record = await membership.changeRecord(id, p => { p.left = mergeLeft(p.left, [leave]) })
      const now = await membership.applyRecord(entry.ref, record, me.username, true)
      await membership.sendRecord(CONF_UPDATE_KIND, entry.ref, record, await membership.recipients(now ?? entry))
    }).catch(err => { this.c.log('could not write the leave of %s from %s: %s', env.from, id, err.message) })
  }
}

/** The handlers, one per conference envelope kind. */
export function conferenceHandlers (components: ConferenceHandlerComponents): ReadonlyMap<string, ConferenceEnvelopeHandler> {
  const record = new ConfRecordHandler(components)
  const handlers: Record<ConferenceKind, ConferenceEnvelopeHandler> = {
    [CONF_MESSAGE_KIND]: new ConfMessageHandler(components),
    [CONF_INVITE_KIND]: record,
    [CONF_UPDATE_KIND]: record,
    [CONF_LEAVE_KIND]: new ConfLeaveHandler(components)
  }
  return new Map(Object.entries(handlers))
}
