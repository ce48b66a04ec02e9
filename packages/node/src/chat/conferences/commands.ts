/**
 * What the user does with conferences: create one with friends, invite and remove (the
 * owner), leave, send, and read the list, the members and the history. Refusals of the
 * user's own input are thrown before anything is written or sent.
 */
import type { AbortOptions, Logger } from '@libp2p/interface'
import {
  checkMessageText, checkUsername, newEnvelopeId, conferenceIdOf, newConferenceLocalId, checkConferenceName,
  currentMembers, mergeLeft, InvalidInputError,
  CONF_MESSAGE_KIND, CONF_INVITE_KIND, CONF_UPDATE_KIND, CONF_LEAVE_KIND, MAX_CONFERENCE_MEMBERS, RECEIPT_KIND,
  type AccountKeys, type ConferenceEntry, type ConferencePayload, type ConferenceRef, type HistoryEntry
} from '@conf-chat/protocol'
import type { UserProfile } from '../../account/index.js'
import { NotFriendError } from '../../errors.js'
import { AlreadyConferenceMemberError, ConferenceFullError, NotConferenceMemberError, NotConferenceOwnerError } from './errors.js'
import { conversationOf, infoOf, prunePastMembers, type Membership } from './membership.js'
import type { ConferenceRecords } from './records.js'
import type { ConferenceStateView } from './state-view.js'
import type {
  ConferenceChangeResult, ConferenceInfo, ConferenceMemberInfo, ConferenceMessage, ConferenceSendResult, ConferencesComponents
} from './types.js'

export interface ConferenceCommandsComponents {
  me: { username: string, keyId: string }
  keys: Pick<AccountKeys, 'signPublic' | 'boxPublic'>
  friends: ConferencesComponents['friends']
  history: ConferencesComponents['history']
  profile: ConferencesComponents['profile']
  presenceOf: ConferencesComponents['presenceOf']
  dispatch: ConferencesComponents['dispatch']
  receipts?: ConferencesComponents['receipts']
  view: ConferenceStateView
  records: ConferenceRecords
  membership: Membership
  now: () => number
  log: Logger
}

export interface ConferenceCommandsInit {
  presenceConcurrency: number
  refreshConcurrency: number
}

export class ConferenceCommands {
  private readonly c: ConferenceCommandsComponents
  private readonly init: ConferenceCommandsInit

  constructor (components: ConferenceCommandsComponents, init: ConferenceCommandsInit) {
    this.c = components
    this.init = init
  }

  /**
   * Create a conference with friends. Throws InvalidInputError, UnknownUserError or
   * NotFriendError before anything is written or sent.
   */
  async create (name: string, usernames: string[], options: AbortOptions = {}): Promise<ConferenceChangeResult> {
    const { me, keys, records, membership } = this.c
    const cleanName = checkConferenceName(name)
    const invitees = await this.requireFriends(unique(usernames), options)
    if (invitees.length === 0) throw new InvalidInputError('name at least one friend to invite')
    if (invitees.length + 1 > MAX_CONFERENCE_MEMBERS) throw new ConferenceFullError()
    const ref: ConferenceRef = { owner: me.keyId, local: newConferenceLocalId() }
    const id = conferenceIdOf(ref.owner, ref.local)
    const now = this.c.now()
    const payload: ConferencePayload = {
      name: cleanName,
      owner: me.username,
      members: [
        { username: me.username, keyId: me.keyId, joinedAt: now, signPublic: keys.signPublic, boxPublic: keys.boxPublic },
        ...invitees.map(p => ({ username: p.username, keyId: p.keyId, joinedAt: now, signPublic: p.signPublic, boxPublic: p.boxPublic }))
      ],
      left: [],
      createdAt: now,
      updatedAt: now
    }
    return await membership.serial(id, async () => {
      const record = await records.put(ref, 1, payload, options)
      const entry = await membership.applyRecord(ref, record, me.username, true, options)
      if (entry == null) throw new Error('the new conference does not list its owner')
      const deliveries = await membership.sendRecord(CONF_INVITE_KIND, ref, record, invitees, options)
      return { conference: infoOf(entry), usernames: invitees.map(p => p.username), deliveries }
    })
  }

  /** The owner invites more friends; they see what is sent from now on. */
  async invite (idOrPrefix: string, usernames: string[], options: AbortOptions = {}): Promise<ConferenceChangeResult> {
    const { me, membership } = this.c
    const entry = this.c.view.find(idOrPrefix, false)
    this.requireOwner(entry)
    const names = unique(usernames)
    if (names.length === 0) throw new InvalidInputError('name at least one friend to invite')
    const current = currentMembers(entry)
    for (const u of names) {
      if (current.some(m => m.username === u)) throw new AlreadyConferenceMemberError(entry.id, u)
    }
    const invitees = await this.requireFriends(names, options)
    if (current.length + invitees.length > MAX_CONFERENCE_MEMBERS) throw new ConferenceFullError()
    return await membership.serial(entry.id, async () => {
      const now = this.c.now()
      const record = await membership.changeRecord(entry.id, p => {
        const ids = new Set(invitees.map(i => i.keyId))
        // a former member comes back with a new join time: their old leave no longer counts
        p.members = [...p.members.filter(m => !ids.has(m.keyId)), ...invitees.map(i => ({
          username: i.username, keyId: i.keyId, joinedAt: now, signPublic: i.signPublic, boxPublic: i.boxPublic
        }))]
        prunePastMembers(p)
      }, options)
      const updated = await membership.applyRecord(entry.ref, record, me.username, true, options)
      const invited = new Set(invitees.map(i => i.keyId))
      const others = await membership.recipients(updated ?? entry, m => !invited.has(m.keyId), options)
      const [toNew, toOthers] = await Promise.all([
        membership.sendRecord(CONF_INVITE_KIND, entry.ref, record, invitees, options),
        membership.sendRecord(CONF_UPDATE_KIND, entry.ref, record, others, options)
      ])
      return { conference: infoOf(updated ?? entry), usernames: invitees.map(i => i.username), deliveries: [...toNew, ...toOthers] }
    })
  }

  /** The owner removes members: they are told, and get nothing sent afterwards. */
  async remove (idOrPrefix: string, usernames: string[], options: AbortOptions = {}): Promise<ConferenceChangeResult> {
    const { me, membership } = this.c
    const entry = this.c.view.find(idOrPrefix, false)
    this.requireOwner(entry)
    const names = unique(usernames)
    if (names.length === 0) throw new InvalidInputError('name at least one member to remove')
    const current = currentMembers(entry)
    const removed = names.map(u => {
      if (u === me.username) throw new InvalidInputError('to leave your own conference, use leave')
      const m = current.find(m => m.username === u)
      if (m == null) throw new NotConferenceMemberError(entry.id, u)
      return m
    })
    return await membership.serial(entry.id, async () => {
      const now = this.c.now()
      const before = await membership.recipients(entry, undefined, options)
      const record = await membership.changeRecord(entry.id, p => {
        p.left = mergeLeft(p.left, removed.map(m => ({ username: m.username, keyId: m.keyId, leftAt: now, removed: true })))
      }, options)
      const updated = await membership.applyRecord(entry.ref, record, me.username, true, options)
      // the removed hear it too, so that they stop
      const deliveries = await membership.sendRecord(CONF_UPDATE_KIND, entry.ref, record, before, options)
      return { conference: infoOf(updated ?? entry), usernames: removed.map(m => m.username), deliveries }
    })
  }

  /** Leave: every member is told (signed by this user); nothing of the conference is accepted afterwards. */
  async leave (idOrPrefix: string, options: AbortOptions = {}): Promise<ConferenceChangeResult> {
    const { me, view, membership } = this.c
    const entry = view.find(idOrPrefix, false)
    return await membership.serial(entry.id, async () => {
      const now = this.c.now()
      const others = await membership.recipients(entry, undefined, options)
      const mine = { username: me.username, keyId: me.keyId, leftAt: now }
      const left = view.update(entry.id, e => e != null ? { ...e, left: mergeLeft(e.left, [mine]), leftAt: now } : undefined)
      if (entry.ref.owner === me.keyId) {
        // the owner writes its own leave into the record: later readers see it without the notices
        await membership.changeRecord(entry.id, p => { p.left = mergeLeft(p.left, [mine]) }, options)
          .catch(err => { this.c.log('could not write the owner\'s leave of %s: %s', entry.id, err.message) })
      }
      const deliveries = await Promise.all(others.map(async to => await membership.sendTo(entry, CONF_LEAVE_KIND, { conf: entry.ref }, to, now, options)))
      return { conference: infoOf(left ?? entry), usernames: [me.username], deliveries }
    })
  }

  /** Send `text` to every other member: one envelope each, sealed to them. */
  async send (idOrPrefix: string, text: string, options: AbortOptions = {}): Promise<ConferenceSendResult> {
    const { me, membership } = this.c
    const entry = this.c.view.find(idOrPrefix, false)
    const clean = checkMessageText(text)
    const recipients = await membership.recipients(entry, undefined, options)
    const now = this.c.now()
    const mid = newEnvelopeId(now)
    const body = { conf: entry.ref, mid, text: clean }
    const own: HistoryEntry = { id: mid, from: me.username, to: me.username, text: clean, sentAt: now }
    // the outbox entry of each envelope (written before any attempt) is what keeps the message
    const copyOf = { conference: entry.id, mid }
    const [, deliveries] = await Promise.all([
      this.c.history.append(conversationOf(entry.ref), own, true),
      Promise.all(recipients.map(async to => {
        // each copy's state, from before it goes (a member's receipt names the copy's id)
        const envelope = membership.seal(CONF_MESSAGE_KIND, body, to, now)
        this.c.receipts?.sending(to, envelope.id, copyOf)
        const sent = await membership.dispatchTo(entry, envelope, to, options)
        await this.c.receipts?.delivery(to, envelope.id, sent.delivery)
        return sent
      }))
    ])
    return { id: mid, conference: entry.id, sentAt: now, deliveries }
  }

  /** A receipt to a current member of conference `id` (live, else their mailbox under the owner's writer key). */
  async sendReceipt (id: string, toKeyId: string, body: unknown): Promise<void> {
    const entry = this.c.view.entry(id)
    if (entry == null) return
    const [to] = await this.c.membership.recipients(entry, m => m.keyId === toKeyId)
    if (to == null) return // no longer a member: nothing to tell
    await this.c.membership.sendTo(entry, RECEIPT_KIND, body, to, this.c.now())
  }

  /** The user's conferences (not those left), with how many members are online. */
  async list (options: AbortOptions = {}): Promise<ConferenceInfo[]> {
    const entries = this.c.view.active().sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id))
    const online = await this.onlineOf(entries.flatMap(e => currentMembers(e).map(m => m.keyId)), options)
    return entries.map(e => ({ ...infoOf(e), online: currentMembers(e).filter(m => online.get(m.keyId) === true).length }))
  }

  /** The conference's current members with their online status. */
  async members (idOrPrefix: string, options: AbortOptions = {}): Promise<{ conference: ConferenceInfo, members: ConferenceMemberInfo[] }> {
    const entry = this.c.view.find(idOrPrefix, false)
    const current = currentMembers(entry)
    const online = await this.onlineOf(current.map(m => m.keyId), options)
    return {
      conference: infoOf(entry),
      members: current.map(m => ({ username: m.username, joinedAt: m.joinedAt, owner: m.keyId === entry.ref.owner, online: online.get(m.keyId) === true }))
    }
  }

  /** The messages this member sent and received in the conference, oldest first, from any peer. */
  async history (idOrPrefix: string, options: AbortOptions = {}): Promise<{ conference: ConferenceInfo, messages: ConferenceMessage[] }> {
    const entry = this.c.view.find(idOrPrefix, true)
    const entries = await this.c.history.list(conversationOf(entry.ref), options)
    const conference = { id: entry.id, name: entry.name }
    return {
      conference: infoOf(entry),
      messages: entries.map(e => ({ ...e, direction: e.from === this.c.me.username ? 'out' : 'in', live: false, conference }))
    }
  }

  /** Read every conference's record again (after login): changes made while this user was away. */
  async refreshAll (options: AbortOptions = {}): Promise<void> {
    const { membership } = this.c
    const entries = this.c.view.active()
    const step = this.init.refreshConcurrency
    for (let i = 0; i < entries.length; i += step) {
      await Promise.all(entries.slice(i, i + step).map(async e => {
        try {
          await membership.serial(e.id, async () => { await membership.refresh(e.id, true, undefined, options) })
        } catch (err: any) {
          this.c.log('refresh of %s failed: %s', e.id, err.message)
        }
      }))
    }
  }

  /** Friends' pinned keys for each name. Throws InvalidInputError, UnknownUserError, NotFriendError. */
  private async requireFriends (usernames: string[], options: AbortOptions): Promise<UserProfile[]> {
    const out: UserProfile[] = []
    for (const u of usernames) {
      checkUsername(u)
      if (u === this.c.me.username) throw new InvalidInputError('you are a member of your own conferences already')
      const friend = this.c.friends.friend(u)
      if (friend == null) {
        await this.c.profile(u, options) // UnknownUserError for a name nobody holds
        throw new NotFriendError(u)
      }
      out.push(this.c.friends.profileOf(friend))
    }
    return out
  }

  /** Whether each account is online (presence); this user is. */
  private async onlineOf (keyIds: string[], options: AbortOptions): Promise<Map<string, boolean>> {
    const ids = [...new Set(keyIds)]
    const online = new Map<string, boolean>([[this.c.me.keyId, true]])
    const todo = ids.filter(k => !online.has(k))
    const step = this.init.presenceConcurrency
    for (let i = 0; i < todo.length; i += step) {
      await Promise.all(todo.slice(i, i + step).map(async k => {
        online.set(k, (await this.c.presenceOf(k, options).catch(() => undefined))?.online === true)
      }))
    }
    // a read cut short by the caller is no "offline"
    options.signal?.throwIfAborted()
    return online
  }

  private requireOwner (entry: ConferenceEntry): void {
    if (entry.ref.owner !== this.c.me.keyId) throw new NotConferenceOwnerError(entry.id, entry.owner)
  }
}

function unique (names: string[]): string[] {
  return [...new Set(names.map(n => n.trim()).filter(n => n !== ''))]
}
