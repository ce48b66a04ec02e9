import { describe, it, expect, beforeAll } from 'vitest'
import sodium from 'libsodium-wrappers'
import {
  generateAccountKeys, sealTo, openSealed, sign, verify, secretbox, secretboxOpen,
  encryptWithPassword, decryptWithPassword, bytesEqual, sharedSigningKeys, DecryptionError, type AccountKeys
} from '../src/index.js'

// libsodium-wrappers (libsodium's WebAssembly build) is only a test dependency: the reference
// our calls into sodium-native must match byte for byte (the right functions, key formats and layouts)
beforeAll(async () => { await sodium.ready })

const recipient = generateAccountKeys()
const plaintext = new TextEncoder().encode('a direct message, sealed to its recipient')

function sodiumAccount (): AccountKeys {
  const s = sodium.crypto_sign_keypair()
  const b = sodium.crypto_box_keypair()
  return { signPublic: s.publicKey, signSecret: s.privateKey, boxPublic: b.publicKey, boxSecret: b.privateKey }
}

describe('account keys', () => {
  it('have libsodium\'s formats: its public keys derive from our secrets', () => {
    expect(recipient.signSecret.length).toBe(sodium.crypto_sign_SECRETKEYBYTES)
    const fromSeed = sodium.crypto_sign_seed_keypair(recipient.signSecret.subarray(0, 32))
    expect(fromSeed.privateKey).toEqual(recipient.signSecret)
    expect(fromSeed.publicKey).toEqual(recipient.signPublic)
    expect(sodium.crypto_scalarmult_base(recipient.boxSecret)).toEqual(recipient.boxPublic)
  })
})

describe('signatures', () => {
  const message = new TextEncoder().encode('a signed record')

  it('are Ed25519 as libsodium makes them, both ways', () => {
    const ours = sign(message, recipient.signSecret)
    expect(ours).toEqual(sodium.crypto_sign_detached(message, recipient.signSecret))
    expect(sodium.crypto_sign_verify_detached(ours, message, recipient.signPublic)).toBe(true)
    const theirs = sodiumAccount()
    expect(verify(sodium.crypto_sign_detached(message, theirs.signSecret), message, theirs.signPublic)).toBe(true)
    expect(sign(message, theirs.signSecret)).toEqual(sodium.crypto_sign_detached(message, theirs.signSecret))
  })

  it('fail for another key, another message, a flipped bit or malformed input, without throwing', () => {
    const signature = sign(message, recipient.signSecret)
    expect(verify(signature, message, generateAccountKeys().signPublic)).toBe(false)
    expect(verify(signature, new TextEncoder().encode('another record'), recipient.signPublic)).toBe(false)
    const flipped = signature.slice()
    flipped[10]! ^= 1
    expect(verify(flipped, message, recipient.signPublic)).toBe(false)
    expect(verify(signature.subarray(1), message, recipient.signPublic)).toBe(false)
    expect(verify(signature, message, recipient.signPublic.subarray(1))).toBe(false)
    expect(verify(signature, message, new Uint8Array(32).fill(0xff))).toBe(false)
  })
})

describe('sealed boxes', () => {
  it('are libsodium sealed boxes: crypto_box_seal_open opens what sealTo made, openSealed what crypto_box_seal made', () => {
    const ours = sealTo(plaintext, recipient.boxPublic)
    expect(ours.length).toBe(plaintext.length + sodium.crypto_box_SEALBYTES)
    expect(sodium.crypto_box_seal_open(ours, recipient.boxPublic, recipient.boxSecret)).toEqual(plaintext)
    const theirs = sodium.crypto_box_seal(plaintext, recipient.boxPublic)
    expect(openSealed(theirs, recipient)).toEqual(plaintext)
    const other = sodiumAccount()
    expect(sodium.crypto_box_seal_open(sealTo(plaintext, other.boxPublic), other.boxPublic, other.boxSecret)).toEqual(plaintext)
    expect(openSealed(sodium.crypto_box_seal(new Uint8Array(0), other.boxPublic), other)).toEqual(new Uint8Array(0))
  })

  it('use a fresh ephemeral key each time', () => {
    const a = sealTo(plaintext, recipient.boxPublic)
    const b = sealTo(plaintext, recipient.boxPublic)
    expect(bytesEqual(a.subarray(0, 32), b.subarray(0, 32))).toBe(false)
    expect(bytesEqual(a, b)).toBe(false)
  })

  it('cannot be opened by another key, after a flipped bit, truncated, or with a low-order ephemeral key', () => {
    const sealed = sealTo(plaintext, recipient.boxPublic)
    expect(() => openSealed(sealed, generateAccountKeys())).toThrow(DecryptionError)
    for (const i of [0, 40, sealed.length - 1]) {
      const bad = sealed.slice()
      bad[i]! ^= 1
      expect(() => openSealed(bad, recipient)).toThrow(DecryptionError)
    }
    expect(() => openSealed(sealed.subarray(0, 47), recipient)).toThrow(DecryptionError)
    const lowOrder = sealed.slice()
    lowOrder.fill(0, 0, 32) // the all-zero point: the shared secret would be zero
    expect(() => openSealed(lowOrder, recipient)).toThrow(DecryptionError)
  })
})

describe('secretbox', () => {
  const key = sodium.ready.then(() => sodium.randombytes_buf(32))

  it('is crypto_secretbox_easy, both ways, and refuses a wrong key', async () => {
    const k = await key
    const nonce = sodium.randombytes_buf(24)
    const ours = secretbox(plaintext, nonce, k)
    expect(ours).toEqual(sodium.crypto_secretbox_easy(plaintext, nonce, k))
    expect(secretboxOpen(sodium.crypto_secretbox_easy(plaintext, nonce, k), nonce, k, 'x')).toEqual(plaintext)
    expect(() => secretboxOpen(ours, nonce, new Uint8Array(32), 'the entry')).toThrow(/the entry/)
  })

  it('protects secrets with the password: right password opens, wrong one is a DecryptionError', async () => {
    const params = { N: 1 << 10, r: 8, p: 1 }
    const enc = await encryptWithPassword(recipient.boxSecret, 'correct horse', params)
    expect(await decryptWithPassword(enc, 'correct horse')).toEqual(recipient.boxSecret)
    await expect(decryptWithPassword(enc, 'wrong')).rejects.toThrow(DecryptionError)
  })
})

describe('shared signing keys', () => {
  it('are the same for both sides, libsodium\'s Ed25519 key of BLAKE2b(X25519 secret, context), and refuse a low-order key', () => {
    const a = sodiumAccount()
    const b = generateAccountKeys()
    const context = new TextEncoder().encode('a pair of accounts')
    const ours = sharedSigningKeys(b, a.boxPublic, context)
    expect(sharedSigningKeys(a, b.boxPublic, context)).toEqual(ours)
    const seed = sodium.crypto_generichash(32, context, sodium.crypto_scalarmult(a.boxSecret, b.boxPublic))
    const reference = sodium.crypto_sign_seed_keypair(seed)
    expect([ours.signPublic, ours.signSecret]).toEqual([reference.publicKey, reference.privateKey])
    expect(sharedSigningKeys(b, a.boxPublic, new TextEncoder().encode('another context')).signPublic).not.toEqual(ours.signPublic)
    expect(() => sharedSigningKeys(b, new Uint8Array(32), context)).toThrow(DecryptionError)
  })
})
