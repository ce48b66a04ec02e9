/**
 * Account cryptography, in the standard constructions of NaCl so that the bytes are what
 * libsodium makes and opens (the unit tests check that against libsodium itself):
 * Ed25519 signatures, X25519 sealed boxes (crypto_box_seal) for end-to-end encryption,
 * XSalsa20-Poly1305 secretbox for the private keys at rest, and scrypt (memory-hard) to
 * derive the key that protects them from the password.
 *
 * Two libraries, both already loaded by libp2p: node:crypto (OpenSSL) for the curve
 * operations, hashes, randomness and scrypt, and @noble/ciphers and @noble/hashes for
 * what OpenSSL lacks (XSalsa20-Poly1305, HSalsa20, BLAKE2b with a 24-byte output).
 * libsodium-wrappers, used before, added 11 MiB of resident memory (its WebAssembly)
 * and 60-70 ms to the start for the same operations. The keys keep libsodium's formats:
 * a signing secret is seed || public key (64 bytes), a box secret the raw scalar.
 * OpenSSL wants its keys as objects: those of our own secrets are kept per key array,
 * those of other accounts' public keys in a small LRU cache, so a signature check or a
 * seal to a friend imports no key.
 */
import {
  createHash, createPrivateKey, createPublicKey, diffieHellman,
  randomBytes, scrypt as scryptCb, sign as edSign, verify as edVerify, type KeyObject
} from 'node:crypto'
import { hsalsa, xsalsa20poly1305 } from '@noble/ciphers/salsa.js'
import { blake2b } from '@noble/hashes/blake2.js'
import { LRUCache } from 'lru-cache'
import { DecryptionError } from './errors.js'

export interface AccountKeys {
  signPublic: Uint8Array
  signSecret: Uint8Array
  boxPublic: Uint8Array
  boxSecret: Uint8Array
}

export interface PublicKeys {
  signPublic: Uint8Array
  boxPublic: Uint8Array
}

export const SIGN_PUBLIC_BYTES = 32
export const BOX_PUBLIC_BYTES = 32
const SIGN_SECRET_BYTES = 64
const SIGNATURE_BYTES = 64
const SEED_BYTES = 32
const BOX_SECRET_BYTES = 32
const BOX_NONCE_BYTES = 24
const SECRETBOX_KEY_BYTES = 32
const MAC_BYTES = 16

// OpenSSL takes raw curve keys as JWK (RFC 8037); parsing them from DER instead costs
// 140 µs for a public key and 400 µs for a private one in Node 20, JWK 12 and 35 µs
type Curve = 'Ed25519' | 'X25519'
const b64u = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url')
const privateKeyOf = (crv: Curve, secret: Uint8Array, pub: Uint8Array): KeyObject =>
  createPrivateKey({ key: { kty: 'OKP', crv, d: b64u(secret), x: b64u(pub) }, format: 'jwk' })
const publicKeyOf = (crv: Curve, raw: Uint8Array): KeyObject =>
  createPublicKey({ key: { kty: 'OKP', crv, x: b64u(raw) }, format: 'jwk' })

/**
 * New keys are made from 32 random bytes, never with generateKeyPairSync: in Node 20 the
 * garbage collector can finalize a key-generation job while one of its keys is being
 * exported, and the job's destructor then waits for the lock the export holds, forever
 * (the whole process stood still, in `KeyGenJob::~KeyGenJob` under `ExportJWK`).
 * OpenSSL derives a private key's public half from `d` alone: the JWK's `x` it is given
 * here is a placeholder (a DER import, the other way, costs 430 µs instead of 37).
 */
const PLACEHOLDER_X = b64u(new Uint8Array(32))
/** The private key object of a 32-byte Ed25519 seed or X25519 scalar. */
const privateKeyFromRaw = (crv: Curve, raw: Uint8Array): KeyObject =>
  createPrivateKey({ key: { kty: 'OKP', crv, d: b64u(raw), x: PLACEHOLDER_X }, format: 'jwk' })
/** The raw 32-byte public key of a private key object (derived by OpenSSL). */
const rawPublicOf = (key: KeyObject): Uint8Array =>
  new Uint8Array(Buffer.from(createPublicKey(key).export({ format: 'jwk' }).x ?? '', 'base64url'))

/** Our own secrets' key objects, per key array (an account's keys live as long as its session). */
const ownKeys = new WeakMap<Uint8Array, KeyObject>()
function ownKey (secret: Uint8Array, make: () => KeyObject): KeyObject {
  let key = ownKeys.get(secret)
  if (key == null) ownKeys.set(secret, key = make())
  return key
}

/**
 * X25519 keys as OpenSSL key objects, through JWK (for the noise handshakes of the
 * network layer too, whose default crypto imports them as DER): a private key from its raw
 * 32-byte scalar, kept per array like our other secrets' (a noise static key serves every
 * handshake, an ephemeral one two DHs); a public key from its raw bytes (not cached: for
 * keys used once); and the raw public key of a raw scalar.
 */
export const x25519OwnKey = (secret: Uint8Array): KeyObject => ownKey(secret, () => privateKeyFromRaw('X25519', secret))
export const x25519PublicKey = (raw: Uint8Array): KeyObject => publicKeyOf('X25519', raw)
export const x25519PublicOf = (secret: Uint8Array): Uint8Array => rawPublicOf(privateKeyFromRaw('X25519', secret))

/** Other accounts' public key objects: friends, conference members, the senders of records being checked. */
const PUBLIC_KEY_CACHE_SIZE = 512
const publicKeys = new LRUCache<string, KeyObject>({ max: PUBLIC_KEY_CACHE_SIZE })
function publicKey (crv: Curve, raw: Uint8Array): KeyObject {
  const cacheKey = crv + b64u(raw)
  let key = publicKeys.get(cacheKey)
  if (key == null) publicKeys.set(cacheKey, key = publicKeyOf(crv, raw))
  return key
}

/** A signing key pair in libsodium's format from a 32-byte seed (crypto_sign_seed_keypair). */
export function signingKeysOf (seed: Uint8Array): { signPublic: Uint8Array, signSecret: Uint8Array } {
  if (seed.length !== SEED_BYTES) throw new TypeError('a signing seed is 32 bytes')
  const signPublic = rawPublicOf(privateKeyFromRaw('Ed25519', seed))
  const signSecret = new Uint8Array(SIGN_SECRET_BYTES)
  signSecret.set(seed)
  signSecret.set(signPublic, SEED_BYTES)
  return { signPublic, signSecret }
}

export function generateAccountKeys (): AccountKeys {
  const seed = new Uint8Array(randomBytes(SEED_BYTES))
  const boxSecret = new Uint8Array(randomBytes(BOX_SECRET_BYTES))
  const keys = { ...signingKeysOf(seed), boxPublic: rawPublicOf(privateKeyFromRaw('X25519', boxSecret)), boxSecret }
  seed.fill(0)
  return keys
}

/** The id of an account key: hex SHA-256 of the signing public key, 160 bits (as IPNS keys a name by its key). */
export function keyIdOf (signPublic: Uint8Array): string {
  return createHash('sha256').update(signPublic).digest('hex').slice(0, 40)
}

export const KEY_ID_PATTERN = /^[0-9a-f]{40}$/

/** A key id as people compare it: its first 80 bits in groups of four (`3f2a 91c0 ...`). */
export function fingerprintOf (keyId: string): string {
  return (keyId.slice(0, 20).match(/.{1,4}/g) ?? []).join(' ')
}

export function sha256 (data: Uint8Array | string): Uint8Array {
  return new Uint8Array(createHash('sha256').update(data).digest())
}

/** Ed25519 over `message` with a libsodium-format secret (seed || public key). */
export function sign (message: Uint8Array, signSecret: Uint8Array): Uint8Array {
  if (signSecret.length !== SIGN_SECRET_BYTES) throw new TypeError('a signing secret is 64 bytes')
  const key = ownKey(signSecret, () => privateKeyOf('Ed25519', signSecret.subarray(0, SEED_BYTES), signSecret.subarray(SEED_BYTES)))
  return new Uint8Array(edSign(null, message, key))
}

export function verify (signature: Uint8Array, message: Uint8Array, signPublic: Uint8Array): boolean {
  if (signature.length !== SIGNATURE_BYTES || signPublic.length !== SIGN_PUBLIC_BYTES) return false
  try {
    return edVerify(null, message, publicKey('Ed25519', signPublic), signature)
  } catch {
    return false // not a point on the curve
  }
}

const SIGMA = new Uint32Array(new Uint8Array(Buffer.from('expand 32-byte k')).buffer)

/**
 * crypto_box_beforenm: HSalsa20 of the X25519 shared secret (OpenSSL refuses an all-zero
 * one, as libsodium does: a low-order public key throws).
 */
function boxKey (privateKey: KeyObject, publicKey: KeyObject): Uint8Array {
  const shared = new Uint8Array(diffieHellman({ privateKey, publicKey }))
  const out = new Uint32Array(8)
  hsalsa(SIGMA, new Uint32Array(shared.buffer, shared.byteOffset, 8), new Uint32Array(4), out)
  return new Uint8Array(out.buffer)
}

/** crypto_box_seal's nonce: BLAKE2b-24(ephemeral public || recipient public). */
function sealNonce (ephemeralPublic: Uint8Array, boxPublic: Uint8Array): Uint8Array {
  return blake2b.create({ dkLen: BOX_NONCE_BYTES }).update(ephemeralPublic).update(boxPublic).digest()
}

/**
 * Encrypt to a recipient's box public key; only the holder of its secret key can open it.
 * crypto_box_seal, byte for byte: an ephemeral key pair, nonce = BLAKE2b-24(ephemeral
 * public || recipient public), then crypto_box (X25519, HSalsa20, XSalsa20-Poly1305);
 * out: ephemeral public || MAC || ciphertext.
 */
export function sealTo (plaintext: Uint8Array, boxPublic: Uint8Array): Uint8Array {
  if (boxPublic.length !== BOX_PUBLIC_BYTES) throw new TypeError('a box public key is 32 bytes')
  const ephemeralSecret = randomBytes(BOX_SECRET_BYTES)
  const ephemeral = privateKeyFromRaw('X25519', ephemeralSecret)
  ephemeralSecret.fill(0)
  const ephemeralPublic = rawPublicOf(ephemeral)
  const key = boxKey(ephemeral, publicKey('X25519', boxPublic))
  const boxed = xsalsa20poly1305(key, sealNonce(ephemeralPublic, boxPublic)).encrypt(plaintext)
  key.fill(0)
  const sealed = new Uint8Array(BOX_PUBLIC_BYTES + boxed.length)
  sealed.set(ephemeralPublic)
  sealed.set(boxed, BOX_PUBLIC_BYTES)
  return sealed
}

/**
 * A signing key pair two accounts can both derive and nobody else can: its seed is
 * BLAKE2b-256, keyed by the X25519 secret of one's box secret and the other's box public
 * key, over `context`. For a sender's pseudonym in the recipient's mailbox (see
 * sealed-envelope.ts): each side derives the same pair from its own secret. Throws
 * DecryptionError for a low-order public key (no shared secret).
 */
export function sharedSigningKeys (own: { boxPublic: Uint8Array, boxSecret: Uint8Array }, theirBoxPublic: Uint8Array,
  context: Uint8Array): { signPublic: Uint8Array, signSecret: Uint8Array } {
  const seed = sharedSeed(own, theirBoxPublic, context)
  const keys = signingKeysOf(seed)
  seed.fill(0)
  return keys
}

/**
 * The seed of sharedSigningKeys: for a key pair one side derives and hands to a third
 * party it trusts (conference members, sealed-envelope.ts), who makes the keys with
 * signingKeysOf. Throws DecryptionError for a low-order public key.
 */
export function sharedSeed (own: { boxPublic: Uint8Array, boxSecret: Uint8Array }, theirBoxPublic: Uint8Array, context: Uint8Array): Uint8Array {
  let shared: Uint8Array
  try {
    const mine = ownKey(own.boxSecret, () => privateKeyOf('X25519', own.boxSecret, own.boxPublic))
    shared = new Uint8Array(diffieHellman({ privateKey: mine, publicKey: publicKey('X25519', theirBoxPublic) }))
  } catch {
    throw new DecryptionError('no shared secret with that box key')
  }
  const seed = blake2b.create({ key: shared, dkLen: SEED_BYTES }).update(context).digest()
  shared.fill(0)
  return seed
}

export function openSealed (ciphertext: Uint8Array, keys: { boxPublic: Uint8Array, boxSecret: Uint8Array }): Uint8Array {
  if (ciphertext.length < BOX_PUBLIC_BYTES + MAC_BYTES || keys.boxSecret.length !== BOX_SECRET_BYTES) {
    throw new DecryptionError('Could not open sealed box')
  }
  const ephemeralPublic = ciphertext.subarray(0, BOX_PUBLIC_BYTES)
  try {
    const own = ownKey(keys.boxSecret, () => privateKeyOf('X25519', keys.boxSecret, keys.boxPublic))
    // the ephemeral key is new every time: not worth a cache entry
    const key = boxKey(own, publicKeyOf('X25519', ephemeralPublic))
    return xsalsa20poly1305(key, sealNonce(ephemeralPublic, keys.boxPublic)).decrypt(ciphertext.subarray(BOX_PUBLIC_BYTES))
  } catch {
    throw new DecryptionError('Could not open sealed box')
  }
}

/** crypto_secretbox_easy: MAC || ciphertext under a 32-byte key and a 24-byte nonce. */
export function secretbox (plaintext: Uint8Array, nonce: Uint8Array, key: Uint8Array): Uint8Array {
  return xsalsa20poly1305(key, nonce).encrypt(plaintext)
}

/** crypto_secretbox_open_easy; throws DecryptionError (with `what`) when the MAC does not match. */
export function secretboxOpen (box: Uint8Array, nonce: Uint8Array, key: Uint8Array, what: string): Uint8Array {
  try {
    return xsalsa20poly1305(key, nonce).decrypt(box)
  } catch {
    throw new DecryptionError(what)
  }
}

export const SECRETBOX_NONCE_BYTES = BOX_NONCE_BYTES

export interface ScryptParams { N: number, r: number, p: number }

/** scrypt cost: 2^15 x 8 x 1 takes 32 MiB and ~100 ms here. */
export const DEFAULT_SCRYPT: ScryptParams = { N: 1 << 15, r: 8, p: 1 }

export interface EncryptedSecret {
  kdf: 'scrypt'
  N: number
  r: number
  p: number
  salt: Uint8Array
  nonce: Uint8Array
  ciphertext: Uint8Array
}

async function deriveKey (password: string, salt: Uint8Array, params: ScryptParams): Promise<Uint8Array> {
  return await new Promise((resolve, reject) => {
    scryptCb(password.normalize('NFKC'), salt, SECRETBOX_KEY_BYTES,
      { N: params.N, r: params.r, p: params.p, maxmem: 256 * params.N * params.r + 1024 * 1024 },
      (err, key) => { if (err != null) reject(err); else resolve(new Uint8Array(key)) })
  })
}

export async function encryptWithPassword (secret: Uint8Array, password: string, params: ScryptParams = DEFAULT_SCRYPT): Promise<EncryptedSecret> {
  const salt = new Uint8Array(randomBytes(16))
  const key = await deriveKey(password, salt, params)
  const nonce = new Uint8Array(randomBytes(SECRETBOX_NONCE_BYTES))
  return { kdf: 'scrypt', ...params, salt, nonce, ciphertext: secretbox(secret, nonce, key) }
}

export async function decryptWithPassword (enc: EncryptedSecret, password: string): Promise<Uint8Array> {
  const key = await deriveKey(password, enc.salt, enc)
  return secretboxOpen(enc.ciphertext, enc.nonce, key, 'Wrong password for the encrypted keys')
}

export function randomId (bytes = 16): string {
  return Buffer.from(randomBytes(bytes)).toString('hex')
}

export function bytesEqual (a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0
}

export function compareBytes (a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b)
}
