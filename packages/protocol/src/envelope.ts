/**
 * Envelopes: every message between users (direct messages, friend requests, conference
 * messages, session notices) is one. The body is sealed to the recipient (a NaCl
 * sealed box), the whole is signed by the sender's account key, so holders and relays
 * can neither read nor forge it.
 */
import * as cborg from 'cborg'
import { z } from 'zod'
import { sign, verify, keyIdOf, sealTo, openSealed, randomId, KEY_ID_PATTERN, type AccountKeys } from './crypto.js'
import { decodeCbor } from './record.js'
import { InvalidRecordError } from './errors.js'
import { MAX_ENVELOPE_BYTES, USERNAME_PATTERN } from './limits.js'

const SIGNING_DOMAIN = 'conf-chat:envelope:1'

const bytes = z.custom<Uint8Array>(v => v instanceof Uint8Array, 'expected bytes')

/** An envelope id: its sending time (base 36, 9 digits), then 8 random bytes in hex. */
export const ENVELOPE_ID_PATTERN = /^[0-9a-z]{9}-[0-9a-f]{16}$/

export const envelopeSchema = z.object({
  v: z.literal(1),
  /** Unique and sortable: sent-at time then randomness (see `newEnvelopeId`). */
  id: z.string().regex(ENVELOPE_ID_PATTERN),
  kind: z.string().regex(/^[a-z][a-z0-9-]{0,31}$/),
  from: z.string().regex(USERNAME_PATTERN),
  fromKey: bytes.refine(b => b.length === 32),
  to: z.string().regex(USERNAME_PATTERN),
  toKeyId: z.string().regex(KEY_ID_PATTERN),
  sentAt: z.number().int().nonnegative(),
  body: bytes,
  sig: bytes.refine(b => b.length === 64)
}).strict()

export type Envelope = z.infer<typeof envelopeSchema>

export class InvalidEnvelopeError extends InvalidRecordError {
  override name = 'InvalidEnvelopeError'
}

/** Time-prefixed ids sort by sending time; 8 random bytes make them unique. */
export function newEnvelopeId (now = Date.now()): string {
  return `${now.toString(36).padStart(9, '0')}-${randomId(8)}`
}

/** When an envelope id was made (ms since epoch): its prefix, as its sender's clock read it. */
export function envelopeIdTime (id: string): number {
  return parseInt(id.slice(0, 9), 36)
}

function signingBytes (e: Omit<Envelope, 'sig'>): Uint8Array {
  return cborg.encode([SIGNING_DOMAIN, e.v, e.id, e.kind, e.from, e.fromKey, e.to, e.toKeyId, e.sentAt, e.body])
}

export interface Recipient {
  username: string
  signPublic?: Uint8Array
  keyId: string
  boxPublic: Uint8Array
}

export interface Sender {
  username: string
  keys: AccountKeys
}

/** Seal `content` (any CBOR-encodable value) to the recipient and sign the envelope. */
export function createEnvelope (kind: string, content: unknown, from: Sender, to: Recipient, now = Date.now()): Envelope {
  const unsigned = {
    v: 1 as const,
    id: newEnvelopeId(now),
    kind,
    from: from.username,
    fromKey: from.keys.signPublic,
    to: to.username,
    toKeyId: to.keyId,
    sentAt: now,
    body: sealTo(cborg.encode(content), to.boxPublic)
  }
  return { ...unsigned, sig: sign(signingBytes(unsigned), from.keys.signSecret) }
}

export function encodeEnvelope (e: Envelope): Uint8Array {
  return cborg.encode(e)
}

/** Decode and check shape, size and signature. Who owns `fromKey` is the caller's check. */
export function decodeEnvelope (data: Uint8Array): Envelope {
  if (data.length > MAX_ENVELOPE_BYTES) throw new InvalidEnvelopeError(`envelope of ${data.length} bytes exceeds ${MAX_ENVELOPE_BYTES}`)
  const parsed = envelopeSchema.safeParse(decodeCbor(data))
  if (!parsed.success) throw new InvalidEnvelopeError(`malformed envelope: ${parsed.error.issues[0]?.path.join('.') ?? ''} ${parsed.error.issues[0]?.message ?? ''}`)
  const e = parsed.data
  const { sig, ...unsigned } = e
  if (!verify(sig, signingBytes(unsigned), e.fromKey)) throw new InvalidEnvelopeError('bad envelope signature')
  return e
}

export function senderKeyId (e: Envelope): string {
  return keyIdOf(e.fromKey)
}

/** Open the body with the recipient's keys and check it against the kind's schema. */
export function openEnvelope<T> (e: Envelope, keys: Pick<AccountKeys, 'boxPublic' | 'boxSecret'>, schema: z.ZodType<T>): T {
  const parsed = schema.safeParse(decodeCbor(openSealed(e.body, keys)))
  if (!parsed.success) throw new InvalidEnvelopeError(`malformed ${e.kind} body: ${parsed.error.issues[0]?.message ?? ''}`)
  return parsed.data
}
