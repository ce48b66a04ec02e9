/**
 * Account cryptography, in the standard constructions of NaCl, through libsodium itself
 * (sodium-native, the native addon the password's Argon2id already loads): Ed25519
 * signatures, X25519 sealed boxes (crypto_box_seal) for end-to-end encryption,
 * XSalsa20-Poly1305 secretbox for the private keys at rest and the local history, keyed
 * BLAKE2b for the seeds two accounts share, and scrypt (node:crypto) for the records made
 * before Argon2id. The keys are in libsodium's formats: a signing secret is seed || public
 * key (64 bytes), a box secret the raw scalar.
 *
 * libsodium takes raw keys, so nothing is imported or cached per key. Before, these ran
 * on node:crypto (OpenSSL, with the keys imported as JWK key objects and kept in caches)
 * and @noble/ciphers and @noble/hashes for what OpenSSL lacks (XSalsa20-Poly1305, HSalsa20,
 * BLAKE2b). On this machine libsodium takes half the time or less (`npm run
 * bench:sealing`, both builds in one session): a signature check 106 -> 49 µs, a signature
 * 35 -> 18, a sealed box 103 -> 48 and opening one 60 -> 33, a pair's shared seed 47 -> 32,
 * a secretbox of 200 bytes 9 -> 2 (README, "Crypto through libsodium"). libsodium-wrappers
 * (WebAssembly), used before both, added 11 MiB of resident memory; the native addon is
 * loaded anyway. Only the writer tags (writer-list.ts) still hash with @noble/hashes: a
 * 12-byte BLAKE2b, below libsodium's shortest output.
 */
import sodiumNative from 'sodium-native'
import { createHash, randomBytes, scrypt as scryptCb } from 'node:crypto'
import { DecryptionError } from './errors.js'

/**
 * The part of sodium-native used here, as version 5 takes it: any Uint8Array (its @types
 * package, written for version 2, says Buffer). Each throws on a wrong length, and
 * crypto_scalarmult and crypto_box_seal on a low-order public key.
 */
interface Sodium {
  crypto_box_SEALBYTES: number
  crypto_secretbox_MACBYTES: number
  crypto_sign_seed_keypair: (pk: Uint8Array, sk: Uint8Array, seed: Uint8Array) => void
  crypto_sign_detached: (sig: Uint8Array, message: Uint8Array, sk: Uint8Array) => void
  crypto_sign_verify_detached: (sig: Uint8Array, message: Uint8Array, pk: Uint8Array) => boolean
  crypto_scalarmult_base: (q: Uint8Array, n: Uint8Array) => void
  crypto_scalarmult: (q: Uint8Array, n: Uint8Array, p: Uint8Array) => void
  crypto_box_seal: (c: Uint8Array, m: Uint8Array, pk: Uint8Array) => void
  crypto_box_seal_open: (m: Uint8Array, c: Uint8Array, pk: Uint8Array, sk: Uint8Array) => boolean
  crypto_secretbox_easy: (c: Uint8Array, m: Uint8Array, n: Uint8Array, k: Uint8Array) => void
  crypto_secretbox_open_easy: (m: Uint8Array, c: Uint8Array, n: Uint8Array, k: Uint8Array) => boolean
  crypto_generichash: (out: Uint8Array, input: Uint8Array, key: Uint8Array) => void
}
const sodium = sodiumNative as unknown as Sodium

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
const SEAL_BYTES = sodium.crypto_box_SEALBYTES
const MAC_BYTES = sodium.crypto_secretbox_MACBYTES

/**
 * X25519 on raw keys: the public key of a 32-byte scalar, and the shared secret of a
 * scalar and a public key (an account's box key and pair seeds here; the network layer's
 * noise handshakes too, whose default crypto imports every key into OpenSSL as DER for
 * each DH). Throws for a low-order public key (an all-zero shared secret), as OpenSSL
 * and libsodium's own crypto_box do.
 */
export function x25519PublicOf (secret: Uint8Array): Uint8Array {
  const pub = new Uint8Array(BOX_PUBLIC_BYTES)
  sodium.crypto_scalarmult_base(pub, secret)
  return pub
}
export function x25519Shared (secret: Uint8Array, theirPublic: Uint8Array): Uint8Array {
  const shared = new Uint8Array(BOX_PUBLIC_BYTES)
  sodium.crypto_scalarmult(shared, secret, theirPublic)
  return shared
}

/** A signing key pair in libsodium's format from a 32-byte seed (crypto_sign_seed_keypair). */
export function signingKeysOf (seed: Uint8Array): { signPublic: Uint8Array, signSecret: Uint8Array } {
  if (seed.length !== SEED_BYTES) throw new TypeError('a signing seed is 32 bytes')
  const signPublic = new Uint8Array(SIGN_PUBLIC_BYTES)
  const signSecret = new Uint8Array(SIGN_SECRET_BYTES)
  sodium.crypto_sign_seed_keypair(signPublic, signSecret, seed)
  return { signPublic, signSecret }
}

export function generateAccountKeys (): AccountKeys {
  const seed = new Uint8Array(randomBytes(SEED_BYTES))
  const boxSecret = new Uint8Array(randomBytes(BOX_SECRET_BYTES))
  const keys = { ...signingKeysOf(seed), boxPublic: x25519PublicOf(boxSecret), boxSecret }
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
  const signature = new Uint8Array(SIGNATURE_BYTES)
  sodium.crypto_sign_detached(signature, message, signSecret)
  return signature
}

export function verify (signature: Uint8Array, message: Uint8Array, signPublic: Uint8Array): boolean {
  if (signature.length !== SIGNATURE_BYTES || signPublic.length !== SIGN_PUBLIC_BYTES) return false
  return sodium.crypto_sign_verify_detached(signature, message, signPublic)
}

/**
 * Encrypt to a recipient's box public key; only the holder of its secret key can open it.
 * crypto_box_seal: an ephemeral key pair, nonce = BLAKE2b-24(ephemeral public || recipient
 * public), then crypto_box (X25519, HSalsa20, XSalsa20-Poly1305); out: ephemeral public
 * || MAC || ciphertext. Throws for a low-order public key.
 */
export function sealTo (plaintext: Uint8Array, boxPublic: Uint8Array): Uint8Array {
  if (boxPublic.length !== BOX_PUBLIC_BYTES) throw new TypeError('a box public key is 32 bytes')
  const sealed = new Uint8Array(plaintext.length + SEAL_BYTES)
  sodium.crypto_box_seal(sealed, plaintext, boxPublic)
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
    shared = x25519Shared(own.boxSecret, theirBoxPublic)
  } catch {
    throw new DecryptionError('no shared secret with that box key')
  }
  const seed = new Uint8Array(SEED_BYTES)
  sodium.crypto_generichash(seed, context, shared)
  shared.fill(0)
  return seed
}

export function openSealed (ciphertext: Uint8Array, keys: { boxPublic: Uint8Array, boxSecret: Uint8Array }): Uint8Array {
  if (ciphertext.length < SEAL_BYTES || keys.boxSecret.length !== BOX_SECRET_BYTES || keys.boxPublic.length !== BOX_PUBLIC_BYTES) {
    throw new DecryptionError('Could not open sealed box')
  }
  const plaintext = new Uint8Array(ciphertext.length - SEAL_BYTES)
  if (!sodium.crypto_box_seal_open(plaintext, ciphertext, keys.boxPublic, keys.boxSecret)) throw new DecryptionError('Could not open sealed box')
  return plaintext
}

/** crypto_secretbox_easy: MAC || ciphertext under a 32-byte key and a 24-byte nonce. */
export function secretbox (plaintext: Uint8Array, nonce: Uint8Array, key: Uint8Array): Uint8Array {
  const box = new Uint8Array(plaintext.length + MAC_BYTES)
  sodium.crypto_secretbox_easy(box, plaintext, nonce, key)
  return box
}

/** crypto_secretbox_open_easy; throws DecryptionError (with `what`) when the MAC does not match. */
export function secretboxOpen (box: Uint8Array, nonce: Uint8Array, key: Uint8Array, what: string): Uint8Array {
  if (box.length < MAC_BYTES || nonce.length !== BOX_NONCE_BYTES || key.length !== SECRETBOX_KEY_BYTES) throw new DecryptionError(what)
  const plaintext = new Uint8Array(box.length - MAC_BYTES)
  if (!sodium.crypto_secretbox_open_easy(plaintext, box, nonce, key)) throw new DecryptionError(what)
  return plaintext
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
