/**
 * Membership, shared by the commands and the inbound handlers: applying a verified
 * record to this user's view (and telling the user what changed), reading the record
 * again, the owner's record changes, and sealing envelopes to the current members.
 * Every change of one conference runs under its lock (`serial`).
 */
import type { AbortOptions, Logger } from '@libp2p/interface'
import {
  createEnvelope, conferenceIdOf, conferenceWriterSeed, currentMembers, isMemberAt, leftSince, mergeLeft, bytesEqual, MAX_CONFERENCE_MEMBERS,
  CONF_INVITE_KIND, CONF_UPDATE_KIND, CONFERENCE_WRITER_SEED_BYTES, MAX_CONF_RECORD_BODY_BYTES,
  type AccountKeys, type ConferenceEntry, type ConferencePayload, type ConferenceRef, type Envelope
} from '@conf-chat/protocol'
import type { UserProfile } from '../../account/index.js'
import type { SendOptions } from '../../delivery/index.js'
import { UnknownConferenceError } from './errors.js'
import { KeyedLock } from './lock.js'
import { refKey, type ConferenceRecord, type ConferenceRecords } from './records.js'
import type { ConferenceStateView } from './state-view.js'
import type { ConferenceDelivery, ConferenceInfo, ConferencesComponents } from './types.js'

type Member = ConferencePayload['members'][number]

/** Throttle entries (conference, or conference and sender) kept before old ones are dropped. */
const MAX_REFRESH_KEYS = 1_000

export interface MembershipComponents {
  me: { username: string, keyId: string }
  keys: AccountKeys
  view: ConferenceStateView
  records: ConferenceRecords
  profile: ConferencesComponents['profile']
  dispatch: ConferencesComponents['dispatch']
  emit: ConferencesComponents['emit']
  now: () => number
  log: Logger
}

export interface MembershipInit {
  /** Shortest time between two reads of one record caused by `refresh(id, false)`, in ms. */
  refreshMinMs: number
}

/** What a conference is, as the user sees it. */
export function infoOf (entry: ConferenceEntry): ConferenceInfo {
  return { id: entry.id, key: refKey(entry.ref), name: entry.name, owner: entry.owner, members: currentMembers(entry).map(m => m.username), createdAt: entry.createdAt }
}

/** The history conversation of a conference: no key id looks like this, so it never mixes with a direct one. */
export function conversationOf (ref: ConferenceRef): string {
  return `conference:${ref.owner}/${ref.local}`
}

/** Keep the record under its limit: drop the earliest former members first. */
export function prunePastMembers (p: ConferencePayload): void {
  while (p.members.length > MAX_CONFERENCE_MEMBERS) {
    const i = p.members.findIndex(m => leftSince(p, m.keyId) != null)
    if (i < 0) return
    p.members.splice(i, 1)
  }
}

export class Membership {
  private readonly c: MembershipComponents
  private readonly init: MembershipInit
  private readonly lock = new KeyedLock()
  private readonly lastRefresh = new Map<string, number>()

  constructor (components: MembershipComponents, init: MembershipInit) {
    this.c = components
    this.init = init
  }

  /** Run changes of one conference one at a time. */
  async serial<T> (id: string, fn: () => Promise<T>): Promise<T> {
    return await this.lock.run(id, fn)
  }

  /**
   * Apply a verified record newer than what we know: store the view, keep the record, and
   * tell the user what changed (unless `quiet`: our own change). `writers`: the owner's
   * writer seeds that came with it (confRecordBodySchema), kept with the members. Returns
   * the entry, or undefined when the record is not about this user at all. Call under the
   * conference's lock.
   */
  async applyRecord (ref: ConferenceRef, record: ConferenceRecord, by: string, quiet = false, options: AbortOptions = {}, writers?: Uint8Array): Promise<ConferenceEntry | undefined> {
    const { me, view, emit } = this.c
    const id = conferenceIdOf(ref.owner, ref.local)
    const existing = view.entry(id)
    await this.c.records.keep(id, record, options)
    const p = record.payload
    const seedOf = (m: Member, i: number): Uint8Array | undefined => {
      const given = writers?.length === p.members.length * CONFERENCE_WRITER_SEED_BYTES
        ? writers.subarray(i * CONFERENCE_WRITER_SEED_BYTES, (i + 1) * CONFERENCE_WRITER_SEED_BYTES)
        : undefined
      return given != null && given.some(b => b !== 0) ? given.slice() : existing?.members.find(e => e.keyId === m.keyId)?.writer
    }
    if (existing != null && record.record.seq <= existing.seq) {
      // the same record may come again with the seeds (read from the DHT first, then the envelope)
      if (writers == null || record.record.seq !== existing.seq) return existing
      const members = existing.members.map(e => {
        const i = p.members.findIndex(m => m.keyId === e.keyId)
        const writer = i >= 0 ? seedOf(p.members[i]!, i) : e.writer
        return writer != null ? { ...e, writer } : e
      })
      const changed = members.some((m, i) => {
        const was = existing.members[i]!.writer
        return m.writer != null && (was == null || !bytesEqual(m.writer, was))
      })
      return changed ? view.save({ ...existing, members }) : existing
    }
    const next: ConferenceEntry = {
      id,
      ref,
      name: p.name,
      owner: p.owner,
      seq: record.record.seq,
      members: p.members.map((m, i) => {
        const writer = seedOf(m, i)
        return { username: m.username, keyId: m.keyId, joinedAt: m.joinedAt, ...(m.boxPublic != null ? { boxPublic: m.boxPublic } : {}), ...(writer != null ? { writer } : {}) }
      }),
      left: mergeLeft(existing?.left ?? [], p.left),
      createdAt: p.createdAt
    }
    const member = isMemberAt(next, me.keyId)
    if (!member) {
      if (existing == null) return undefined
      next.leftAt = existing.leftAt ?? leftSince(next, me.keyId) ?? this.c.now()
    }
    const saved = view.save(next)
    if (quiet) return saved
    const info = infoOf(saved)
    if (existing == null || existing.leftAt != null) {
      if (member) emit('conference:invited', { conference: info, by })
      return saved
    }
    if (!member) {
      if (existing.leftAt == null) emit('conference:removed', { conference: info, usernames: [me.username], by, you: true })
      return saved
    }
    const was = new Set(currentMembers(existing).map(m => m.keyId))
    const now = new Set(currentMembers(saved).map(m => m.keyId))
    const added = saved.members.filter(m => now.has(m.keyId) && !was.has(m.keyId)).map(m => m.username)
    if (added.length > 0) emit('conference:joined', { conference: info, usernames: added, by })
    const gone = existing.members.filter(m => was.has(m.keyId) && !now.has(m.keyId))
    const removedNow = gone.filter(m => saved.left.some(l => l.keyId === m.keyId && l.removed === true)).map(m => m.username)
    if (removedNow.length > 0) emit('conference:removed', { conference: info, usernames: removedNow, by, you: false })
    for (const m of gone) {
      if (!removedNow.includes(m.username)) emit('conference:left', { conference: info, username: m.username })
    }
    return saved
  }

  /**
   * Read the record from the DHT and apply it if newer. `force`: even if read a moment ago.
   * Call under the conference's lock.
   */
  async refresh (id: string, force: boolean, ref?: ConferenceRef, options: AbortOptions = {}, throttleKey = id): Promise<ConferenceEntry | undefined> {
    const entry = this.c.view.entry(id)
    const where = entry?.ref ?? ref
    if (where == null) return undefined
    const last = this.lastRefresh.get(throttleKey) ?? 0
    if (!force && this.c.now() - last < this.init.refreshMinMs) return entry
    this.forgetOldRefreshes()
    this.lastRefresh.set(throttleKey, this.c.now())
    let found
    try {
      found = await this.c.records.read(where, options)
    } catch (err) {
      // a read that could not tell is no read: the next message of this sender reads again
      this.lastRefresh.delete(throttleKey)
      throw err
    }
    if (found == null) return entry
    const owner = found.payload.members.find(m => m.keyId === where.owner)?.username ?? found.payload.owner
    const applied = await this.applyRecord(where, found, owner, false, options)
    if (applied != null && applied.ref.owner === this.c.me.keyId) {
      // after this change, in the background: a refresh may run for an inbound envelope, whose ack waits for no DHT write
      this.serial(id, async () => { await this.catchUpLeaves(applied) })
        .catch(err => { this.c.log('could not write the leaves of %s: %s', id, err.message) })
    }
    return applied
  }

  /** Keeps the throttle's memory bounded: senders are many, their windows short. */
  private forgetOldRefreshes (): void {
    if (this.lastRefresh.size < MAX_REFRESH_KEYS) return
    const now = this.c.now()
    for (const [key, at] of this.lastRefresh) if (now - at >= this.init.refreshMinMs) this.lastRefresh.delete(key)
  }

  /** The owner: leaves it heard of but could not write into the record then (it was offline from the DHT). */
  private async catchUpLeaves (known: ConferenceEntry): Promise<void> {
    const entry = this.c.view.entry(known.id) ?? known
    const record = this.c.records.held(entry.id)
    if (record == null) return
    const missing = entry.left.filter(l => !record.payload.left.some(r => r.keyId === l.keyId && r.leftAt === l.leftAt))
    if (missing.length === 0) return
    const updated = await this.changeRecord(entry.id, p => { p.left = mergeLeft(p.left, missing) })
    await this.applyRecord(entry.ref, updated, this.c.me.username, true)
  }

  /** The owner writes a new version of the record (on the newest it can find). Call under the lock. */
  async changeRecord (id: string, mutate: (p: ConferencePayload) => void, options: AbortOptions = {}): Promise<ConferenceRecord> {
    const entry = this.c.view.entry(id)
    if (entry == null) throw new UnknownConferenceError(id)
    return await this.c.records.change(entry, mutate, options)
  }

  /**
   * Send the record to `to` in an invite (new members) or update (the others) envelope
   * each, with this owner's writer seed into every current member's mailbox (to current
   * members only, and where the envelope has room for them).
   */
  async sendRecord (kind: typeof CONF_INVITE_KIND | typeof CONF_UPDATE_KIND, ref: ConferenceRef, record: ConferenceRecord, to: UserProfile[], options: AbortOptions = {}): Promise<ConferenceDelivery[]> {
    const now = this.c.now()
    const seeds = this.writerSeeds(record.payload)
    const fits = record.value.length + seeds.length <= MAX_CONF_RECORD_BODY_BYTES
    return await Promise.all(to.map(async p => {
      const writers = fits && isMemberAt(record.payload, p.keyId) ? { writers: seeds } : {}
      return await this.deliver(this.seal(kind, { conf: ref, record: record.value, ...writers }, p, now), p, options)
    }))
  }

  /**
   * The owner's writer seeds into the mailboxes of the record's current members, in the
   * record's order (confRecordBodySchema): members write into each other's mailboxes
   * with them, sealed, before they know each other (sealed-envelope.ts).
   */
  private writerSeeds (p: ConferencePayload): Uint8Array {
    const out = new Uint8Array(p.members.length * CONFERENCE_WRITER_SEED_BYTES)
    p.members.forEach((m, i) => {
      if (m.keyId === this.c.me.keyId || m.boxPublic == null || !isMemberAt(p, m.keyId)) return
      try {
        out.set(conferenceWriterSeed(this.c.keys, m.boxPublic, this.c.me.keyId, m.keyId), i * CONFERENCE_WRITER_SEED_BYTES)
      } catch {} // a box key with no shared secret: that member gets no sealed items
    })
    return out
  }

  /**
   * A member's envelope to another member `to`: sealed to them and dispatched; into their
   * mailbox it goes under the pair key, or, where their list does not name the pair yet,
   * under the owner's writer key for it, if the owner gave its seed (Mailbox.store).
   */
  async sendTo (entry: ConferenceEntry, kind: string, content: unknown, to: UserProfile, now: number, options: AbortOptions = {}): Promise<ConferenceDelivery> {
    return await this.dispatchTo(entry, this.seal(kind, content, to, now), to, options)
  }

  /** Hand a sealed envelope for member `to` to the outbox (with their writer seed, for their mailbox). */
  async dispatchTo (entry: ConferenceEntry, envelope: Envelope, to: UserProfile, options: AbortOptions = {}): Promise<ConferenceDelivery> {
    const writer = entry.members.find(m => m.keyId === to.keyId)?.writer
    return await this.deliver(envelope, to, writer != null ? { ...options, mailboxWriter: writer } : options)
  }

  private async deliver (envelope: Envelope, to: UserProfile, options: SendOptions): Promise<ConferenceDelivery> {
    return { username: to.username, delivery: await this.c.dispatch(envelope, { ...options, recipientBoxPublic: to.boxPublic }) }
  }

  /** Seal `content` to `to`, signed by this user. */
  seal (kind: string, content: unknown, to: UserProfile, now: number): Envelope {
    return createEnvelope(kind, content, { username: this.c.me.username, keys: this.c.keys }, to, now)
  }

  /** Profiles (keys) of the current members other than this user: the record's pinned keys, else a lookup. */
  async recipients (entry: ConferenceEntry, filter: (m: { keyId: string }) => boolean = () => true, options: AbortOptions = {}): Promise<UserProfile[]> {
    const record = await this.c.records.find(entry, options)
    const keyed = new Map<string, Member>((record?.payload.members ?? []).map(m => [m.keyId, m]))
    const members = currentMembers(entry).filter(m => m.keyId !== this.c.me.keyId && filter(m))
    const out = await Promise.all(members.map(async m => {
      const k = keyed.get(m.keyId)
      if (k?.signPublic != null && k.boxPublic != null) {
        return { username: m.username, fullName: m.username, keyId: m.keyId, signPublic: k.signPublic, boxPublic: k.boxPublic }
      }
      const p = await this.c.profile(m.username, options).catch(() => undefined)
      if (p?.keyId !== m.keyId) { this.c.log('no keys for %s of %s: left out', m.username, entry.id); return undefined }
      return p
    }))
    return out.filter((p): p is UserProfile => p != null)
  }
}
