/**
 * Conferences (group chats): ids bound to the owner's key, the envelope kinds members
 * exchange and the schema of each body, a member's entry in its private state, and the
 * one membership rule every peer applies. Pure: no network, no disk.
 *
 * The owner-signed record (`/cc-conf/<ownerKeyId>/<localId>`, `conferencePayloadSchema`
 * in namespaces.ts) is the membership; each change is a new record with a higher
 * sequence number, and it travels inside the invite and update envelopes, so a member
 * checks it against the owner's key without asking the DHT. Leaving is the one change a
 * member signs itself (a `conf-leave` envelope), so that it works while the owner is away.
 */
import { z } from 'zod'
import { sha256, randomId, KEY_ID_PATTERN } from './crypto.js'
import { InvalidInputError } from './accounts.js'
import { conferenceKey, verifyRecordValue, type ConferencePayload, type VerifiedRecord } from './namespaces.js'
import { InvalidRecordError } from './errors.js'
import { MAX_MESSAGE_CHARS, USERNAME_PATTERN } from './limits.js'

export const CONF_MESSAGE_KIND = 'conf-msg'
export const CONF_INVITE_KIND = 'conf-invite'
export const CONF_UPDATE_KIND = 'conf-update'
export const CONF_LEAVE_KIND = 'conf-leave'
export const CONFERENCE_KINDS = [CONF_MESSAGE_KIND, CONF_INVITE_KIND, CONF_UPDATE_KIND, CONF_LEAVE_KIND] as const
export type ConferenceKind = typeof CONFERENCE_KINDS[number]

/** What users type and see: `conf-` and 16 hex digits of a hash of the owner's key id and the local id. */
export const CONFERENCE_ID_PATTERN = /^conf-[0-9a-f]{16}$/
export const LOCAL_CONFERENCE_ID_PATTERN = /^[0-9a-f]{16}$/
export const MAX_CONFERENCE_NAME_CHARS = 100
/** Members of one conference (the record's limit). */
export const MAX_CONFERENCE_MEMBERS = 256
/** Bytes of the seed of a conference owner's writer key (sealed-envelope.ts). */
export const CONFERENCE_WRITER_SEED_BYTES = 32

const bytes = z.custom<Uint8Array>(v => v instanceof Uint8Array, 'expected bytes')
const time = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER)
const username = z.string().regex(USERNAME_PATTERN)
const keyId = z.string().regex(KEY_ID_PATTERN)
const envelopeId = z.string().regex(/^[0-9a-z]{9}-[0-9a-f]{16}$/)

/**
 * The id of a conference: a hash of its record's key, so one id names one owner's key.
 * Another key cannot make a record with the same id without a 64-bit second preimage.
 */
export function conferenceIdOf (ownerKeyId: string, localId: string): string {
  return `conf-${Buffer.from(sha256(`conf-chat:conference:1:${ownerKeyId}/${localId}`)).toString('hex').slice(0, 16)}`
}

export function newConferenceLocalId (): string {
  return randomId(8)
}

/** Where a conference's record lives; every conference envelope names it. */
export const conferenceRefSchema = z.object({
  owner: keyId,
  local: z.string().regex(LOCAL_CONFERENCE_ID_PATTERN)
}).strict()

export type ConferenceRef = z.infer<typeof conferenceRefSchema>

/** One conference message, sealed to one member: every member gets its own envelope with the same `mid`. */
export const confMessageBodySchema = z.object({
  conf: conferenceRefSchema,
  /** The message's id, the same in every member's copy (history, dedupe). */
  mid: envelopeId,
  text: z.string().min(1).max(MAX_MESSAGE_CHARS)
}).strict()

/** Bytes of an invite's or update's record and writer seeds together: the envelope (64 KiB) has room for them. */
export const MAX_CONF_RECORD_BODY_BYTES = 60 * 1024

/** An invite (to new members) or update (to the others): the owner's newest signed record. */
export const confRecordBodySchema = z.object({
  conf: conferenceRefSchema,
  /** The signed record value, as stored in the DHT. */
  record: bytes.refine(b => b.length <= MAX_CONF_RECORD_BODY_BYTES, 'record too large for an envelope'),
  /**
   * For each member of the record, in its order, the seed of the owner's writer key into
   * that member's mailbox (sealed-envelope.ts conferenceWriterSeed), 32 bytes each; zeros
   * where there is none (the owner, a member without a box key).
   */
  writers: bytes.refine(b => b.length % CONFERENCE_WRITER_SEED_BYTES === 0 && b.length <= MAX_CONFERENCE_MEMBERS * CONFERENCE_WRITER_SEED_BYTES).optional()
}).strict().refine(b => b.record.length + (b.writers?.length ?? 0) <= MAX_CONF_RECORD_BODY_BYTES, 'record and writer seeds too large for an envelope')

/** A member leaves: signed by the member (the envelope), the time is the envelope's. */
export const confLeaveBodySchema = z.object({
  conf: conferenceRefSchema
}).strict()

export type ConfMessageBody = z.infer<typeof confMessageBodySchema>
export type ConfRecordBody = z.infer<typeof confRecordBodySchema>

/**
 * `boxPublic`: the member's box key as the record gives it, so that members seal their
 * mailbox items to each other (sealed-envelope.ts); `writer`: the seed of the owner's
 * writer key into the member's mailbox, as the owner gave it.
 */
const memberSchema = z.object({
  username,
  keyId,
  joinedAt: time,
  boxPublic: bytes.refine(b => b.length === 32).optional(),
  writer: bytes.refine(b => b.length === CONFERENCE_WRITER_SEED_BYTES).optional()
}).strict()
const leftSchema = z.object({ username, keyId, leftAt: time, removed: z.boolean().optional() }).strict()

/**
 * A conference in its member's private state: enough to list it, check senders and
 * send from any peer even before the record is read again. `left` merges the record's
 * list with the leave notices members signed (the owner may not have applied them yet).
 */
export const conferenceEntrySchema = z.object({
  id: z.string().regex(CONFERENCE_ID_PATTERN),
  ref: conferenceRefSchema,
  name: z.string().min(1).max(MAX_CONFERENCE_NAME_CHARS),
  owner: username,
  /** Sequence number of the newest record applied. */
  seq: z.number().int().nonnegative(),
  members: z.array(memberSchema).max(MAX_CONFERENCE_MEMBERS),
  left: z.array(leftSchema).max(1024),
  createdAt: time,
  /** When this user left or was removed: from then on nothing of the conference is accepted. */
  leftAt: time.optional()
}).strict()

export type ConferenceEntry = z.infer<typeof conferenceEntrySchema>

export interface MembershipView {
  members: Array<{ keyId: string, joinedAt: number }>
  left: Array<{ keyId: string, leftAt: number }>
}

/** When `keyId` left since its latest join, if it did. */
export function leftSince (view: MembershipView, keyId: string): number | undefined {
  const member = view.members.find(m => m.keyId === keyId)
  if (member == null) return undefined
  let leftAt: number | undefined
  for (const l of view.left) {
    // a leave before the latest join is history: the owner invited them again
    if (l.keyId === keyId && l.leftAt >= member.joinedAt && (leftAt == null || l.leftAt < leftAt)) leftAt = l.leftAt
  }
  return leftAt
}

/**
 * The membership rule: `keyId` is a member at time `at` if the record lists it and it
 * has not left before `at` (a message sent before its sender left still counts).
 */
export function isMemberAt (view: MembershipView, keyId: string, at = Number.POSITIVE_INFINITY): boolean {
  if (!view.members.some(m => m.keyId === keyId)) return false
  const leftAt = leftSince(view, keyId)
  return leftAt == null || at < leftAt
}

/** Members now: listed by the record and not left since they joined. */
export function currentMembers<M extends { keyId: string, joinedAt: number }> (view: { members: M[], left: MembershipView['left'] }): M[] {
  return view.members.filter(m => leftSince(view, m.keyId) == null)
}

/** Merge leave lists: one entry per member and time, newest last. */
export function mergeLeft<L extends { keyId: string, leftAt: number }> (a: L[], b: L[]): L[] {
  const seen = new Map<string, L>()
  for (const l of [...a, ...b]) seen.set(`${l.keyId}/${l.leftAt}`, l)
  return [...seen.values()].sort((x, y) => x.leftAt - y.leftAt).slice(-1024)
}

/** Verify a conference record carried in an envelope: signature, key binding and schema. */
export function verifyConferenceRecord (ref: ConferenceRef, value: Uint8Array): VerifiedRecord<ConferencePayload> {
  const record = verifyRecordValue<ConferencePayload>(conferenceKey(ref.owner, ref.local), value)
  if (record.namespace !== 'cc-conf') throw new InvalidRecordError('not a conference record')
  return record
}

/** A conference name as typed: trimmed, 1 to 100 characters, one line. */
export function checkConferenceName (name: string): string {
  const trimmed = typeof name === 'string' ? name.trim() : ''
  if (trimmed.length === 0) throw new InvalidInputError('conference name must not be empty')
  if (trimmed.length > MAX_CONFERENCE_NAME_CHARS) throw new InvalidInputError(`conference name too long: at most ${MAX_CONFERENCE_NAME_CHARS} characters`)
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(trimmed)) throw new InvalidInputError('conference name must be one line of text')
  return trimmed
}
