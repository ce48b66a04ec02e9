/** Argon2id's two keys from one password, and the rules of a new password. */
import { describe, it, expect } from 'vitest'
import {
  derivePasswordKeys, sealWithPassword, openWithPasswordKey, weakerThan, checkNewPassword, passwordStrength,
  PWHASH_BOUNDS, bytesEqual
} from '../src/index.js'

const CHEAP = { opsLimit: 1, memLimit: PWHASH_BOUNDS.memMin }
const salt = new Uint8Array(16).fill(1)

describe('password keys', () => {
  it('one Argon2id gives the verifier and the key; salt and parameters each change both', async () => {
    const a = await derivePasswordKeys('violet kettle harbour', salt, CHEAP)
    const again = await derivePasswordKeys('violet kettle harbour', salt, CHEAP)
    expect(again).toEqual(a)
    expect(a.verifier).toHaveLength(44)
    expect(Buffer.from(a.verifier, 'base64')).not.toEqual(Buffer.from(a.key))
    const otherSalt = await derivePasswordKeys('violet kettle harbour', new Uint8Array(16).fill(2), CHEAP)
    const moreWork = await derivePasswordKeys('violet kettle harbour', salt, { ...CHEAP, opsLimit: 2 })
    for (const other of [otherSalt, moreWork]) {
      expect(other.verifier).not.toBe(a.verifier)
      expect(bytesEqual(other.key, a.key)).toBe(false)
    }
  })

  it('a password typed in another Unicode form is the same password (NFKC)', async () => {
    const composed = await derivePasswordKeys('café crème brûlée', salt, CHEAP)
    const decomposed = await derivePasswordKeys('cafe\u0301 cre\u0300me bru\u0302le\u0301e', salt, CHEAP)
    expect(decomposed).toEqual(composed)
  })

  it('seals under a fresh salt; only the right password opens; weaker parameters are told apart', async () => {
    const secret = new Uint8Array([1, 2, 3])
    const { sealed, verifier } = await sealWithPassword(secret, 'violet kettle harbour', CHEAP)
    const other = await sealWithPassword(secret, 'violet kettle harbour', CHEAP)
    expect(bytesEqual(other.sealed.salt, sealed.salt)).toBe(false)
    const right = await derivePasswordKeys('violet kettle harbour', sealed.salt, CHEAP)
    expect(right.verifier).toBe(verifier)
    expect(openWithPasswordKey(sealed, right.key)).toEqual(secret)
    const wrong = await derivePasswordKeys('violet kettle harbouR', sealed.salt, CHEAP)
    expect(() => openWithPasswordKey(sealed, wrong.key)).toThrow(/Wrong password/)
    expect(weakerThan(sealed, CHEAP)).toBe(false)
    expect(weakerThan(sealed, { ...CHEAP, memLimit: CHEAP.memLimit * 2 })).toBe(true)
    expect(weakerThan({ kdf: 'scrypt' }, CHEAP)).toBe(true)
  })
})

describe('new passwords', () => {
  it('at least 12 characters, at most 1,024 bytes, and not guessable, with a reason', async () => {
    await expect(checkNewPassword('violet kett')).rejects.toThrow(/too short: at least 12 characters/)
    await expect(checkNewPassword('ü'.repeat(600))).rejects.toThrow(/too long: at most 1024 bytes/)
    for (const weak of ['password1234', 'qwertyuiop12', 'aaaaaaaaaaaaaaaa', '123456789012', 'iloveyou2020']) {
      await expect(checkNewPassword(weak), weak).rejects.toThrow(/too weak: .+/)
    }
    await checkNewPassword('violet kettle harbour')
    await checkNewPassword('Tr0ub4dour&3xyz')
  })

  it('counts the user\'s own name and username as known words', async () => {
    const alone = await passwordStrength('rosalindfairweather')
    const named = await passwordStrength('rosalindfairweather', ['rosalind', 'Rosalind Fairweather'])
    expect(named.guessesLog10).toBeLessThan(alone.guessesLog10)
    await expect(checkNewPassword('rosalindfairweather', ['rosalind', 'Rosalind Fairweather'])).rejects.toThrow(/too weak/)
  })

  it('checks many at once (one worker answers each by its id)', async () => {
    const verdicts = await Promise.all(['password1234', 'violet kettle harbour', 'qwertyuiop12', 'plum heron lantern 42'].map(async p => (await passwordStrength(p)).score >= 3))
    expect(verdicts).toEqual([false, true, false, true])
  })
})
