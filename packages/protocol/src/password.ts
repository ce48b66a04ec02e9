/**
 * What a password protects, at the cost of one memory-hard function per guess.
 *
 * The user record is world-readable, so whoever reads it can guess offline against
 * whatever it holds that a password unlocks. It holds two such things: the bcrypt
 * verifier (`passwordHash`) and the account's encrypted secret keys. Both come from one
 * Argon2id run (libsodium's `crypto_pwhash`, through sodium-native, off the event loop)
 * over the password and a random salt. Its 64-byte output is split in two:
 * - the first half, in base64, is what the bcrypt verifier hashes;
 * - the second half is the key that encrypts the secret keys (XSalsa20-Poly1305).
 * A guess at either therefore costs one Argon2id. Its parameters are stored with the
 * encrypted keys, so that they can be raised later: a login whose record has weaker
 * parameters than the peer's writes the record again.
 *
 * Records made before this (`kdf: 'scrypt'`) verify with bcrypt over the password itself,
 * and a login upgrades them.
 */
import sodium from 'sodium-native'
import { randomBytes } from 'node:crypto'
import { secretbox, secretboxOpen, SECRETBOX_NONCE_BYTES } from './crypto.js'

export interface PwhashParams {
  /** Argon2id passes over the memory. */
  opsLimit: number
  /** Argon2id memory, in bytes. */
  memLimit: number
}

const MiB = 1024 * 1024

/** 3 passes over 128 MiB: ~0.4 s in libsodium on this machine's cores. */
export const DEFAULT_PWHASH: PwhashParams = { opsLimit: 3, memLimit: 128 * MiB }

/** What a record may ask of a login: enough to be useful, never enough to exhaust a peer. */
export const PWHASH_BOUNDS = { opsMin: 1, opsMax: 16, memMin: 8 * MiB, memMax: 1024 * MiB } as const

export const PWHASH_SALT_BYTES = 16

/** The account's secret keys, encrypted under the second half of Argon2id's output. */
export interface PasswordSealed {
  kdf: 'argon2id'
  ops: number
  mem: number
  salt: Uint8Array
  nonce: Uint8Array
  ciphertext: Uint8Array
}

export interface PasswordKeys {
  /** What the bcrypt verifier hashes (44 characters: under bcrypt's 72-byte limit). */
  verifier: string
  /** The key that encrypts the secret keys. */
  key: Uint8Array
}

/** Argon2id over the password (NFKC, so that a password typed on another keyboard matches). */
export async function derivePasswordKeys (password: string, salt: Uint8Array, params: PwhashParams): Promise<PasswordKeys> {
  const out = Buffer.alloc(64)
  await new Promise<void>((resolve, reject) => {
    sodium.crypto_pwhash_async(out, Buffer.from(password.normalize('NFKC')), Buffer.from(salt), params.opsLimit, params.memLimit,
      sodium.crypto_pwhash_ALG_ARGON2ID13, (err?: Error | null) => { if (err != null) reject(err); else resolve() })
  })
  return { verifier: out.subarray(0, 32).toString('base64'), key: new Uint8Array(out.subarray(32)) }
}

/** Encrypt `secret` under a fresh salt; returns the sealed secret and the verifier's input. */
export async function sealWithPassword (secret: Uint8Array, password: string, params: PwhashParams = DEFAULT_PWHASH): Promise<{ sealed: PasswordSealed, verifier: string }> {
  const salt = new Uint8Array(randomBytes(PWHASH_SALT_BYTES))
  const { verifier, key } = await derivePasswordKeys(password, salt, params)
  const nonce = new Uint8Array(randomBytes(SECRETBOX_NONCE_BYTES))
  return { sealed: { kdf: 'argon2id', ops: params.opsLimit, mem: params.memLimit, salt, nonce, ciphertext: secretbox(secret, nonce, key) }, verifier }
}

export function paramsOf (sealed: PasswordSealed): PwhashParams {
  return { opsLimit: sealed.ops, memLimit: sealed.mem }
}

/** Throws DecryptionError if `key` is not the one the secret was sealed under. */
export function openWithPasswordKey (sealed: PasswordSealed, key: Uint8Array): Uint8Array {
  return secretboxOpen(sealed.ciphertext, sealed.nonce, key, 'Wrong password for the encrypted keys')
}

/** Whether `sealed` was made with less work than `params` asks for (the record is written again). */
export function weakerThan (sealed: { kdf: string, ops?: number, mem?: number }, params: PwhashParams): boolean {
  return sealed.kdf !== 'argon2id' || (sealed.ops ?? 0) < params.opsLimit || (sealed.mem ?? 0) < params.memLimit
}
