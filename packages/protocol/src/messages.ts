/**
 * What users send each other and keep for themselves: the envelope kinds of friends,
 * direct messages and presence notices with the schema of each body, the owner-private
 * state (friends, requests, history page counts) and the history pages, both sealed to
 * their owner, and the check a mailbox holder applies to every item. Pure: no network,
 * no disk.
 */
import { createHmac, randomBytes } from 'node:crypto'
import * as cborg from 'cborg'
import { z } from 'zod'
import { sealTo, openSealed, secretbox, secretboxOpen, SECRETBOX_NONCE_BYTES, KEY_ID_PATTERN, type AccountKeys } from './crypto.js'
import { decodeCbor } from './record.js'
import { InvalidInputError } from './accounts.js'
import { MAX_MESSAGE_CHARS, USERNAME_PATTERN } from './limits.js'

// ---------------------------------------------------------------- envelope kinds

export const DM_KIND = 'dm'
export const FRIEND_REQUEST_KIND = 'friend-request'
export const FRIEND_ACCEPT_KIND = 'friend-accept'
export const FRIEND_REJECT_KIND = 'friend-reject'
export const FRIEND_REMOVE_KIND = 'friend-remove'
export const PRESENCE_KIND = 'presence'
/** A recipient tells the sender that its direct messages reached its peer, or were read. */
export const RECEIPT_KIND = 'receipt'

export const FRIEND_KINDS = [FRIEND_REQUEST_KIND, FRIEND_ACCEPT_KIND, FRIEND_REJECT_KIND, FRIEND_REMOVE_KIND] as const
export type FriendKind = typeof FRIEND_KINDS[number]

/** Longest note a friend request may carry, in characters. */
export const MAX_FRIEND_NOTE_CHARS = 200

const bytes = z.custom<Uint8Array>(v => v instanceof Uint8Array, 'expected bytes')
const bytesOf = (n: number): z.ZodType<Uint8Array> => bytes.refine(b => b.length === n, `must be ${n} bytes`)
const time = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER)
const username = z.string().regex(USERNAME_PATTERN)
const keyId = z.string().regex(KEY_ID_PATTERN)
const envelopeId = z.string().regex(/^[0-9a-z]{9}-[0-9a-f]{16}$/)

export const dmBodySchema = z.object({ text: z.string().min(1).max(MAX_MESSAGE_CHARS) }).strict()
export const friendRequestBodySchema = z.object({ note: z.string().max(MAX_FRIEND_NOTE_CHARS).optional() }).strict()
/** Accept, reject and remove say everything with their kind. */
export const friendAnswerBodySchema = z.object({}).strict()
export const presenceBodySchema = z.object({
  status: z.enum(['online', 'offline']),
  peerId: z.string().min(1).max(128),
  addrs: z.array(z.string().max(256)).max(16)
}).strict()

/** Most message ids one receipt names (a longer list goes as several receipts). */
export const MAX_RECEIPT_IDS = 256
/**
 * `delivered`: the recipient's peer has the messages (read from its mailbox: a live one is
 * acknowledged on its stream); `read`: the recipient opened the conversation with them.
 */
export const receiptBodySchema = z.object({
  state: z.enum(['delivered', 'read']),
  ids: z.array(envelopeId).min(1).max(MAX_RECEIPT_IDS)
}).strict()

export type DmBody = z.infer<typeof dmBodySchema>
export type ReceiptBody = z.infer<typeof receiptBodySchema>
export type FriendRequestBody = z.infer<typeof friendRequestBodySchema>
export type PresenceBody = z.infer<typeof presenceBodySchema>

/** A user's message text as typed: refuse what no recipient would accept, with one clear reason. */
export function checkMessageText (text: string): string {
  if (typeof text !== 'string' || text.trim().length === 0) throw new InvalidInputError('empty message')
  if (text.length > MAX_MESSAGE_CHARS) throw new InvalidInputError(`message too long: at most ${MAX_MESSAGE_CHARS} characters`)
  return text
}

export function checkFriendNote (note: string | undefined): string | undefined {
  if (note == null || note.trim() === '') return undefined
  if (note.length > MAX_FRIEND_NOTE_CHARS) throw new InvalidInputError(`note too long: at most ${MAX_FRIEND_NOTE_CHARS} characters`)
  return note.trim()
}

// ---------------------------------------------------------------- private state

/** A friend's keys are pinned when the friendship begins: later messages must match them. */
export const friendEntrySchema = z.object({
  username,
  keyId,
  signPublic: bytesOf(32),
  boxPublic: bytesOf(32),
  since: time,
  note: z.string().max(MAX_FRIEND_NOTE_CHARS).optional()
}).strict()

export const friendRequestEntrySchema = z.object({
  username,
  keyId,
  signPublic: bytesOf(32),
  boxPublic: bytesOf(32),
  at: time,
  note: z.string().max(MAX_FRIEND_NOTE_CHARS).optional()
}).strict()

export type FriendEntry = z.infer<typeof friendEntrySchema>
export type FriendRequestEntry = z.infer<typeof friendRequestEntrySchema>

/**
 * The owner's private state (`/cc-state/<keyId>`, sealed to the owner). Unknown top-level
 * fields are kept, so that a newer peer's additions survive a write by an older one.
 */
export const privateStateSchema = z.looseObject({
  v: z.literal(1),
  friends: z.array(friendEntrySchema).max(2000),
  incoming: z.array(friendRequestEntrySchema).max(2000),
  outgoing: z.array(friendRequestEntrySchema).max(2000),
  /** Per user, the id of the newest friend envelope from them we acted on: older ones are stale. */
  lastFrom: z.record(z.string(), envelopeId),
  /** History pages per conversation id (see `conversationId`). */
  history: z.record(z.string(), z.object({ pages: z.number().int().nonnegative() }).strict()),
  /** Conferences (issue 5) keep their entries here. */
  conferences: z.array(z.unknown()),
  /**
   * The key each user was first known by (a request, an accept, a friend-add), kept after
   * the friendship or request is gone: a later contact under another key is refused and
   * shown with both fingerprints. Absent in states written before it.
   */
  known: z.record(z.string(), keyId).refine(k => Object.keys(k).length <= 4000, 'too many known keys').optional()
})

export type PrivateState = z.infer<typeof privateStateSchema>

export function emptyPrivateState (): PrivateState {
  return { v: 1, friends: [], incoming: [], outgoing: [], lastFrom: {}, history: {}, conferences: [] }
}

// ---------------------------------------------------------------- history

export const historyEntrySchema = z.object({
  id: envelopeId,
  from: username,
  to: username,
  text: z.string().max(MAX_MESSAGE_CHARS),
  sentAt: time
}).strict()

export type HistoryEntry = z.infer<typeof historyEntrySchema>

export const historyPageSchema = z.object({
  v: z.literal(1),
  entries: z.array(historyEntrySchema).max(10_000)
}).strict()

export type HistoryPage = z.infer<typeof historyPageSchema>

/**
 * Plaintext budget of one history page. A record adds the seal (48 B), the signature and
 * CBOR framing; with 32 KiB a page stays at a quarter of MAX_RECORD_BYTES, and one entry
 * (at most 4,000 characters, 16 KB of UTF-8) always fits an empty page.
 */
export const HISTORY_PAGE_BYTES = 32 * 1024

/** Encoded size of one entry inside a page, to decide when a page is full. */
export function historyEntryBytes (entry: HistoryEntry): number {
  return cborg.encode(entry).length
}

/**
 * The name of a conversation in DHT keys: a keyed hash of the other side's key id under
 * the owner's secret, so that readers of the DHT cannot tell who talks with whom.
 */
export function conversationId (owner: Pick<AccountKeys, 'boxSecret'>, otherKeyId: string): string {
  return createHmac('sha256', owner.boxSecret).update(`conf-chat:conversation:1:${otherKeyId}`).digest('hex').slice(0, 32)
}

// ---------------------------------------------------------------- sealing for the owner

/** Seal a value (CBOR) to its owner: only the owner's box secret opens it. */
export function sealForOwner (value: unknown, owner: Pick<AccountKeys, 'boxPublic'>): Uint8Array {
  return sealTo(cborg.encode(value), owner.boxPublic)
}

/** Open and schema-check what `sealForOwner` made; throws DecryptionError or InvalidRecordError. */
export function openForOwner<T> (sealed: Uint8Array, owner: Pick<AccountKeys, 'boxPublic' | 'boxSecret'>, schema: z.ZodType<T>): T {
  const parsed = schema.safeParse(decodeCbor(openSealed(sealed, owner)))
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    throw new InvalidInputError(`malformed sealed data: ${issue?.path.join('.') ?? ''} ${issue?.message ?? ''}`.trim())
  }
  return parsed.data
}

/**
 * The owner's key for what a peer keeps on its own disk (the history cache): derived from
 * the account's box secret, so only the logged-in owner can read it. Symmetric (NaCl
 * secretbox) because it is used per message: a sealed box costs two X25519 operations.
 */
export function ownerLocalKey (owner: Pick<AccountKeys, 'boxSecret'>): Uint8Array {
  return new Uint8Array(createHmac('sha256', owner.boxSecret).update('conf-chat:local-store:1').digest())
}

/** Encrypt a value (CBOR) under `key` (XSalsa20-Poly1305, random nonce in front). */
export function encryptLocal (value: unknown, key: Uint8Array): Uint8Array {
  const nonce = new Uint8Array(randomBytes(SECRETBOX_NONCE_BYTES))
  const box = secretbox(cborg.encode(value), nonce, key)
  const out = new Uint8Array(nonce.length + box.length)
  out.set(nonce)
  out.set(box, nonce.length)
  return out
}

/** Open what `encryptLocal` made and check it against `schema`; throws DecryptionError or InvalidInputError. */
export function decryptLocal<T> (data: Uint8Array, key: Uint8Array, schema: z.ZodType<T>): T {
  const n = SECRETBOX_NONCE_BYTES
  const plain = secretboxOpen(data.subarray(n), data.subarray(0, n), key, 'Could not open a locally stored entry')
  const parsed = schema.safeParse(decodeCbor(plain))
  if (!parsed.success) throw new InvalidInputError(`malformed local entry: ${parsed.error.issues[0]?.message ?? ''}`)
  return parsed.data
}
