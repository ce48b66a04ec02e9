/**
 * Replicated append-only sets: the multi-writer data of the network (mailboxes,
 * directory shards). A set lives on the DHT servers closest to its key and is served
 * over `/conf-chat/set/2.0.0`. This file holds what every peer must agree on: set keys,
 * items, the wire messages, signed removals and reads, and the shape of a namespace's
 * rules (the namespaces themselves: set-namespaces.ts). Pure: no network, no disk.
 */
import * as cborg from 'cborg'
import { z } from 'zod'
import { sign, verify, sha256, randomId, type AccountKeys } from './crypto.js'
import { decodeCbor } from './record.js'
import { REFUSAL_CODES, type RefusalCode } from './refusals.js'

/** The set protocol: one request and one response per stream, each a length-prefixed CBOR frame. */
export const SET_PROTOCOL = '/conf-chat/set/2.0.0'

/** Largest item a holder stores (an envelope is at most 64 KiB too). */
export const MAX_SET_ITEM_BYTES = 64 * 1024

/** Largest frame either side reads; writers split larger batches. */
export const MAX_SET_FRAME_BYTES = 2 * 1024 * 1024

/** Most items in one ADD, ids in one REMOVE, or ids in one LIST page. */
export const MAX_SET_ITEMS_PER_FRAME = 4096

/** Most ids in one GET: 16 items of the largest size fit in one response frame. */
export const MAX_SET_GET_IDS = 16

export const MAX_SET_KEY_CHARS = 256

/** How far in the future an item's or a removal's time may be (clocks differ between peers). */
export const MAX_SET_CLOCK_SKEW_MS = 10 * 60 * 1000

const REMOVE_DOMAIN = 'conf-chat:set-remove:1'
const READ_DOMAIN = 'conf-chat:set-read:1'

/** Bytes of a holder's read challenge. */
export const READ_NONCE_BYTES = 16

/** Item ids: safe in datastore keys (no '/'), and sorted bytewise as they sort as strings. */
export const SET_ITEM_ID_PATTERN = /^[A-Za-z0-9_.:-]{1,100}$/
const SET_KEY_PATTERN = /^\/[a-z][a-z0-9-]{0,31}(\/[A-Za-z0-9_.-]{1,64}){1,4}$/

export class InvalidSetKeyError extends Error {
  override name = 'InvalidSetKeyError'
  constructor (message = 'Invalid set key') { super(message) }
}

export class UnknownSetNamespaceError extends Error {
  override name = 'UnknownSetNamespaceError'
  constructor (message = 'Unknown set namespace') { super(message) }
}

export class InvalidSetItemError extends Error {
  override name = 'InvalidSetItemError'
  constructor (message = 'Invalid set item') { super(message) }
}

export class InvalidSetMessageError extends Error {
  override name = 'InvalidSetMessageError'
  constructor (message = 'Invalid set protocol message') { super(message) }
}

export class ReadNotAuthorizedError extends Error {
  override name = 'ReadNotAuthorizedError'
  constructor (message = 'Not authorized to read this set') { super(message) }
}

export class RemoveNotAuthorizedError extends Error {
  override name = 'RemoveNotAuthorizedError'
  constructor (message = 'Not authorized to remove from this set') { super(message) }
}

export interface SetItem {
  /** Unique within the set; holders keep the first item they get under an id. */
  id: string
  data: Uint8Array
  /** When the writer made the item (ms since epoch); the item expires a TTL later. */
  addedAt: number
}

/** Proof that the owner of `pub` removes `ids` from a set (see `createRemoveAuth`). */
export interface SetRemoveAuth {
  pub: Uint8Array
  time: number
  sig: Uint8Array
}

/**
 * Proof that the owner of `pub` reads a set on one holder: a signature over the set key,
 * the holder's peer id and a nonce the holder just gave (see `createReadAuth`).
 */
export interface SetReadAuth {
  pub: Uint8Array
  nonce: Uint8Array
  sig: Uint8Array
}

/** A signed removal as holders keep and hand on (the tombstone's proof). */
export interface SetRemoval {
  ids: string[]
  auth: SetRemoveAuth
}

/**
 * What a holder checks for one namespace. Every holder and every reader applies the
 * same rules, so register the same ones on every peer.
 */
export interface SetNamespaceRules {
  /** Checks the parts of a key after the namespace; throws InvalidSetKeyError. */
  checkKey: (parts: string[]) => void
  /** Checks one item (size and schema are already checked); throws InvalidSetItemError. */
  validateItem: (setKey: string, item: SetItem) => void
  /** Whether the (already verified) signer of `auth` may remove `ids`; throws RemoveNotAuthorizedError. */
  authorizeRemove: (setKey: string, ids: string[], auth: SetRemoveAuth) => void
  /** Item lifetime for this namespace, overriding the store's default (ms). */
  itemTtlMs?: number
  /**
   * What a holder checks with the network before it stores a new item (the directory: that
   * the name's registered owner signed the entry). Resolves, or rejects with the item's
   * refusal: an InvalidSetItemError is final; a RateLimitError (too many checks for the
   * peer `from`, which sent the item; undefined: this peer) and anything else (a read that
   * could not tell) pass, and the writer tries again.
   */
  authorizeItem?: (setKey: string, item: SetItem, options: { signal?: AbortSignal, from?: string }) => Promise<void>
  /**
   * Who may list a set's items or ids, or get its items, from a holder: whether the
   * (already verified) signer of a read may; throws ReadNotAuthorizedError. Without it,
   * anyone may read. Peers the holder counts among the set's holders read without a
   * signature (they hand the set on to each other).
   */
  authorizeRead?: (setKey: string, pub: Uint8Array) => void
  /**
   * Who wrote an item (one the holder checked already), for the holder's limits per
   * writer in one set; without it (or when it returns undefined), an item counts only
   * towards the set's own limits. Cheap: a holder counts every item of a set with it.
   */
  writerOf?: (item: SetItem) => string | undefined
  /** Most items and bytes (of item data) one writer may have in one set. @default the holder's */
  writerLimits?: { items: number, bytes: number }
  /**
   * For sets whose owner names the writers it knows in the set itself (a mailbox's writer
   * list): items whose id starts with `listPrefix` carry such a list, and the newest
   * unexpired one applies. A writer (writerOf) it does not name is a stranger: a holder
   * stores of a stranger only items `strangers.may` lets through, at most `strangers.items`
   * (and `strangers.bytes`) at once and `strangers.perDay` a day per stranger, and
   * `strangers.perSet` from all strangers together. A set with no list takes every writer,
   * except items `onlyListed` says need a list.
   */
  writerList?: WriterListRules
}

export interface WriterListRules {
  listPrefix: string
  /** The list an item carries (validated already): when it was signed, whether it names a writer, and how many it names. */
  decode: (setKey: string, item: SetItem) => { at: number, names: (writer: string) => boolean, size?: number }
  strangers: { may: (item: SetItem) => boolean, items: number, bytes: number, perDay: number, perSet: number }
  /** Items stored only where the set's list names their writer (none at all in a set without a list). */
  onlyListed?: (item: SetItem) => boolean
}

// ---------------------------------------------------------------- keys and ids

/** Split a set key into its namespace and parts; checks only the generic shape. */
export function parseSetKey (setKey: string): { namespace: string, parts: string[] } {
  if (typeof setKey !== 'string' || setKey.length > MAX_SET_KEY_CHARS || !SET_KEY_PATTERN.test(setKey)) {
    throw new InvalidSetKeyError(`malformed set key ${String(setKey).slice(0, 80)}`)
  }
  const [, namespace, ...parts] = setKey.split('/')
  return { namespace: namespace ?? '', parts }
}

/** Sortable by creation time (base-36 ms, same shape as envelope ids), unique by 8 random bytes. */
export function newSetItemId (now = Date.now()): string {
  return `${now.toString(36).padStart(9, '0')}-${randomId(8)}`
}

export function createSetItem (data: Uint8Array, options: { id?: string, now?: number } = {}): SetItem {
  const now = options.now ?? Date.now()
  return { id: options.id ?? newSetItemId(now), data, addedAt: now }
}

/** The datastore-safe name of a set: hex SHA-256 of its key. */
export function setKeyHash (setKey: string): string {
  return Buffer.from(sha256(setKey)).toString('hex')
}

// ---------------------------------------------------------------- removals

function removeSigningBytes (setKey: string, ids: string[], time: number): Uint8Array {
  return cborg.encode([REMOVE_DOMAIN, setKey, ids, time])
}

/** Sign the removal of `ids` from `setKey` (e.g. a recipient acknowledging delivered mail). */
export function createRemoveAuth (setKey: string, ids: string[], keys: Pick<AccountKeys, 'signPublic' | 'signSecret'>, time = Date.now()): SetRemoveAuth {
  return { pub: keys.signPublic, time, sig: sign(removeSigningBytes(setKey, ids, time), keys.signSecret) }
}

export function verifyRemoveAuth (setKey: string, ids: string[], auth: SetRemoveAuth): boolean {
  return verify(auth.sig, removeSigningBytes(setKey, ids, auth.time), auth.pub)
}

function readSigningBytes (setKey: string, holder: string, nonce: Uint8Array): Uint8Array {
  return cborg.encode([READ_DOMAIN, setKey, holder, nonce])
}

/** Sign a read of `setKey` on the holder whose peer id is `holder`, over the `nonce` it gave. */
export function createReadAuth (setKey: string, holder: string, nonce: Uint8Array, keys: Pick<AccountKeys, 'signPublic' | 'signSecret'>): SetReadAuth {
  return { pub: keys.signPublic, nonce, sig: sign(readSigningBytes(setKey, holder, nonce), keys.signSecret) }
}

export function verifyReadAuth (setKey: string, holder: string, auth: SetReadAuth): boolean {
  return verify(auth.sig, readSigningBytes(setKey, holder, auth.nonce), auth.pub)
}

/** A removal is named by its signature, so holders can compare which removals they hold. */
export function removalId (auth: SetRemoveAuth): string {
  return Buffer.from(sha256(auth.sig)).toString('hex').slice(0, 32)
}

// ---------------------------------------------------------------- wire messages

const bytes = z.custom<Uint8Array>(v => v instanceof Uint8Array, 'expected bytes')
const time = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER)
const itemId = z.string().regex(SET_ITEM_ID_PATTERN)
const setKeyString = z.string().max(MAX_SET_KEY_CHARS).regex(SET_KEY_PATTERN)

export const setItemSchema = z.object({
  id: itemId,
  data: bytes.refine(b => b.length <= MAX_SET_ITEM_BYTES, `item data must be at most ${MAX_SET_ITEM_BYTES} bytes`),
  addedAt: time
}).strict()

export const setRemoveAuthSchema = z.object({
  pub: bytes.refine(b => b.length === 32, 'public key must be 32 bytes'),
  time,
  sig: bytes.refine(b => b.length === 64, 'signature must be 64 bytes')
}).strict()

export const setReadAuthSchema = z.object({
  pub: bytes.refine(b => b.length === 32, 'public key must be 32 bytes'),
  nonce: bytes.refine(b => b.length === READ_NONCE_BYTES, `nonce must be ${READ_NONCE_BYTES} bytes`),
  sig: bytes.refine(b => b.length === 64, 'signature must be 64 bytes')
}).strict()

export const setRemovalSchema = z.object({
  ids: z.array(itemId).min(1).max(MAX_SET_ITEMS_PER_FRAME),
  auth: setRemoveAuthSchema
}).strict()

export const setRequestSchema = z.discriminatedUnion('type', [
  /** Store these items (each kept only if the holder has no item under its id). */
  z.object({ type: z.literal('add'), setKey: setKeyString, items: z.array(setItemSchema).min(1).max(MAX_SET_ITEMS_PER_FRAME) }).strict(),
  /** Items (or only their ids) in id order, after the cursor `after`; a page per response. */
  z.object({ type: z.literal('list'), setKey: setKeyString, after: itemId.optional(), idsOnly: z.boolean().optional(), auth: setReadAuthSchema.optional() }).strict(),
  /** A nonce to sign for reading a set whose namespace lets only some signers read (see SetReadAuth). */
  z.object({ type: z.literal('challenge'), setKey: setKeyString }).strict(),
  /** The items under `ids` that the holder has (unexpired), in an `items` response: a reader that listed ids first fetches only the new ones. */
  z.object({ type: z.literal('get'), setKey: setKeyString, ids: z.array(itemId).min(1).max(MAX_SET_GET_IDS), auth: setReadAuthSchema.optional() }).strict(),
  /** Delete `ids`, proven by the signed `auth`; the holder keeps a tombstone. */
  z.object({ type: z.literal('remove'), setKey: setKeyString, ids: z.array(itemId).min(1).max(MAX_SET_ITEMS_PER_FRAME), auth: setRemoveAuthSchema }).strict(),
  /** The signed removals the holder keeps for the set, a page after the cursor (a removal id). */
  z.object({ type: z.literal('removals'), setKey: setKeyString, after: z.string().regex(/^[0-9a-f]{32}$/).optional() }).strict()
])

/** `not-responsible`: the holder is not among the peers closest to the set's key, so it stores nothing of it. */
export const SET_ERROR_CODES = ['malformed', 'invalid-key', 'unknown-namespace', 'unauthorized', 'not-responsible', 'internal'] as const

export const setResponseSchema = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('added'),
    /** Ids the holder now has (newly stored, or already held). */
    accepted: z.array(itemId).max(MAX_SET_ITEMS_PER_FRAME),
    /** Items the holder refused, each with a refusal code (refusals.ts) and words for the log. */
    rejected: z.array(z.object({ id: z.string().max(100), code: z.enum(REFUSAL_CODES as [RefusalCode, ...RefusalCode[]]), reason: z.string().max(200) }).strict()).max(MAX_SET_ITEMS_PER_FRAME)
  }).strict(),
  z.object({ type: z.literal('items'), items: z.array(setItemSchema).max(MAX_SET_ITEMS_PER_FRAME), next: itemId.optional() }).strict(),
  z.object({ type: z.literal('ids'), ids: z.array(itemId).max(MAX_SET_ITEMS_PER_FRAME), next: itemId.optional() }).strict(),
  z.object({ type: z.literal('removed'), removed: z.number().int().nonnegative() }).strict(),
  z.object({ type: z.literal('challenge'), nonce: bytes.refine(b => b.length === READ_NONCE_BYTES) }).strict(),
  z.object({ type: z.literal('removals'), removals: z.array(setRemovalSchema).max(MAX_SET_ITEMS_PER_FRAME), next: z.string().regex(/^[0-9a-f]{32}$/).optional() }).strict(),
  z.object({ type: z.literal('error'), code: z.enum(SET_ERROR_CODES), message: z.string().max(500) }).strict()
])

export type SetRequest = z.infer<typeof setRequestSchema>
export type SetResponse = z.infer<typeof setResponseSchema>
export type SetErrorCode = typeof SET_ERROR_CODES[number]

/** Encode a request or response; optional fields that are undefined are left out. */
export function encodeSetMessage (message: SetRequest | SetResponse): Uint8Array {
  return cborg.encode(Object.fromEntries(Object.entries(message).filter(([, v]) => v !== undefined)))
}

function decodeWith<T> (schema: z.ZodType<T>, frame: Uint8Array, what: string): T {
  if (frame.length > MAX_SET_FRAME_BYTES) throw new InvalidSetMessageError(`${what} of ${frame.length} bytes exceeds ${MAX_SET_FRAME_BYTES}`)
  let raw: unknown
  try {
    raw = decodeCbor(frame)
  } catch (err: any) {
    throw new InvalidSetMessageError(`malformed ${what}: ${String(err.message)}`)
  }
  const parsed = schema.safeParse(raw)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    throw new InvalidSetMessageError(`malformed ${what}: ${issue?.path.join('.') ?? ''} ${issue?.message ?? ''}`.trim())
  }
  return parsed.data
}

export function decodeSetRequest (frame: Uint8Array): SetRequest {
  return decodeWith(setRequestSchema, frame, 'set request')
}

export function decodeSetResponse (frame: Uint8Array): SetResponse {
  return decodeWith(setResponseSchema, frame, 'set response')
}

/** Approximate encoded size of an item, for splitting batches under the frame limit. */
export function setItemFrameBytes (item: SetItem): number {
  return item.data.length + item.id.length + 32
}
