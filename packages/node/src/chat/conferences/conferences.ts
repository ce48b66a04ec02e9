/**
 * Conferences (group chats) of the logged-in account, on the same machinery as direct
 * messages: every message is one signed envelope per member, sealed to that member and
 * handed to the outbox (live stream with ack, else the member's mailbox, else retried),
 * received through ChatNode's checks, deduplicated by its id, kept in the history, and
 * shown live or in the login's offline batch.
 *
 * Membership: the owner's signed record in the DHT (`/cc-conf/<ownerKeyId>/<localId>`)
 * says who is in; every change is a new record with a higher sequence number, carried in
 * the invite (to new members) and update (to the others) envelopes. Leaving is signed by
 * the leaver and sent to every member, so it takes effect while the owner is offline; the
 * owner writes it into the record when it hears of it. Only the owner invites and removes:
 * the record has one writer, so the owner decides who is in. Each member keeps its view
 * (members, leaves, the record's sequence number) in its private state, so it follows the
 * user to any peer, and drops messages from anyone not a member at the time they were sent.
 */
import { logger } from '@libp2p/logger'
import {
  createEnvelope, openEnvelope, checkMessageText, checkUsername, newEnvelopeId, encodeSignedRecord, createSignedRecord,
  conferenceKey, keyIdOf, conferenceIdOf, newConferenceLocalId, conferenceEntrySchema, confMessageBodySchema,
  confRecordBodySchema, confLeaveBodySchema, verifyConferenceRecord, checkConferenceName, currentMembers, isMemberAt,
  leftSince, mergeLeft, InvalidInputError,
  CONF_MESSAGE_KIND, CONF_INVITE_KIND, CONF_UPDATE_KIND, CONF_LEAVE_KIND, CONFERENCE_ID_PATTERN, MAX_CONFERENCE_MEMBERS,
  type AccountKeys, type ConferenceEntry, type ConferencePayload, type ConferenceRef, type Envelope, type HistoryEntry,
  type PrivateState, type VerifiedRecord
} from '@conf-chat/protocol'
import type { Friends } from '../friends/friends.js'
import type { History } from '../history.js'
import type { LocalStore } from '../../storage/local-store.js'
import type { RecordStore } from '../../network/records/record-store.js'
import type { PrivateStateStore } from '../../account/private-state.js'
import type { PresenceInfo } from '../../account/presence.js'
import type { Delivery } from '../../delivery/outbox.js'
import type { UserProfile } from '../../account/accounts.js'
import type { EnvelopeContext } from '../../account/session.js'
import type { IncomingMessage, DirectMessageEvents } from '../direct/direct-messages.js'
import { NotFriendError } from '../../errors.js'
import { compareEntries } from '../history.js'

const log = logger('conf-chat:conferences')

/** Shortest time between two DHT reads of one conference's record caused by a message. */
const REFRESH_MIN_MS = 5_000
/** Presence lookups `list()` and `members()` run at once. */
const PRESENCE_CONCURRENCY = 8
/** Records read at once after login. */
const REFRESH_CONCURRENCY = 4

// ---------------------------------------------------------------- errors

export class UnknownConferenceError extends Error {
  override name = 'UnknownConferenceError'
  constructor (id: string) { super(`unknown conference: ${id}`) }
}

export class AmbiguousConferenceIdError extends Error {
  override name = 'AmbiguousConferenceIdError'
  constructor (id: string, matches: string[]) { super(`ambiguous conference id ${id}: ${matches.join(', ')}`) }
}

export class NotConferenceMemberError extends Error {
  override name = 'NotConferenceMemberError'
  constructor (id: string, username: string) { super(`not a member of ${id}: ${username}`) }
}

export class NotConferenceOwnerError extends Error {
  override name = 'NotConferenceOwnerError'
  constructor (id: string, owner: string) { super(`only the owner of ${id} (${owner}) can change its members`) }
}

export class AlreadyConferenceMemberError extends Error {
  override name = 'AlreadyConferenceMemberError'
  constructor (id: string, username: string) { super(`already a member of ${id}: ${username}`) }
}

export class ConferenceFullError extends Error {
  override name = 'ConferenceFullError'
  constructor () { super(`a conference has at most ${MAX_CONFERENCE_MEMBERS} members`) }
}

// ---------------------------------------------------------------- public types

export interface ConferenceInfo {
  id: string
  /** The DHT key of its owner-signed record, `/cc-conf/<ownerKeyId>/<localId>`. */
  key: string
  name: string
  owner: string
  /** Current members, in the order they joined. */
  members: string[]
  createdAt: number
  /** Members online now (presence), this user included; set by `list()`. */
  online?: number
}

export interface ConferenceMemberInfo {
  username: string
  joinedAt: number
  owner: boolean
  online: boolean
}

/** A conference message as shown: an IncomingMessage (it sorts into the offline batch with direct ones) plus its conference. */
export interface ConferenceMessage extends IncomingMessage {
  conference: { id: string, name: string }
}

export function isConferenceMessage (m: IncomingMessage | ConferenceMessage): m is ConferenceMessage {
  return (m as ConferenceMessage).conference != null
}

export interface ConferenceDelivery {
  username: string
  delivery: Delivery
}

export interface ConferenceSendResult {
  /** The message's id (the same in every member's copy). */
  id: string
  conference: string
  sentAt: number
  /** One per other member: delivered live, queued (mailbox or outbox), or failed. */
  deliveries: ConferenceDelivery[]
}

export interface ConferenceChangeResult {
  conference: ConferenceInfo
  /** The users invited, removed, or (leave) this user. */
  usernames: string[]
  /** How each member was told. */
  deliveries: ConferenceDelivery[]
}

export interface ConferenceEvents {
  /** This user was invited (live, or read from the mailbox at login). */
  'conference:invited': CustomEvent<{ conference: ConferenceInfo, by: string }>
  /** A conference message arrived live; from the mailbox they come in `messages:offline`. */
  'conference:message': CustomEvent<ConferenceMessage>
  /** The owner invited others. */
  'conference:joined': CustomEvent<{ conference: ConferenceInfo, usernames: string[], by: string }>
  /** A member left. */
  'conference:left': CustomEvent<{ conference: ConferenceInfo, username: string }>
  /** The owner removed members; `you`: this user was among them. */
  'conference:removed': CustomEvent<{ conference: ConferenceInfo, usernames: string[], by: string, you: boolean }>
}

export interface ConferencesComponents {
  me: { username: string, keyId: string }
  keys: AccountKeys
  state: PrivateStateStore
  history: History
  records: RecordStore
  local: LocalStore
  friends: Friends
  profile: (username: string) => Promise<UserProfile>
  presenceOf: (keyId: string) => Promise<PresenceInfo | undefined>
  /** Persist in the outbox and deliver (live, else mailbox, else retried). */
  dispatch: (envelope: Envelope) => Promise<Delivery>
  emit: <K extends keyof ConferenceEvents | 'messages:offline'>(type: K, detail: (ConferenceEvents & DirectMessageEvents)[K]['detail']) => void
}

type Member = ConferencePayload['members'][number]

function refKey (ref: ConferenceRef): string {
  return conferenceKey(ref.owner, ref.local)
}

/** The history conversation of a conference: no key id looks like this, so it never mixes with a direct one. */
function conversationOf (ref: ConferenceRef): string {
  return `conference:${ref.owner}/${ref.local}`
}

export class Conferences {
  private readonly c: ConferencesComponents
  /** The newest verified record of each conference, with the members' keys. */
  private readonly records = new Map<string, VerifiedRecord<ConferencePayload>>()
  private readonly locks = new Map<string, Promise<unknown>>()
  private readonly lastRefresh = new Map<string, number>()
  private readonly receiving = new Set<string>()
  private readonly parsed = new WeakMap<object, ConferenceEntry | null>()
  private batch?: ConferenceMessage[]

  constructor (components: ConferencesComponents) {
    this.c = components
  }

  private get s (): PrivateState { return this.c.state.state }

  // ------------------------------------------------------------ what users do

  /**
   * Create a conference with friends. Throws InvalidInputError, UnknownUserError or
   * NotFriendError before anything is written or sent.
   */
  async create (name: string, usernames: string[]): Promise<ConferenceChangeResult> {
    const cleanName = checkConferenceName(name)
    const invitees = await this.requireFriends(unique(usernames))
    if (invitees.length === 0) throw new InvalidInputError('name at least one friend to invite')
    if (invitees.length + 1 > MAX_CONFERENCE_MEMBERS) throw new ConferenceFullError()
    const ref: ConferenceRef = { owner: this.c.me.keyId, local: newConferenceLocalId() }
    const id = conferenceIdOf(ref.owner, ref.local)
    const now = Date.now()
    const payload: ConferencePayload = {
      name: cleanName,
      owner: this.c.me.username,
      members: [
        { username: this.c.me.username, keyId: this.c.me.keyId, joinedAt: now, signPublic: this.c.keys.signPublic, boxPublic: this.c.keys.boxPublic },
        ...invitees.map(p => ({ username: p.username, keyId: p.keyId, joinedAt: now, signPublic: p.signPublic, boxPublic: p.boxPublic }))
      ],
      left: [],
      createdAt: now,
      updatedAt: now
    }
    return await this.serial(id, async () => {
      const record = await this.putRecord(ref, 1, payload)
      const entry = await this.applyRecord(ref, record, this.c.me.username, true)
      if (entry == null) throw new Error('the new conference does not list its owner')
      const deliveries = await this.sendRecord(CONF_INVITE_KIND, ref, record, invitees)
      return { conference: this.info(entry), usernames: invitees.map(p => p.username), deliveries }
    })
  }

  /** The owner invites more friends; they see what is sent from now on. */
  async invite (idOrPrefix: string, usernames: string[]): Promise<ConferenceChangeResult> {
    const entry = this.requireActive(idOrPrefix)
    this.requireOwner(entry)
    const names = unique(usernames)
    if (names.length === 0) throw new InvalidInputError('name at least one friend to invite')
    const current = currentMembers(entry)
    for (const u of names) {
      if (current.some(m => m.username === u)) throw new AlreadyConferenceMemberError(entry.id, u)
    }
    const invitees = await this.requireFriends(names)
    if (current.length + invitees.length > MAX_CONFERENCE_MEMBERS) throw new ConferenceFullError()
    return await this.serial(entry.id, async () => {
      const now = Date.now()
      const record = await this.changeRecord(entry.id, p => {
        const ids = new Set(invitees.map(i => i.keyId))
        // a former member comes back with a new join time: their old leave no longer counts
        p.members = [...p.members.filter(m => !ids.has(m.keyId)), ...invitees.map(i => ({
          username: i.username, keyId: i.keyId, joinedAt: now, signPublic: i.signPublic, boxPublic: i.boxPublic
        }))]
        prunePastMembers(p)
      })
      const updated = await this.applyRecord(entry.ref, record, this.c.me.username, true)
      const invited = new Set(invitees.map(i => i.keyId))
      const others = await this.recipients(updated ?? entry, m => !invited.has(m.keyId))
      const [toNew, toOthers] = await Promise.all([
        this.sendRecord(CONF_INVITE_KIND, entry.ref, record, invitees),
        this.sendRecord(CONF_UPDATE_KIND, entry.ref, record, others)
      ])
      return { conference: this.info(updated ?? entry), usernames: invitees.map(i => i.username), deliveries: [...toNew, ...toOthers] }
    })
  }

  /** The owner removes members: they are told, and get nothing sent afterwards. */
  async remove (idOrPrefix: string, usernames: string[]): Promise<ConferenceChangeResult> {
    const entry = this.requireActive(idOrPrefix)
    this.requireOwner(entry)
    const names = unique(usernames)
    if (names.length === 0) throw new InvalidInputError('name at least one member to remove')
    const current = currentMembers(entry)
    const removed = names.map(u => {
      if (u === this.c.me.username) throw new InvalidInputError('to leave your own conference, use leave')
      const m = current.find(m => m.username === u)
      if (m == null) throw new NotConferenceMemberError(entry.id, u)
      return m
    })
    return await this.serial(entry.id, async () => {
      const now = Date.now()
      const before = await this.recipients(entry)
      const record = await this.changeRecord(entry.id, p => {
        p.left = mergeLeft(p.left, removed.map(m => ({ username: m.username, keyId: m.keyId, leftAt: now, removed: true })))
      })
      const updated = await this.applyRecord(entry.ref, record, this.c.me.username, true)
      // the removed hear it too, so that they stop
      const deliveries = await this.sendRecord(CONF_UPDATE_KIND, entry.ref, record, before)
      return { conference: this.info(updated ?? entry), usernames: removed.map(m => m.username), deliveries }
    })
  }

  /** Leave: every member is told (signed by this user); nothing of the conference is accepted afterwards. */
  async leave (idOrPrefix: string): Promise<ConferenceChangeResult> {
    const entry = this.requireActive(idOrPrefix)
    return await this.serial(entry.id, async () => {
      const now = Date.now()
      const others = await this.recipients(entry)
      const me = { username: this.c.me.username, keyId: this.c.me.keyId, leftAt: now }
      const left = this.updateEntry(entry.id, e => e != null ? { ...e, left: mergeLeft(e.left, [me]), leftAt: now } : undefined)
      if (entry.ref.owner === this.c.me.keyId) {
        // the owner writes its own leave into the record: later readers see it without the notices
        await this.changeRecord(entry.id, p => { p.left = mergeLeft(p.left, [me]) })
          .catch(err => { log('could not write the owner\'s leave of %s: %s', entry.id, err.message) })
      }
      const deliveries = await Promise.all(others.map(async to => ({
        username: to.username,
        delivery: await this.c.dispatch(this.seal(CONF_LEAVE_KIND, { conf: entry.ref }, to, now))
      })))
      return { conference: this.info(left ?? entry), usernames: [this.c.me.username], deliveries }
    })
  }

  /** Send `text` to every other member: one envelope each, sealed to them. */
  async send (idOrPrefix: string, text: string): Promise<ConferenceSendResult> {
    const entry = this.requireActive(idOrPrefix)
    const clean = checkMessageText(text)
    const recipients = await this.recipients(entry)
    const now = Date.now()
    const mid = newEnvelopeId(now)
    const body = { conf: entry.ref, mid, text: clean }
    const own: HistoryEntry = { id: mid, from: this.c.me.username, to: this.c.me.username, text: clean, sentAt: now }
    // the outbox entry of each envelope (written before any attempt) is what keeps the message
    const [, deliveries] = await Promise.all([
      this.c.history.append(conversationOf(entry.ref), own, true),
      Promise.all(recipients.map(async to => ({ username: to.username, delivery: await this.c.dispatch(this.seal(CONF_MESSAGE_KIND, body, to, now)) })))
    ])
    return { id: mid, conference: entry.id, sentAt: now, deliveries }
  }

  /** The user's conferences (not those left), with how many members are online. */
  async list (): Promise<ConferenceInfo[]> {
    const entries = this.entries().filter(e => e.leftAt == null).sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id))
    const online = await this.onlineOf(entries.flatMap(e => currentMembers(e).map(m => m.keyId)))
    return entries.map(e => ({ ...this.info(e), online: currentMembers(e).filter(m => online.get(m.keyId) === true).length }))
  }

  /** The conference's current members with their online status. */
  async members (idOrPrefix: string): Promise<{ conference: ConferenceInfo, members: ConferenceMemberInfo[] }> {
    const entry = this.requireActive(idOrPrefix)
    const current = currentMembers(entry)
    const online = await this.onlineOf(current.map(m => m.keyId))
    return {
      conference: this.info(entry),
      members: current.map(m => ({ username: m.username, joinedAt: m.joinedAt, owner: m.keyId === entry.ref.owner, online: online.get(m.keyId) === true }))
    }
  }

  /** The messages this member sent and received in the conference, oldest first, from any peer. */
  async history (idOrPrefix: string): Promise<{ conference: ConferenceInfo, messages: ConferenceMessage[] }> {
    const entry = this.find(idOrPrefix, true)
    const entries = await this.c.history.list(conversationOf(entry.ref))
    const conference = { id: entry.id, name: entry.name }
    return {
      conference: this.info(entry),
      messages: entries.map(e => ({ ...e, direction: e.from === this.c.me.username ? 'out' : 'in', live: false, conference }))
    }
  }

  /** Read every conference's record again (after login): changes made while this user was away. */
  async refreshAll (): Promise<void> {
    const entries = this.entries().filter(e => e.leftAt == null)
    for (let i = 0; i < entries.length; i += REFRESH_CONCURRENCY) {
      await Promise.all(entries.slice(i, i + REFRESH_CONCURRENCY).map(async e => {
        try {
          await this.serial(e.id, async () => { await this.refresh(e.id, true) })
        } catch (err: any) {
          log('refresh of %s failed: %s', e.id, err.message)
        }
      }))
    }
  }

  // ------------------------------------------------------------ envelopes in

  /** Handle one conference envelope (checked by ChatNode: for us, signed by the owner of `from`). */
  async receive (env: Envelope, ctx: EnvelopeContext): Promise<void> {
    switch (env.kind) {
      case CONF_MESSAGE_KIND: { await this.receiveMessage(env, ctx); return }
      case CONF_INVITE_KIND:
      case CONF_UPDATE_KIND: { await this.receiveRecord(env); return }
      case CONF_LEAVE_KIND: { await this.receiveLeave(env); return }
      default: throw new Error(`not a conference envelope: ${env.kind}`)
    }
  }

  /** Collect mailbox messages from here on, to show them with the direct ones. */
  beginBatch (): void {
    this.batch = []
  }

  endBatch (): ConferenceMessage[] {
    const batch = this.batch ?? []
    this.batch = undefined
    return batch.sort(compareEntries)
  }

  private async receiveMessage (env: Envelope, ctx: EnvelopeContext): Promise<void> {
    const body = openEnvelope(env, this.c.keys, confMessageBodySchema)
    const id = conferenceIdOf(body.conf.owner, body.conf.local)
    const senderKeyId = keyIdOf(env.fromKey)
    const entry = await this.serial(id, async () => await this.entryForMessage(id, body.conf, env.from, senderKeyId, env.sentAt))
    // a copy of one message arriving twice at once (live and from the mailbox)
    if (this.receiving.has(body.mid)) return
    this.receiving.add(body.mid)
    try {
      const conv = conversationOf(body.conf)
      // shown on this peer (local history), or, from a mailbox, perhaps on another peer (DHT pages)
      const known = ctx.live ? await this.c.history.knows(conv, body.mid) : await this.c.history.has(conv, body.mid)
      if (known) return
      const entryH: HistoryEntry = { id: body.mid, from: env.from, to: this.c.me.username, text: body.text, sentAt: env.sentAt }
      await this.c.history.append(conv, entryH, true)
      const message: ConferenceMessage = { ...entryH, direction: 'in', live: ctx.live, conference: { id, name: entry.name } }
      if (ctx.live) this.c.emit('conference:message', message)
      else if (this.batch != null) this.batch.push(message)
      else this.c.emit('messages:offline', { messages: [message] })
    } finally {
      this.receiving.delete(body.mid)
    }
  }

  /**
   * The conference a message belongs to, if its sender was a member when it was sent and
   * this user is one. A sender not in our view makes us read the record again (at most
   * every few seconds): the update that added them may still be on its way.
   */
  private async entryForMessage (id: string, ref: ConferenceRef, from: string, senderKeyId: string, sentAt: number): Promise<ConferenceEntry> {
    let entry = this.entry(id)
    if (entry == null || (entry.leftAt == null && !isMemberAt(entry, senderKeyId, sentAt))) {
      // an unknown conference: the invite may come later than a member's first message (login)
      entry = await this.refresh(id, false, ref) ?? entry
    }
    if (entry == null) throw new UnknownConferenceError(id)
    if (!isMemberAt(entry, this.c.me.keyId, sentAt)) throw new NotConferenceMemberError(id, this.c.me.username)
    if (!isMemberAt(entry, senderKeyId, sentAt)) throw new NotConferenceMemberError(id, from)
    return entry
  }

  private async receiveRecord (env: Envelope): Promise<void> {
    const body = openEnvelope(env, this.c.keys, confRecordBodySchema)
    const id = conferenceIdOf(body.conf.owner, body.conf.local)
    // membership changes come from the owner alone (the record's one writer)
    if (keyIdOf(env.fromKey) !== body.conf.owner) throw new NotConferenceOwnerError(id, env.from)
    const record = verifyConferenceRecord(body.conf, body.record)
    await this.serial(id, async () => {
      const known = this.entry(id)
      // nobody puts a user in a conference unless a friend asks
      if ((known == null || known.leftAt != null) && this.c.friends.friend(env.from, env.fromKey) == null) throw new NotFriendError(env.from)
      await this.applyRecord(body.conf, record, env.from)
    })
  }

  private async receiveLeave (env: Envelope): Promise<void> {
    const body = openEnvelope(env, this.c.keys, confLeaveBodySchema)
    const id = conferenceIdOf(body.conf.owner, body.conf.local)
    const keyId = keyIdOf(env.fromKey)
    await this.serial(id, async () => {
      const entry = this.entry(id)
      if (entry == null || entry.leftAt != null) return
      const member = entry.members.find(m => m.keyId === keyId)
      if (member == null) throw new NotConferenceMemberError(id, env.from)
      // already known to have left, or a leave from before they were invited again
      if (leftSince(entry, keyId) != null || env.sentAt < member.joinedAt) return
      const leave = { username: env.from, keyId, leftAt: env.sentAt }
      const updated = this.updateEntry(id, e => e != null ? { ...e, left: mergeLeft(e.left, [leave]) } : undefined)
      this.c.emit('conference:left', { conference: this.info(updated ?? entry), username: env.from })
      if (entry.ref.owner === this.c.me.keyId) {
        // the owner writes it into the record and tells the members, so that every view agrees
        try {
          const record = await this.changeRecord(id, p => { p.left = mergeLeft(p.left, [leave]) })
          const now = await this.applyRecord(entry.ref, record, this.c.me.username, true)
          await this.sendRecord(CONF_UPDATE_KIND, entry.ref, record, await this.recipients(now ?? entry))
        } catch (err: any) {
          log('could not write the leave of %s from %s: %s', env.from, id, err.message)
        }
      }
    })
  }

  // ------------------------------------------------------------ records

  /**
   * Apply a verified record newer than what we know: store the view, keep the record, and
   * tell the user what changed (unless `quiet`: our own change). Returns the entry, or
   * undefined when the record is not about this user at all. Call under the conference's lock.
   */
  private async applyRecord (ref: ConferenceRef, record: VerifiedRecord<ConferencePayload>, by: string, quiet = false): Promise<ConferenceEntry | undefined> {
    const id = conferenceIdOf(ref.owner, ref.local)
    const existing = this.entry(id)
    const held = this.records.get(id)
    if (held == null || held.record.seq < record.record.seq) {
      this.records.set(id, record)
      await this.c.local.put(this.recordCacheKey(id), record.value)
    }
    if (existing != null && record.record.seq <= existing.seq) return existing
    const p = record.payload
    const next: ConferenceEntry = {
      id,
      ref,
      name: p.name,
      owner: p.owner,
      seq: record.record.seq,
      members: p.members.map(m => ({ username: m.username, keyId: m.keyId, joinedAt: m.joinedAt })),
      left: mergeLeft(existing?.left ?? [], p.left),
      createdAt: p.createdAt
    }
    const member = isMemberAt(next, this.c.me.keyId)
    if (!member) {
      if (existing == null) return undefined
      next.leftAt = existing.leftAt ?? leftSince(next, this.c.me.keyId) ?? Date.now()
    }
    const saved = this.saveEntry(next)
    if (quiet) return saved
    const info = this.info(saved)
    if (existing == null || existing.leftAt != null) {
      if (member) this.c.emit('conference:invited', { conference: info, by })
      return saved
    }
    if (!member) {
      if (existing.leftAt == null) this.c.emit('conference:removed', { conference: info, usernames: [this.c.me.username], by, you: true })
      return saved
    }
    const was = new Set(currentMembers(existing).map(m => m.keyId))
    const now = new Set(currentMembers(saved).map(m => m.keyId))
    const added = saved.members.filter(m => now.has(m.keyId) && !was.has(m.keyId)).map(m => m.username)
    if (added.length > 0) this.c.emit('conference:joined', { conference: info, usernames: added, by })
    const gone = existing.members.filter(m => was.has(m.keyId) && !now.has(m.keyId))
    const removedNow = gone.filter(m => saved.left.some(l => l.keyId === m.keyId && l.removed === true)).map(m => m.username)
    if (removedNow.length > 0) this.c.emit('conference:removed', { conference: info, usernames: removedNow, by, you: false })
    for (const m of gone) {
      if (!removedNow.includes(m.username)) this.c.emit('conference:left', { conference: info, username: m.username })
    }
    return saved
  }

  /**
   * Read the record from the DHT and apply it if newer. `force`: even if read a moment ago.
   * Call under the conference's lock.
   */
  private async refresh (id: string, force: boolean, ref?: ConferenceRef): Promise<ConferenceEntry | undefined> {
    const entry = this.entry(id)
    const where = entry?.ref ?? ref
    if (where == null) return undefined
    const last = this.lastRefresh.get(id) ?? 0
    if (!force && Date.now() - last < REFRESH_MIN_MS) return entry
    this.lastRefresh.set(id, Date.now())
    const found = await this.c.records.get<ConferencePayload>(refKey(where))
    if (found == null) return entry
    const owner = found.payload.members.find(m => m.keyId === where.owner)?.username ?? found.payload.owner
    const applied = await this.applyRecord(where, found, owner)
    if (applied != null && applied.ref.owner === this.c.me.keyId) await this.catchUpLeaves(applied)
    return applied
  }

  /** The owner: leaves it heard of but could not write into the record then (it was offline from the DHT). */
  private async catchUpLeaves (entry: ConferenceEntry): Promise<void> {
    const record = this.records.get(entry.id)
    if (record == null) return
    const missing = entry.left.filter(l => !record.payload.left.some(r => r.keyId === l.keyId && r.leftAt === l.leftAt))
    if (missing.length === 0) return
    const updated = await this.changeRecord(entry.id, p => { p.left = mergeLeft(p.left, missing) })
    await this.applyRecord(entry.ref, updated, this.c.me.username, true)
  }

  /** The newest record we hold for a conference: in memory, this peer's cache, or the DHT. */
  private async record (entry: ConferenceEntry): Promise<VerifiedRecord<ConferencePayload> | undefined> {
    const held = this.records.get(entry.id)
    if (held != null && held.record.seq >= entry.seq) return held
    const cached = await this.c.local.get<Uint8Array>(this.recordCacheKey(entry.id))
    if (cached instanceof Uint8Array) {
      try {
        const r = verifyConferenceRecord(entry.ref, cached)
        if (r.record.seq >= entry.seq) { this.records.set(entry.id, r); return r }
      } catch (err: any) {
        log('cached record of %s unusable: %s', entry.id, err.message)
      }
    }
    const found = await this.c.records.get<ConferencePayload>(refKey(entry.ref)).catch(() => undefined)
    if (found != null && found.record.seq >= (held?.record.seq ?? 0)) this.records.set(entry.id, found)
    return this.records.get(entry.id)
  }

  /** The owner writes a new version of the record (on the newest it can find). Call under the lock. */
  private async changeRecord (id: string, mutate: (p: ConferencePayload) => void): Promise<VerifiedRecord<ConferencePayload>> {
    const entry = this.entry(id)
    if (entry == null) throw new UnknownConferenceError(id)
    let base = await this.record(entry)
    // another session of the owner (another peer) may have written a newer one
    const found = await this.c.records.get<ConferencePayload>(refKey(entry.ref)).catch(() => undefined)
    if (found != null && (base == null || found.record.seq > base.record.seq)) base = found
    const payload: ConferencePayload = base != null
      ? structuredClone(base.payload)
      : { name: entry.name, owner: entry.owner, members: entry.members.map(m => ({ ...m })), left: entry.left.map(l => ({ ...l })), createdAt: entry.createdAt, updatedAt: 0 }
    mutate(payload)
    payload.updatedAt = Date.now()
    return await this.putRecord(entry.ref, Math.max(base?.record.seq ?? 0, entry.seq) + 1, payload)
  }

  private async putRecord (ref: ConferenceRef, seq: number, payload: ConferencePayload): Promise<VerifiedRecord<ConferencePayload>> {
    const key = refKey(ref)
    const value = encodeSignedRecord(createSignedRecord(key, seq, payload, this.c.keys))
    const record = verifyConferenceRecord(ref, value)
    const result = await this.c.records.put(key, value)
    // the envelopes carry the record: members get it even if no DHT peer took it now (holders republish our copy)
    if (result.replicas === 0) log('conference record %s seq %d stored on no other peer yet', key, seq)
    return record
  }

  private async sendRecord (kind: typeof CONF_INVITE_KIND | typeof CONF_UPDATE_KIND, ref: ConferenceRef, record: VerifiedRecord<ConferencePayload>, to: UserProfile[]): Promise<ConferenceDelivery[]> {
    const now = Date.now()
    return await Promise.all(to.map(async p => ({
      username: p.username,
      delivery: await this.c.dispatch(this.seal(kind, { conf: ref, record: record.value }, p, now))
    })))
  }

  // ------------------------------------------------------------ helpers

  private seal (kind: string, content: unknown, to: UserProfile, now: number): Envelope {
    return createEnvelope(kind, content, { username: this.c.me.username, keys: this.c.keys }, to, now)
  }

  /** Profiles (keys) of the current members other than this user: the record's pinned keys, else a lookup. */
  private async recipients (entry: ConferenceEntry, filter: (m: { keyId: string }) => boolean = () => true): Promise<UserProfile[]> {
    const record = await this.record(entry)
    const keyed = new Map<string, Member>((record?.payload.members ?? []).map(m => [m.keyId, m]))
    const members = currentMembers(entry).filter(m => m.keyId !== this.c.me.keyId && filter(m))
    const out = await Promise.all(members.map(async m => {
      const k = keyed.get(m.keyId)
      if (k?.signPublic != null && k.boxPublic != null) {
        return { username: m.username, fullName: m.username, keyId: m.keyId, signPublic: k.signPublic, boxPublic: k.boxPublic }
      }
      const p = await this.c.profile(m.username).catch(() => undefined)
      if (p?.keyId !== m.keyId) { log('no keys for %s of %s: left out', m.username, entry.id); return undefined }
      return p
    }))
    return out.filter((p): p is UserProfile => p != null)
  }

  /** Friends' pinned keys for each name. Throws InvalidInputError, UnknownUserError, NotFriendError. */
  private async requireFriends (usernames: string[]): Promise<UserProfile[]> {
    const out: UserProfile[] = []
    for (const u of usernames) {
      checkUsername(u)
      if (u === this.c.me.username) throw new InvalidInputError('you are a member of your own conferences already')
      const friend = this.c.friends.friend(u)
      if (friend == null) {
        await this.c.profile(u) // UnknownUserError for a name nobody holds
        throw new NotFriendError(u)
      }
      out.push(this.c.friends.profileOf(friend))
    }
    return out
  }

  private async onlineOf (keyIds: string[]): Promise<Map<string, boolean>> {
    const ids = [...new Set(keyIds)]
    const online = new Map<string, boolean>([[this.c.me.keyId, true]])
    const todo = ids.filter(k => !online.has(k))
    for (let i = 0; i < todo.length; i += PRESENCE_CONCURRENCY) {
      await Promise.all(todo.slice(i, i + PRESENCE_CONCURRENCY).map(async k => {
        online.set(k, (await this.c.presenceOf(k).catch(() => undefined))?.online === true)
      }))
    }
    return online
  }

  private info (entry: ConferenceEntry): ConferenceInfo {
    return { id: entry.id, key: refKey(entry.ref), name: entry.name, owner: entry.owner, members: currentMembers(entry).map(m => m.username), createdAt: entry.createdAt }
  }

  private requireOwner (entry: ConferenceEntry): void {
    if (entry.ref.owner !== this.c.me.keyId) throw new NotConferenceOwnerError(entry.id, entry.owner)
  }

  private requireActive (idOrPrefix: string): ConferenceEntry {
    return this.find(idOrPrefix, false)
  }

  /** A conference by its id or a unique start of it (`conf-3fa9` or `3fa9`). */
  private find (idOrPrefix: string, includeLeft: boolean): ConferenceEntry {
    const wanted = idOrPrefix.trim().toLowerCase()
    const prefix = wanted.startsWith('conf-') ? wanted : `conf-${wanted}`
    if (!/^conf-[0-9a-f]{1,16}$/.test(prefix)) throw new InvalidInputError(`not a conference id: ${idOrPrefix} (conf- and 16 hex digits)`)
    const all = this.entries().filter(e => includeLeft || e.leftAt == null)
    const exact = all.find(e => e.id === prefix)
    if (exact != null) return exact
    const matches = CONFERENCE_ID_PATTERN.test(prefix) ? [] : all.filter(e => e.id.startsWith(prefix))
    if (matches.length === 1) return matches[0] as ConferenceEntry
    if (matches.length > 1) throw new AmbiguousConferenceIdError(idOrPrefix, matches.map(e => e.id))
    throw new UnknownConferenceError(idOrPrefix)
  }

  private entries (): ConferenceEntry[] {
    const out: ConferenceEntry[] = []
    for (const raw of this.s.conferences) {
      if (raw == null || typeof raw !== 'object') continue
      let e = this.parsed.get(raw)
      if (e === undefined) {
        const parsed = conferenceEntrySchema.safeParse(raw)
        e = parsed.success ? parsed.data : null
        if (!parsed.success) log('skipped an unreadable conference entry: %s', parsed.error.issues[0]?.message)
        this.parsed.set(raw, e)
      }
      if (e != null) out.push(e)
    }
    return out
  }

  private entry (id: string): ConferenceEntry | undefined {
    return this.entries().find(e => e.id === id)
  }

  /** Store a conference's entry as given. */
  private saveEntry (entry: ConferenceEntry): ConferenceEntry {
    return this.updateEntry(entry.id, () => entry) ?? entry
  }

  /**
   * Change a conference's entry: `change` gets a copy of the current one (undefined if
   * none) and returns the new one. In memory at once, written in the background (logout
   * flushes it); replayed on a newer state if another session of the account wrote one.
   */
  private updateEntry (id: string, change: (e: ConferenceEntry | undefined) => ConferenceEntry | undefined): ConferenceEntry | undefined {
    let result: ConferenceEntry | undefined
    const mutate = (s: PrivateState): void => {
      const list = s.conferences
      const i = list.findIndex(raw => (raw as { id?: unknown } | null)?.id === id)
      const current = i >= 0 ? conferenceEntrySchema.safeParse(list[i]) : undefined
      const next = change(current?.success === true ? current.data : undefined)
      if (next == null) return
      this.parsed.set(next, next)
      result = next
      s.conferences = i >= 0 ? list.map((raw, j) => j === i ? next : raw) : [...list, next]
    }
    void this.c.state.update(mutate)
    return result
  }

  private recordCacheKey (id: string): string {
    return `/conf/${this.c.me.keyId}/${id}`
  }

  /** Run changes of one conference one at a time. */
  private async serial<T> (id: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(id) ?? Promise.resolve()
    const run = previous.catch(() => {}).then(fn)
    const tail = run.catch(() => {})
    this.locks.set(id, tail)
    void tail.then(() => { if (this.locks.get(id) === tail) this.locks.delete(id) })
    return await run
  }
}

function unique (names: string[]): string[] {
  return [...new Set(names.map(n => n.trim()).filter(n => n !== ''))]
}

/** Keep the record under its limit: drop the earliest former members first. */
function prunePastMembers (p: ConferencePayload): void {
  while (p.members.length > MAX_CONFERENCE_MEMBERS) {
    const i = p.members.findIndex(m => leftSince(p, m.keyId) != null)
    if (i < 0) return
    p.members.splice(i, 1)
  }
}
