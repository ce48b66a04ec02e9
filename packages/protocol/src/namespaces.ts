/**
 * The DHT namespaces, their key shapes and payload schemas, and the one rule set that
 * both the validator and the selector follow, so that a selector never picks what a
 * storing peer's validator would refuse.
 *
 * Two kinds of ownership:
 * - `name` (`/cc-user/<username>`): first come, first served. A store keeps the first
 *   owner's key; only that key with a higher sequence number may update it, unless the
 *   owner released the name (a signed tombstone), which lets the name be taken again.
 * - `key` (`/<ns>/<keyId>/...`): the key names its owner (hash of the public key, as
 *   IPNS does), so any store checks ownership from the key alone.
 */
import { createHash } from 'node:crypto'
import { LRUCache } from 'lru-cache'
import { z } from 'zod'
import { keyIdOf, KEY_ID_PATTERN, compareBytes, bytesEqual } from './crypto.js'
import { InvalidRecordError, RecordConflictError } from './errors.js'
import { USERNAME_PATTERN, MAX_FULL_NAME_CHARS, VERIFIED_CACHE_ENTRIES, VERIFIED_CACHE_BYTES } from './limits.js'
import { decodeCbor, decodeSignedRecord, type SignedRecord } from './record.js'
import { PWHASH_BOUNDS, PWHASH_SALT_BYTES } from './password.js'
import { checkNameWork, MAX_NAME_WORK } from './name-work.js'

const bytes = z.custom<Uint8Array>(v => v instanceof Uint8Array, 'expected bytes')
const bytesOf = (n: number): z.ZodType<Uint8Array> => bytes.refine(b => b.length === n, `must be ${n} bytes`)
const time = z.number().int().nonnegative()

/** Secret keys sealed under a scrypt-derived key: records made before Argon2id (upgraded at login). */
export const scryptSecretSchema = z.object({
  kdf: z.literal('scrypt'),
  N: z.number().int().min(2).max(1 << 22),
  r: z.number().int().min(1).max(32),
  p: z.number().int().min(1).max(16),
  salt: bytes.refine(b => b.length >= 8 && b.length <= 64),
  nonce: bytesOf(24),
  ciphertext: bytes.refine(b => b.length <= 1024)
}).strict()

/** Secret keys sealed under the second half of Argon2id's output (password.ts), with its parameters. */
export const argon2idSecretSchema = z.object({
  kdf: z.literal('argon2id'),
  ops: z.number().int().min(PWHASH_BOUNDS.opsMin).max(PWHASH_BOUNDS.opsMax),
  mem: z.number().int().min(PWHASH_BOUNDS.memMin).max(PWHASH_BOUNDS.memMax),
  salt: bytesOf(PWHASH_SALT_BYTES),
  nonce: bytesOf(24),
  ciphertext: bytes.refine(b => b.length <= 1024)
}).strict()

export const encryptedSecretSchema = z.discriminatedUnion('kdf', [argon2idSecretSchema, scryptSecretSchema])

export const accountPayloadSchema = z.object({
  type: z.literal('account'),
  username: z.string().regex(USERNAME_PATTERN),
  fullName: z.string().min(1).max(MAX_FULL_NAME_CHARS),
  boxPublic: bytesOf(32),
  /** bcrypt hash (bcryptjs) of the verifier Argon2id derives from the password (of the password itself for `scrypt` records). */
  passwordHash: z.string().regex(/^\$2[aby]\$\d{2}\$[./A-Za-z0-9]{53}$/),
  /** The account's secret keys, encrypted under a key derived from the password, and how it was derived. */
  secretKeys: encryptedSecretSchema,
  /**
   * The proof of work for this name and key (name-work.ts): needed for a new claim of the
   * name; records made before it have none until their next login adds it.
   */
  work: z.number().int().nonnegative().max(MAX_NAME_WORK).optional(),
  createdAt: time,
  updatedAt: time
}).strict()

/** A signed tombstone: the owner gives the name up (used when a registration race is lost). */
export const releasedPayloadSchema = z.object({
  type: z.literal('released'),
  username: z.string().regex(USERNAME_PATTERN),
  updatedAt: time
}).strict()

export const userPayloadSchema = z.discriminatedUnion('type', [accountPayloadSchema, releasedPayloadSchema])

export const presencePayloadSchema = z.object({
  username: z.string().regex(USERNAME_PATTERN),
  status: z.enum(['online', 'offline']),
  peerId: z.string().min(1).max(128),
  addrs: z.array(z.string().max(256)).max(16),
  /**
   * A reader treats the user as offline after this time (ms since epoch); it is also the
   * end of the record's life on every peer (an offline record's is as far away as an
   * online one's, so it outlives the online records it replaces).
   */
  expiresAt: time,
  /** When this login session began: of two peers claiming one account, the later login wins. */
  since: time.optional(),
  updatedAt: time
}).strict()

/** Owner-private data (friends, requests, conferences, history pages): sealed to the owner. */
export const sealedPayloadSchema = z.object({
  sealed: bytes,
  updatedAt: time
}).strict()

/** Most pages one private state has (its head included): 16 x STATE_PART_BYTES, about 1.8 MiB sealed. */
export const MAX_STATE_PAGES = 16
/** Sealed bytes in one page of the private state (a record holds at most 128 KiB). */
export const STATE_PART_BYTES = 112 * 1024
/** The two sets of page records a state's writes take turns at. */
export const STATE_PAGE_SLOTS = ['a', 'b'] as const
export type StatePageSlot = typeof STATE_PAGE_SLOTS[number]

/**
 * The private state's head record (`/cc-state/<keyId>`): the sealed state, or, for a
 * state too large for one record, its first part, how many pages there are and in which
 * of two slots; pages 1..count-1 (`/cc-state-page/<keyId>/<slot>/<i>`) hold the rest,
 * each with the digest (SHA-256) of the whole sealed state, so a reader takes only pages
 * of the head's version. A write fills the slot the current head does not use: a write
 * that fails before its head is stored leaves the current head's pages whole.
 */
export const statePayloadSchema = z.object({
  sealed: bytes.refine(b => b.length <= STATE_PART_BYTES),
  updatedAt: time,
  pages: z.object({
    slot: z.enum(STATE_PAGE_SLOTS),
    count: z.number().int().min(2).max(MAX_STATE_PAGES),
    digest: bytes.refine(b => b.length === 32)
  }).strict().optional()
}).strict()

export type StatePayload = z.infer<typeof statePayloadSchema>

export const statePagePayloadSchema = z.object({
  part: bytes.refine(b => b.length >= 1 && b.length <= STATE_PART_BYTES),
  digest: bytes.refine(b => b.length === 32)
}).strict()

export type StatePagePayload = z.infer<typeof statePagePayloadSchema>

export const conferencePayloadSchema = z.object({
  name: z.string().min(1).max(100),
  owner: z.string().regex(USERNAME_PATTERN),
  members: z.array(z.object({
    username: z.string().regex(USERNAME_PATTERN),
    keyId: z.string().regex(KEY_ID_PATTERN),
    joinedAt: time,
    /** The member's keys as the owner pinned them (friends' keys): members seal to each other without a lookup. */
    signPublic: bytesOf(32).optional(),
    boxPublic: bytesOf(32).optional()
  }).strict()).max(256),
  left: z.array(z.object({
    username: z.string().regex(USERNAME_PATTERN),
    keyId: z.string().regex(KEY_ID_PATTERN),
    leftAt: time,
    /** The owner removed them (else they left on their own). */
    removed: z.boolean().optional()
  }).strict()).max(1024),
  createdAt: time,
  updatedAt: time
}).strict()

export type AccountPayload = z.infer<typeof accountPayloadSchema>
export type ReleasedPayload = z.infer<typeof releasedPayloadSchema>
export type UserPayload = z.infer<typeof userPayloadSchema>
export type PresencePayload = z.infer<typeof presencePayloadSchema>
export type SealedPayload = z.infer<typeof sealedPayloadSchema>
export type ConferencePayload = z.infer<typeof conferencePayloadSchema>

const SEGMENT = /^[A-Za-z0-9_.-]{1,64}$/

interface NamespaceRule {
  ownership: 'name' | 'key'
  /** Number of path segments after the namespace. */
  segments: number
  payload: z.ZodType
  /** Extra agreement between key, payload and signer. */
  check?: (parts: string[], payload: any, record: SignedRecord) => void
  /**
   * When the lifetime its owner signed into the payload ends (ms since epoch): after it no
   * peer stores, serves or republishes the record. Without it, a record lives while it is
   * refreshed (by its owner, or by holders republishing it).
   */
  lifetimeEnd?: (payload: any) => number
}

export const NAMESPACES = {
  'cc-user': {
    ownership: 'name',
    segments: 1,
    payload: userPayloadSchema,
    check: (parts, payload: UserPayload, record) => {
      if (!USERNAME_PATTERN.test(parts[0] ?? '')) throw new InvalidRecordError('invalid username in key')
      if (payload.username !== parts[0]) throw new InvalidRecordError('username does not match the key')
      if (payload.type === 'account' && payload.work != null && !checkNameWork(payload.username, record.pub, payload.work)) {
        throw new InvalidRecordError('the proof of work does not match the name and key')
      }
    }
  },
  'cc-presence': { ownership: 'key', segments: 1, payload: presencePayloadSchema, lifetimeEnd: (p: PresencePayload) => p.expiresAt },
  'cc-state': { ownership: 'key', segments: 1, payload: statePayloadSchema },
  'cc-state-page': {
    ownership: 'key',
    segments: 3,
    payload: statePagePayloadSchema,
    check: parts => {
      if (!(STATE_PAGE_SLOTS as readonly string[]).includes(parts[1] ?? '')) throw new InvalidRecordError('a state page slot is a or b')
      const page = Number(parts[2])
      if (!/^[1-9][0-9]?$/.test(parts[2] ?? '') || page >= MAX_STATE_PAGES) throw new InvalidRecordError(`a state page is numbered 1 to ${MAX_STATE_PAGES - 1}`)
    }
  },
  'cc-history': { ownership: 'key', segments: 3, payload: sealedPayloadSchema },
  'cc-conf': {
    ownership: 'key',
    segments: 2,
    payload: conferencePayloadSchema,
    check: (_parts, payload: ConferencePayload) => {
      const keyIds = new Set(payload.members.map(m => m.keyId))
      if (keyIds.size !== payload.members.length || new Set(payload.members.map(m => m.username)).size !== payload.members.length) {
        throw new InvalidRecordError('a conference lists a member twice')
      }
      if (payload.members.some(m => m.signPublic != null && keyIdOf(m.signPublic) !== m.keyId)) {
        throw new InvalidRecordError('a conference member\'s key does not match its key id')
      }
    }
  }
} satisfies Record<string, NamespaceRule>

export type Namespace = keyof typeof NAMESPACES

export const userKey = (username: string): string => `/cc-user/${username}`
export const presenceKey = (keyId: string): string => `/cc-presence/${keyId}`
export const stateKey = (keyId: string): string => `/cc-state/${keyId}`
export const statePageKey = (keyId: string, slot: StatePageSlot, page: number): string => `/cc-state-page/${keyId}/${slot}/${page}`
export const historyKey = (keyId: string, conversation: string, page: number): string => `/cc-history/${keyId}/${conversation}/${page}`
export const conferenceKey = (ownerKeyId: string, localId: string): string => `/cc-conf/${ownerKeyId}/${localId}`

/** A record whose envelope, signature, key shape, ownership and payload were all checked. */
export interface VerifiedRecord<P = unknown> {
  record: SignedRecord
  payload: P
  namespace: Namespace
  /** The raw value as stored in the DHT. */
  value: Uint8Array
}

export function parseKey (key: string): { namespace: Namespace, parts: string[] } {
  const [empty, ns, ...parts] = key.split('/')
  if (empty !== '' || ns == null || !(ns in NAMESPACES)) throw new InvalidRecordError(`unknown namespace in key ${key.slice(0, 80)}`)
  const rule: NamespaceRule = NAMESPACES[ns as Namespace]
  if (parts.length !== rule.segments || !parts.every(p => SEGMENT.test(p))) throw new InvalidRecordError(`malformed key ${key.slice(0, 80)}`)
  return { namespace: ns as Namespace, parts }
}

/**
 * The end of the lifetime the owner signed into a record (see NamespaceRule.lifetimeEnd),
 * or undefined if its namespace has none or the value does not decode. For a record that
 * was checked when it was stored: the signature is not checked again.
 */
export function signedLifetimeEnd (key: string, value: Uint8Array): number | undefined {
  let rule: NamespaceRule
  try {
    rule = NAMESPACES[parseKey(key).namespace]
  } catch {
    return undefined
  }
  if (rule.lifetimeEnd == null) return undefined
  try {
    const body = (decodeCbor(value) as { body?: unknown }).body
    if (!(body instanceof Uint8Array)) return undefined
    const payload = rule.payload.safeParse(decodeCbor(body))
    return payload.success ? rule.lifetimeEnd(payload.data) : undefined
  } catch {
    return undefined
  }
}

/**
 * Stateless validation, run on every value we are given or read: size, shape,
 * signature, the key/owner binding and the payload schema. Throws InvalidRecordError.
 */
export function verifyRecordValue<P = unknown> (key: string, value: Uint8Array): VerifiedRecord<P> {
  const id = verifiedId(key, value)
  const known = verified.get(id)
  if (known != null) return known as VerifiedRecord<P>
  const checked = checkRecordValue<P>(key, value)
  verified.set(id, Object.freeze(checked))
  return checked
}

/**
 * Records verified lately, by key and SHA-256 of the value. One record is checked several
 * times on its way through a peer (kad-dht's validator, the datastore's write guard, the
 * stored copy it may replace, a read); the checks are pure functions of key and value, so
 * the second one is a lookup. Bounded by count and by the bytes of the values it holds.
 */
const verified = new LRUCache<string, VerifiedRecord>({
  max: VERIFIED_CACHE_ENTRIES,
  maxSize: VERIFIED_CACHE_BYTES,
  sizeCalculation: r => r.value.byteLength + 256
})

function verifiedId (key: string, value: Uint8Array): string {
  return `${key}\n${createHash('sha256').update(value).digest('base64')}`
}

/** The checks of `verifyRecordValue`, uncached. */
function checkRecordValue<P> (key: string, value: Uint8Array): VerifiedRecord<P> {
  const { namespace, parts } = parseKey(key)
  const rule: NamespaceRule = NAMESPACES[namespace]
  const record = decodeSignedRecord(value, key)
  if (rule.ownership === 'key' && parts[0] !== keyIdOf(record.pub)) {
    throw new InvalidRecordError('record is not signed by the key its key names')
  }
  const parsed = rule.payload.safeParse(decodeCbor(record.body))
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    throw new InvalidRecordError(`invalid ${namespace} payload: ${issue?.path.join('.') ?? ''} ${issue?.message ?? ''}`.trim())
  }
  rule.check?.(parts, parsed.data, record)
  return { record, payload: parsed.data as P, namespace, value }
}

function isReleased (r: VerifiedRecord): boolean {
  return r.namespace === 'cc-user' && (r.payload as UserPayload).type === 'released'
}

/** An account record without a proof of work: one made before it, or a squatter's. */
function isUnworkedClaim (r: VerifiedRecord): boolean {
  return r.namespace === 'cc-user' && (r.payload as UserPayload).type === 'account' && (r.payload as AccountPayload).work == null
}

/**
 * Order of two records of the same owner: the higher sequence number wins, and on the
 * same sequence number the larger bytes (an arbitrary but total order every peer shares).
 */
function compareSameOwner (a: VerifiedRecord, b: VerifiedRecord): number {
  if (a.record.seq !== b.record.seq) return a.record.seq - b.record.seq
  return compareBytes(a.value, b.value)
}

/**
 * The stateful rule a store applies before it replaces `existing` with `incoming`
 * (first come, first served; same owner with a higher sequence number). Throws
 * RecordConflictError with the reason.
 */
export function checkUpdate (existing: VerifiedRecord | undefined, incoming: VerifiedRecord): void {
  if (existing != null && bytesEqual(existing.value, incoming.value)) return
  if (isUnworkedClaim(incoming) && (existing == null || !bytesEqual(existing.record.pub, incoming.record.pub))) {
    throw new RecordConflictError(`a new claim of ${incoming.record.key} needs its proof of work`)
  }
  if (existing == null) return
  if (!bytesEqual(existing.record.pub, incoming.record.pub)) {
    if (isReleased(existing)) return
    throw new RecordConflictError(`${incoming.record.key} is owned by another key`)
  }
  if (compareSameOwner(incoming, existing) <= 0) {
    throw new RecordConflictError(`stale update of ${incoming.record.key}: seq ${incoming.record.seq} is not above ${existing.record.seq}`)
  }
}

/**
 * Pick the best of several values for one key: invalid ones are never picked. Each
 * owner key counts with its newest record (the one its stores would keep, see
 * `checkUpdate`). For names: owners whose newest record is a live account beat owners
 * who released the name, then the owner most replicas hold wins (ties broken by the
 * smaller key bytes). Owned keys have one possible owner. Returns -1 when no value is
 * valid. The pick does not depend on the order of `values`.
 */
export function selectRecord (key: string, values: Uint8Array[]): number {
  let candidates = ownersOf(key, values)
  if (candidates.length === 0) return -1
  const live = candidates.filter(o => !isReleased(o.newest.r))
  if (live.length > 0) candidates = live
  candidates.sort((a, b) => b.count - a.count || compareBytes(a.pub, b.pub))
  return candidates[0]?.newest.index ?? -1
}

/**
 * The keys that claim a name (`/cc-user/...`) among `values`: each owner counted with its
 * newest valid record, and only if that is a live account (an owner who released the
 * name claims nothing). More than one means the replicas disagree about who owns the
 * name: a reader treats it as contested and never picks one by counting replicas (a few
 * peers near the key, run by one attacker, could outnumber the honest ones).
 */
export function nameClaimants (key: string, values: Uint8Array[]): Uint8Array[] {
  const live = ownersOf(key, values).filter(o => !isReleased(o.newest.r))
  // a claim without work (made before it, or forged for nothing) counts only while no claim has it
  const worked = live.filter(o => !isUnworkedClaim(o.newest.r))
  return (worked.length > 0 ? worked : live).map(o => o.pub).sort(compareBytes)
}

interface Owner { pub: Uint8Array, count: number, newest: { index: number, r: VerifiedRecord } }

/** The valid values of `key` by owner key: how many each owner has, and its newest. */
function ownersOf (key: string, values: Uint8Array[]): Owner[] {
  const owners = new Map<string, Owner>()
  values.forEach((value, index) => {
    let r: VerifiedRecord
    try { r = verifyRecordValue(key, value) } catch { return }
    const id = Buffer.from(r.record.pub).toString('hex')
    const owner = owners.get(id)
    if (owner == null) {
      owners.set(id, { pub: r.record.pub, count: 1, newest: { index, r } })
      return
    }
    owner.count++
    // newest first, live/released after: a stale live record must not beat its owner's release
    if (compareSameOwner(r, owner.newest.r) > 0) owner.newest = { index, r }
  })
  return [...owners.values()]
}
