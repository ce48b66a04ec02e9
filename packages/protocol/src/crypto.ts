/**
 * Account cryptography, all from libsodium (a well-kept library, standard constructions):
 * Ed25519 signatures, X25519 sealed boxes (crypto_box_seal) for end-to-end encryption,
 * XSalsa20-Poly1305 secretbox for the private keys at rest, and scrypt (node:crypto,
 * memory-hard) to derive the key that protects them from the password.
 */
import { createHash, scrypt as scryptCb, randomBytes } from 'node:crypto'
import sodium from 'libsodium-wrappers'
import { DecryptionError } from './errors.js'

await sodium.ready

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

export function generateAccountKeys (): AccountKeys {
  const sign = sodium.crypto_sign_keypair()
  const box = sodium.crypto_box_keypair()
  return { signPublic: sign.publicKey, signSecret: sign.privateKey, boxPublic: box.publicKey, boxSecret: box.privateKey }
}

/** The id of an account key: hex SHA-256 of the signing public key, 160 bits (as IPNS keys a name by its key). */
export function keyIdOf (signPublic: Uint8Array): string {
  return createHash('sha256').update(signPublic).digest('hex').slice(0, 40)
}

export const KEY_ID_PATTERN = /^[0-9a-f]{40}$/

export function sha256 (data: Uint8Array | string): Uint8Array {
  return new Uint8Array(createHash('sha256').update(data).digest())
}

export function sign (message: Uint8Array, signSecret: Uint8Array): Uint8Array {
  return sodium.crypto_sign_detached(message, signSecret)
}

export function verify (signature: Uint8Array, message: Uint8Array, signPublic: Uint8Array): boolean {
  if (signature.length !== sodium.crypto_sign_BYTES || signPublic.length !== sodium.crypto_sign_PUBLICKEYBYTES) return false
  try {
    return sodium.crypto_sign_verify_detached(signature, message, signPublic)
  } catch {
    return false
  }
}

export const SIGN_PUBLIC_BYTES = 32
export const BOX_PUBLIC_BYTES = 32

/**
 * Encrypt to a recipient's box public key; only the holder of its secret key can open it.
 * The construction of crypto_box_seal, byte for byte (crypto_box_seal_open opens it): an
 * ephemeral key pair, nonce = BLAKE2b-24(ephemeral public || recipient public), then
 * crypto_box. The ephemeral key's seed comes from node:crypto: libsodium-wrappers draws
 * its randomness 4 bytes per call through WebCrypto in Node, which made crypto_box_seal
 * cost 440-530 µs (randomness ~60 % of it, the largest part of a DM's CPU in a profile of
 * bench:messages); this way sealing costs about 250 µs.
 */
export function sealTo (plaintext: Uint8Array, boxPublic: Uint8Array): Uint8Array {
  const ephemeral = sodium.crypto_box_seed_keypair(randomBytes(sodium.crypto_box_SEEDBYTES))
  const nonceInput = new Uint8Array(2 * sodium.crypto_box_PUBLICKEYBYTES)
  nonceInput.set(ephemeral.publicKey)
  nonceInput.set(boxPublic, sodium.crypto_box_PUBLICKEYBYTES)
  const nonce = sodium.crypto_generichash(sodium.crypto_box_NONCEBYTES, nonceInput, null)
  const boxed = sodium.crypto_box_easy(plaintext, nonce, boxPublic, ephemeral.privateKey)
  sodium.memzero(ephemeral.privateKey)
  const sealed = new Uint8Array(ephemeral.publicKey.length + boxed.length)
  sealed.set(ephemeral.publicKey)
  sealed.set(boxed, ephemeral.publicKey.length)
  return sealed
}

export function openSealed (ciphertext: Uint8Array, keys: { boxPublic: Uint8Array, boxSecret: Uint8Array }): Uint8Array {
  try {
    return sodium.crypto_box_seal_open(ciphertext, keys.boxPublic, keys.boxSecret)
  } catch {
    throw new DecryptionError('Could not open sealed box')
  }
}

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
    scryptCb(password.normalize('NFKC'), salt, sodium.crypto_secretbox_KEYBYTES,
      { N: params.N, r: params.r, p: params.p, maxmem: 256 * params.N * params.r + 1024 * 1024 },
      (err, key) => { if (err != null) reject(err); else resolve(new Uint8Array(key)) })
  })
}

export async function encryptWithPassword (secret: Uint8Array, password: string, params: ScryptParams = DEFAULT_SCRYPT): Promise<EncryptedSecret> {
  const salt = new Uint8Array(randomBytes(16))
  const key = await deriveKey(password, salt, params)
  // node:crypto, not libsodium-wrappers' randomness (4 bytes per WebCrypto call in Node: see sealTo)
  const nonce = new Uint8Array(randomBytes(sodium.crypto_secretbox_NONCEBYTES))
  return { kdf: 'scrypt', ...params, salt, nonce, ciphertext: sodium.crypto_secretbox_easy(secret, nonce, key) }
}

export async function decryptWithPassword (enc: EncryptedSecret, password: string): Promise<Uint8Array> {
  const key = await deriveKey(password, enc.salt, enc)
  try {
    return sodium.crypto_secretbox_open_easy(enc.ciphertext, enc.nonce, key)
  } catch {
    throw new DecryptionError('Wrong password for the encrypted keys')
  }
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
