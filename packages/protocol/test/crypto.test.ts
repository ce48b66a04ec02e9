import { describe, it, expect } from 'vitest'
import sodium from 'libsodium-wrappers'
import { generateAccountKeys, sealTo, openSealed, bytesEqual } from '../src/index.js'

const recipient = generateAccountKeys()
const plaintext = new TextEncoder().encode('a direct message, sealed to its recipient')

describe('sealed boxes', () => {
  it('are libsodium sealed boxes: crypto_box_seal_open opens what sealTo made, openSealed what crypto_box_seal made', async () => {
    await sodium.ready
    const ours = sealTo(plaintext, recipient.boxPublic)
    expect(ours.length).toBe(plaintext.length + sodium.crypto_box_SEALBYTES)
    expect(sodium.crypto_box_seal_open(ours, recipient.boxPublic, recipient.boxSecret)).toEqual(plaintext)
    const theirs = sodium.crypto_box_seal(plaintext, recipient.boxPublic)
    expect(openSealed(theirs, recipient)).toEqual(plaintext)
  })

  it('use a fresh ephemeral key each time', () => {
    const a = sealTo(plaintext, recipient.boxPublic)
    const b = sealTo(plaintext, recipient.boxPublic)
    expect(bytesEqual(a.subarray(0, 32), b.subarray(0, 32))).toBe(false)
    expect(bytesEqual(a, b)).toBe(false)
  })

  it('cannot be opened by another key or after a flipped bit', () => {
    const sealed = sealTo(plaintext, recipient.boxPublic)
    expect(() => openSealed(sealed, generateAccountKeys())).toThrow()
    for (const i of [0, 40, sealed.length - 1]) {
      const bad = sealed.slice()
      bad[i]! ^= 1
      expect(() => openSealed(bad, recipient)).toThrow()
    }
  })
})
