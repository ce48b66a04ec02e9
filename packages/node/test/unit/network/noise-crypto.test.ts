/** Noise's X25519 through JWK keys: the same keys and shared secrets as noise's own crypto, whichever side uses which. */
import { describe, it, expect } from 'vitest'
import { randomBytes } from 'node:crypto'
import { defaultCrypto } from '@chainsafe/libp2p-noise/crypto'
import { Uint8ArrayList } from 'uint8arraylist'
import { fastNoiseCrypto } from '../../../src/network/noise-crypto.js'

const hex = (b: Uint8Array | Uint8ArrayList): string => Buffer.from(b.subarray()).toString('hex')

describe('fastNoiseCrypto', () => {
  it('derives the public key noise derives from a seed', () => {
    for (let i = 0; i < 20; i++) {
      const seed = new Uint8Array(randomBytes(32))
      expect(hex(fastNoiseCrypto.generateX25519KeyPairFromSeed(seed).publicKey)).toBe(hex(defaultCrypto.generateX25519KeyPairFromSeed(seed).publicKey))
    }
  })

  it('agrees on the shared secret with a peer that uses noise\'s own crypto, both ways', () => {
    for (let i = 0; i < 20; i++) {
      const mine = fastNoiseCrypto.generateX25519KeyPair()
      const theirs = defaultCrypto.generateX25519KeyPair()
      const here = fastNoiseCrypto.generateX25519SharedKey(mine.privateKey, theirs.publicKey)
      expect(here).toHaveLength(32)
      expect(hex(here)).toBe(hex(defaultCrypto.generateX25519SharedKey(theirs.privateKey, mine.publicKey)))
      expect(hex(here)).toBe(hex(defaultCrypto.generateX25519SharedKey(mine.privateKey, theirs.publicKey)))
      // the same private key array again (the static key): the kept key object gives the same
      expect(hex(fastNoiseCrypto.generateX25519SharedKey(mine.privateKey, theirs.publicKey))).toBe(hex(here))
    }
  })

  it('takes keys as lists of chunks, as noise sometimes passes them', () => {
    const a = fastNoiseCrypto.generateX25519KeyPair()
    const b = fastNoiseCrypto.generateX25519KeyPair()
    const split = (k: Uint8Array): Uint8ArrayList => new Uint8ArrayList(k.subarray(0, 7), k.subarray(7))
    expect(hex(fastNoiseCrypto.generateX25519SharedKey(split(a.privateKey), split(b.publicKey))))
      .toBe(hex(fastNoiseCrypto.generateX25519SharedKey(b.privateKey, a.publicKey)))
  })

  it('refuses a low-order public key, as noise\'s own crypto does', () => {
    const a = fastNoiseCrypto.generateX25519KeyPair()
    expect(() => defaultCrypto.generateX25519SharedKey(a.privateKey, new Uint8Array(32))).toThrow()
    expect(() => fastNoiseCrypto.generateX25519SharedKey(a.privateKey, new Uint8Array(32))).toThrow()
  })
})
