/**
 * Signed DHT records. Every value we put in the DHT is one of these: the owner's
 * Ed25519 public key, a sequence number, a CBOR body, and a signature over
 * (domain tag, key, seq, body). Decoding is strict: anything else is refused.
 */
import * as cborg from 'cborg'
import { z } from 'zod'
import { sign, verify, keyIdOf, bytesEqual, type AccountKeys } from './crypto.js'
import { InvalidRecordError } from './errors.js'
import { MAX_RECORD_BYTES } from './limits.js'

const SIGNING_DOMAIN = 'conf-chat:record:1'

export interface SignedRecord {
  /** The DHT key, e.g. `/cc-user/alice`. */
  key: string
  /** Grows with every update by the owner. */
  seq: number
  /** The owner's Ed25519 public key. */
  pub: Uint8Array
  /** CBOR-encoded payload, schema-checked per namespace. */
  body: Uint8Array
  sig: Uint8Array
}

const bytes = z.custom<Uint8Array>(v => v instanceof Uint8Array, 'expected bytes')

const signedRecordSchema = z.object({
  v: z.literal(1),
  key: z.string().min(3).max(512),
  seq: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  pub: bytes.refine(b => b.length === 32, 'public key must be 32 bytes'),
  body: bytes,
  sig: bytes.refine(b => b.length === 64, 'signature must be 64 bytes')
}).strict()

function signingBytes (key: string, seq: number, body: Uint8Array): Uint8Array {
  return cborg.encode([SIGNING_DOMAIN, key, seq, body])
}

export function encodePayload (payload: unknown): Uint8Array {
  return cborg.encode(payload)
}

export function decodeCbor (data: Uint8Array): unknown {
  try {
    return cborg.decode(data)
  } catch (err: any) {
    throw new InvalidRecordError(`malformed CBOR: ${String(err?.message ?? err)}`)
  }
}

/** What peekCbor found, per byte array. */
const peeked = new WeakMap<Uint8Array, unknown>()

/**
 * A look at untrusted bytes before they are checked: decoded CBOR, or undefined if they
 * are not CBOR. The answer is kept per byte array (a holder looks at one set item four or
 * five times in one request: its checks, its writer, the stranger and list rules), so a
 * caller must not change it, nor the bytes after asking.
 */
export function peekCbor (data: Uint8Array): unknown {
  if (peeked.has(data)) return peeked.get(data)
  let raw: unknown
  try { raw = cborg.decode(data) } catch { raw = undefined }
  peeked.set(data, raw)
  return raw
}

export function createSignedRecord (key: string, seq: number, payload: unknown, keys: Pick<AccountKeys, 'signPublic' | 'signSecret'>): SignedRecord {
  const body = encodePayload(payload)
  const sig = sign(signingBytes(key, seq, body), keys.signSecret)
  return { key, seq, pub: keys.signPublic, body, sig }
}

export function encodeSignedRecord (record: SignedRecord): Uint8Array {
  return cborg.encode({ v: 1, key: record.key, seq: record.seq, pub: record.pub, body: record.body, sig: record.sig })
}

/**
 * Decode and verify a record's envelope: size, shape, that it is for `expectedKey`,
 * and that the signature is the owner's. Namespace rules are checked separately.
 */
export function decodeSignedRecord (value: Uint8Array, expectedKey?: string): SignedRecord {
  if (value.length > MAX_RECORD_BYTES) throw new InvalidRecordError(`record of ${value.length} bytes exceeds ${MAX_RECORD_BYTES}`)
  const parsed = signedRecordSchema.safeParse(decodeCbor(value))
  if (!parsed.success) throw new InvalidRecordError(`malformed record: ${parsed.error.issues[0]?.message ?? 'bad shape'}`)
  const r = parsed.data
  if (expectedKey != null && r.key !== expectedKey) throw new InvalidRecordError(`record is for key ${r.key}, not ${expectedKey}`)
  if (!verify(r.sig, signingBytes(r.key, r.seq, r.body), r.pub)) throw new InvalidRecordError('bad signature')
  const record = { key: r.key, seq: r.seq, pub: r.pub, body: r.body, sig: r.sig }
  // one encoding per record: else anyone could re-encode a signed record into "larger bytes" that win a same-seq tie
  if (!bytesEqual(encodeSignedRecord(record), value)) throw new InvalidRecordError('record is not canonically encoded')
  return record
}

export function signerKeyId (record: SignedRecord): string {
  return keyIdOf(record.pub)
}
