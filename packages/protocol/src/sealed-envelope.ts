/**
 * Sealed sender, for mailboxes. An envelope (envelope.ts) shows its sender, kind and time
 * to whoever holds it: the holders of a mailbox would learn who writes to whom, and what.
 * Between people who know each other, the mailbox item is instead a sealed envelope: the
 * whole envelope sealed to the recipient, under the envelope's id and time, signed by a
 * key that the sender and the recipient both derive from their box keys and nobody else
 * can (the pair key: crypto's sharedSigningKeys, for this sender and this mailbox).
 *
 * A holder checks the pair key's signature, and the recipient's writer list names the
 * pair key (by its tag, writer-list.ts), so holders take it as from someone the owner
 * knows and limit it per pair key as they limit a writer. What they see: the mailbox,
 * the item's id (its time) and size, and a pseudonym that stays the same for one sender
 * into one mailbox and differs between mailboxes. Neither sender nor kind.
 *
 * The pair key only lets the item into the mailbox; the envelope inside is signed by its
 * sender's account key as always, and the recipient checks that signature and its sender
 * like any other envelope's. A stranger (a friend request) seals under its pair key too,
 * which the owner's list cannot name (it does not know the stranger): its item carries a
 * stranger's work for that key and mailbox (name-work.ts, a name's cost), and holders take
 * it within the strangers' limits per key (in a mailbox without a list, as any writer);
 * a new key costs what a new account does. They cannot see its kind: the recipient's
 * handlers take nothing but a friend request from someone who is not a friend, as they
 * would from an open envelope. A friend's item goes in this form too where holders do not
 * take it under the pair key (the mailbox has no list, after 30 days away; or its list
 * does not name the pair yet), so it is never left open.
 */
import * as cborg from 'cborg'
import { z } from 'zod'
import { LRUCache } from 'lru-cache'
import { boundedCache } from './bounded-cache.js'
import { sign, verify, keyIdOf, sealTo, openSealed, sharedSigningKeys, sharedSeed, signingKeysOf, sha256, KEY_ID_PATTERN, type AccountKeys } from './crypto.js'
import { peekCbor } from './record.js'
import { decodeEnvelope, encodeEnvelope, ENVELOPE_ID_PATTERN, InvalidEnvelopeError, type Envelope } from './envelope.js'
import { doStrangerWork, checkStrangerWork, NAME_WORK_BITS, type NameWorkOptions } from './name-work.js'
import { MAX_SET_ITEM_BYTES, type SetItem } from './sets.js'

const SEALED_DOMAIN = 'conf-chat:sealed-envelope:1'
const PAIR_DOMAIN = 'conf-chat:mailbox-pair-key:1'
const CONFERENCE_WRITER_DOMAIN = 'conf-chat:conference-writer-key:1'

/** The version field of a sealed envelope (an envelope's is 1). */
export const SEALED_ENVELOPE_VERSION = 2

const bytes = z.custom<Uint8Array>(v => v instanceof Uint8Array, 'expected bytes')

const sealedEnvelopeSchema = z.object({
  v: z.literal(SEALED_ENVELOPE_VERSION),
  /** The envelope's id, and so its sending time. */
  id: z.string().regex(ENVELOPE_ID_PATTERN),
  /** The key id of the mailbox's owner. */
  to: z.string().regex(KEY_ID_PATTERN),
  sentAt: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  /** The pair key's public half: the signer. */
  writer: bytes.refine(b => b.length === 32),
  /** The envelope, sealed to the recipient's box key. */
  sealed: bytes,
  /**
   * A stranger's item (a friend request from a sender the owner does not list yet): the
   * stranger's work for the writer key and this mailbox (name-work.ts), which holders check.
   */
  work: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER).optional(),
  sig: bytes.refine(b => b.length === 64)
}).strict()

export type SealedEnvelope = z.infer<typeof sealedEnvelopeSchema>

type BoxKeys = Pick<AccountKeys, 'boxPublic' | 'boxSecret'>

const pairContext = (senderKeyId: string, mailboxKeyId: string): Uint8Array => cborg.encode([PAIR_DOMAIN, senderKeyId, mailboxKeyId])

/**
 * The pair key of the sender `senderKeyId` into the mailbox of `mailboxKeyId`, derived
 * with `own` box keys (either side's) and the other side's box public key.
 */
export function mailboxPairKeys (own: BoxKeys, theirBoxPublic: Uint8Array, senderKeyId: string, mailboxKeyId: string): { signPublic: Uint8Array, signSecret: Uint8Array } {
  return sharedSigningKeys(own, theirBoxPublic, pairContext(senderKeyId, mailboxKeyId))
}

const conferenceWriterContext = (ownerKeyId: string, mailboxKeyId: string): Uint8Array => cborg.encode([CONFERENCE_WRITER_DOMAIN, ownerKeyId, mailboxKeyId])

/**
 * The seed of the writer key with which the members of the conferences of `ownerKeyId`
 * write into the mailbox of `mailboxKeyId`: derived by the owner (its own box keys, the
 * member's box public key), who gives it to the members; the mailbox's owner derives the
 * same key (conferenceWriterKeyId) to name it.
 */
export function conferenceWriterSeed (own: BoxKeys, theirBoxPublic: Uint8Array, ownerKeyId: string, mailboxKeyId: string): Uint8Array {
  return sharedSeed(own, theirBoxPublic, conferenceWriterContext(ownerKeyId, mailboxKeyId))
}

/** The key id of a conference owner's writer key into a mailbox, as the mailbox's owner works it out. */
export function conferenceWriterKeyId (own: BoxKeys, ownerBoxPublic: Uint8Array, ownerKeyId: string, mailboxKeyId: string): string {
  return derivedKeyId('conf.' + cacheKeyOf(own, ownerBoxPublic, ownerKeyId, mailboxKeyId), own, ownerBoxPublic, conferenceWriterContext(ownerKeyId, mailboxKeyId))
}

/** The key id of the key sharedSigningKeys derives for `context`, cached under `cacheKey`. */
function derivedKeyId (cacheKey: string, own: BoxKeys, theirBoxPublic: Uint8Array, context: Uint8Array): string {
  let id = pairKeyIds.get(cacheKey)
  if (id == null) pairKeyIds.set(cacheKey, id = keyIdOf(sharedSigningKeys(own, theirBoxPublic, context).signPublic))
  return id
}

/** Pair key ids worked out lately: a writer list names every friend's (a key derivation each). */
const pairKeyIds = boundedCache<string, string>(8192)
/** A sender's pair keys of late (a derivation is 40 % of a seal; the signing key object is then reused too). */
const senderPairKeys = new LRUCache<string, { signPublic: Uint8Array, signSecret: Uint8Array }>({ max: 1024 })

const cacheKeyOf = (own: BoxKeys, theirBoxPublic: Uint8Array, senderKeyId: string, mailboxKeyId: string): string =>
  [Buffer.from(own.boxPublic).toString('hex'), Buffer.from(theirBoxPublic).toString('hex'), senderKeyId, mailboxKeyId].join('.')

/**
 * The key id of a pair key (what a writer list names), as the mailbox's owner works it
 * out: with its own box keys and the sender's box public key.
 */
export function mailboxPairKeyId (own: BoxKeys, theirBoxPublic: Uint8Array, senderKeyId: string, mailboxKeyId: string): string {
  return derivedKeyId(cacheKeyOf(own, theirBoxPublic, senderKeyId, mailboxKeyId), own, theirBoxPublic, pairContext(senderKeyId, mailboxKeyId))
}

function signingBytes (s: Omit<SealedEnvelope, 'sig'>): Uint8Array {
  return cborg.encode([SEALED_DOMAIN, s.v, s.id, s.to, s.sentAt, s.writer, s.sealed, ...(s.work != null ? [s.work] : [])])
}

/**
 * The mailbox item of `envelope` with its sender sealed: `sender` is the sender's box
 * keys, `recipientBoxPublic` the recipient's; signed by the pair key, or by the writer
 * key made from `writerSeed` (a conference owner's, conferenceWriterSeed). Undefined when
 * the sealed item would be larger than a set item may be (the envelope then goes as it is).
 */
export function sealEnvelope (envelope: Envelope, sender: BoxKeys, recipientBoxPublic: Uint8Array, writerSeed?: Uint8Array): SetItem | undefined {
  return sealWith(envelope, writerKeys(envelope, sender, recipientBoxPublic, writerSeed), recipientBoxPublic)
}

/**
 * A stranger's sealed item: `envelope` (a friend request) sealed like a friend's, under
 * the pair key, with the stranger's work for that key and the mailbox (name-work.ts; a
 * name's cost, done once per pair while this process runs). The owner's list does not
 * name the pair key; holders take it within the strangers' limits, per pair key, and
 * never see who asked. Undefined when too large to seal.
 */
export async function sealStrangerEnvelope (envelope: Envelope, sender: BoxKeys, recipientBoxPublic: Uint8Array, options: NameWorkOptions = {}): Promise<SetItem | undefined> {
  const pair = writerKeys(envelope, sender, recipientBoxPublic)
  const cacheKey = `${keyIdOf(pair.signPublic)}.${envelope.toKeyId}.${options.bits ?? NAME_WORK_BITS}`
  let work = strangerWork.get(cacheKey)
  if (work == null) {
    // envelopes sealed at once for one pair share one search (and so one work, checked once by holders)
    work = doStrangerWork(pair.signPublic, envelope.toKeyId, options).then(found => found.work)
    strangerWork.set(cacheKey, work)
    work.catch(() => { if (strangerWork.get(cacheKey) === work) strangerWork.delete(cacheKey) })
  }
  return sealWith(envelope, pair, recipientBoxPublic, await work)
}

/** Stranger's work done (or under way) lately, by pair key and mailbox (an outbox retries a request until it is stored). */
const strangerWork = new LRUCache<string, Promise<number>>({ max: 1024 })

function writerKeys (envelope: Envelope, sender: BoxKeys, recipientBoxPublic: Uint8Array, writerSeed?: Uint8Array): { signPublic: Uint8Array, signSecret: Uint8Array } {
  const cacheKey = writerSeed != null
    ? 'seed.' + Buffer.from(sha256(writerSeed)).toString('hex')
    : cacheKeyOf(sender, recipientBoxPublic, keyIdOf(envelope.fromKey), envelope.toKeyId)
  let pair = senderPairKeys.get(cacheKey)
  if (pair == null) {
    pair = writerSeed != null ? signingKeysOf(writerSeed) : mailboxPairKeys(sender, recipientBoxPublic, keyIdOf(envelope.fromKey), envelope.toKeyId)
    senderPairKeys.set(cacheKey, pair)
  }
  return pair
}

function sealWith (envelope: Envelope, writer: { signPublic: Uint8Array, signSecret: Uint8Array }, recipientBoxPublic: Uint8Array, work?: number): SetItem | undefined {
  const unsigned = {
    v: SEALED_ENVELOPE_VERSION,
    id: envelope.id,
    to: envelope.toKeyId,
    sentAt: envelope.sentAt,
    writer: writer.signPublic,
    sealed: sealTo(encodeEnvelope(envelope), recipientBoxPublic),
    ...(work != null ? { work } : {})
  } as const
  const data = cborg.encode({ ...unsigned, sig: sign(signingBytes(unsigned), writer.signSecret) })
  return data.length <= MAX_SET_ITEM_BYTES ? { id: envelope.id, data, addedAt: envelope.sentAt } : undefined
}

/**
 * Whether a sealed item is a stranger's (carries a stranger's work; checked by
 * checkStrangerItemWork, not here).
 */
export function isSealedStrangerItem (item: SetItem): boolean {
  return strangerWorkOf(item) != null
}

/** A stranger's sealed item's writer key (its key id) and work, read without checking them; undefined for any other item. */
export function strangerWorkOf (item: SetItem): { writer: string, work: number } | undefined {
  const raw = peek(item)
  if (typeof raw?.work !== 'number' || !(raw.writer instanceof Uint8Array) || raw.writer.length !== 32) return undefined
  return { writer: keyIdOf(raw.writer), work: raw.work }
}

/**
 * What a holder checks of a stranger's sealed item before it stores it (one Argon2id
 * run, off the event loop): its work for its writer key and mailbox. Throws
 * InvalidEnvelopeError; other items pass.
 */
export async function checkStrangerItemWork (mailboxKeyId: string, item: SetItem, bits = NAME_WORK_BITS): Promise<void> {
  const raw = peek(item)
  if (typeof raw?.work !== 'number') return
  const sealed = decodeSealedEnvelopeItem(mailboxKeyId, item)
  if (!await checkStrangerWork(sealed.writer, mailboxKeyId, sealed.work!, bits)) throw new InvalidEnvelopeError('not enough work for a stranger\'s item')
}

/** The decoded item if it is (shaped as) a sealed envelope, unchecked; else undefined. */
function peek (item: SetItem): Record<string, unknown> | undefined {
  const raw = peekCbor(item.data)
  return raw != null && typeof raw === 'object' && (raw as { v?: unknown }).v === SEALED_ENVELOPE_VERSION ? raw as Record<string, unknown> : undefined
}

/** Whether a mailbox item is a sealed envelope (by its version; not checked). */
export function isSealedEnvelopeItem (item: SetItem): boolean {
  return peek(item) != null
}

/** The key id of a sealed envelope's pair key, read without checking it; undefined if it is none. */
export function sealedWriterOf (item: SetItem): string | undefined {
  const writer = peek(item)?.writer
  return writer instanceof Uint8Array && writer.length === 32 ? keyIdOf(writer) : undefined
}

/**
 * What a holder checks of a sealed envelope in the mailbox of `mailboxKeyId`: its shape,
 * its pair key's signature, and that it is stored under its own id and signed time for
 * this mailbox. Throws InvalidEnvelopeError. `signature: false`, for the recipient: the
 * pair key's signature only let the item in (its holders checked it); what the recipient
 * relies on is the sender's signature on the envelope inside (openSealedEnvelope).
 */
export function decodeSealedEnvelopeItem (mailboxKeyId: string, item: SetItem, options: { signature?: boolean } = {}): SealedEnvelope {
  if (item.data.length > MAX_SET_ITEM_BYTES) throw new InvalidEnvelopeError(`sealed envelope of ${item.data.length} bytes exceeds ${MAX_SET_ITEM_BYTES}`)
  const parsed = sealedEnvelopeSchema.safeParse(peek(item))
  if (!parsed.success) throw new InvalidEnvelopeError(`malformed sealed envelope: ${parsed.error.issues[0]?.path.join('.') ?? ''} ${parsed.error.issues[0]?.message ?? ''}`)
  const { sig, ...unsigned } = parsed.data
  if (options.signature !== false && !verify(sig, signingBytes(unsigned), unsigned.writer)) throw new InvalidEnvelopeError('bad sealed envelope signature')
  if (unsigned.to !== mailboxKeyId) throw new InvalidEnvelopeError('sealed envelope is addressed to another mailbox')
  if (item.id !== unsigned.id || item.addedAt !== unsigned.sentAt) throw new InvalidEnvelopeError('item id or time is not the sealed envelope\'s')
  return parsed.data
}

/**
 * The envelope inside, opened by the recipient: decoded and its sender's signature
 * checked (decodeEnvelope), and under the id, time and recipient the sealed envelope
 * showed. Throws InvalidEnvelopeError (or DecryptionError: not sealed to these keys).
 */
export function openSealedEnvelope (sealed: SealedEnvelope, keys: BoxKeys): Envelope {
  const envelope = decodeEnvelope(openSealed(sealed.sealed, keys))
  if (envelope.id !== sealed.id || envelope.sentAt !== sealed.sentAt || envelope.toKeyId !== sealed.to) {
    throw new InvalidEnvelopeError('the sealed envelope is not the envelope inside')
  }
  return envelope
}
