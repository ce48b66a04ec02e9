/** kad-dht's validators and selectors for our namespaces, called as kad-dht calls them. */
import { describe, it, expect } from 'vitest'
import { fromString as bytesFromString } from 'uint8arrays'
import { generateAccountKeys, userKey, MAX_RECORD_BYTES, NAMESPACES, createSignedRecord, encodeSignedRecord } from '@conf-chat/protocol'
import { recordValidators, recordSelectors } from '../../../src/network/records/index.js'
import { claim, presence, presenceKeyOf, presenceOf, signed } from './fixtures.js'

const alice = generateAccountKeys()
const mallory = generateAccountKeys()
const validators = recordValidators()
const selectors = recordSelectors()

/** What the validator for `key`'s namespace throws, as kad-dht would call it. */
function refusal (key: string, value: Uint8Array): unknown {
  const ns = key.split('/')[1]!
  try {
    validators[ns]!(bytesFromString(key), value)
  } catch (err) {
    return err
  }
  return undefined
}

describe('recordValidators', () => {
  it('has one validator and one selector per namespace', () => {
    expect(Object.keys(validators).sort()).toEqual(Object.keys(NAMESPACES).sort())
    expect(Object.keys(selectors).sort()).toEqual(Object.keys(NAMESPACES).sort())
  })

  it('accepts a record signed by its owner', () => {
    expect(refusal(userKey('alice'), claim(alice, 'alice'))).toBeUndefined()
    expect(refusal(presenceKeyOf(alice), presenceOf(alice, 1))).toBeUndefined()
  })

  it('refuses forged, oversized, malformed and wrong-namespace records', () => {
    const key = presenceKeyOf(alice)
    const good = createSignedRecord(key, 1, presence(), alice)
    const flipped = good.sig.slice()
    flipped[3]! ^= 0x01
    const bad: Array<[string, string, Uint8Array]> = [
      ['a bad signature', key, encodeSignedRecord({ ...good, sig: flipped })],
      ["alice's key signed by mallory", key, signed(key, 1, presence(), mallory)],
      ['an oversized record', key, signed(key, 1, presence({ peerId: 'x'.repeat(MAX_RECORD_BYTES) }), alice)],
      ['random bytes', key, new Uint8Array([0xde, 0xad, 0xbe, 0xef])],
      ['a presence record under a user key', userKey('alice'), presenceOf(alice, 1)],
      ['a name claim under a presence key', key, claim(alice, 'alice')],
      ['a claim whose username differs from its key', userKey('alice'), signed(userKey('alice'), 1, { ...presence(), type: 'account' }, alice)],
      ['a key outside our namespaces', '/cc-user/alice/extra', claim(alice, 'alice')]
    ]
    for (const [what, k, value] of bad) {
      expect({ what, refused: refusal(k, value) }).toMatchObject({ what, refused: { name: 'InvalidRecordError' } })
    }
  })
})

describe('recordSelectors', () => {
  it('picks the highest sequence number of an owned key and never an invalid value', () => {
    const key = presenceKeyOf(alice)
    const pick = selectors['cc-presence']!
    expect(pick(bytesFromString(key), [presenceOf(alice, 1), presenceOf(alice, 3), presenceOf(alice, 2)])).toBe(1)
    expect(pick(bytesFromString(key), [signed(key, 9, presence(), mallory), presenceOf(alice, 1)])).toBe(1)
  })

  it('gives a name to the owner most values hold', () => {
    const key = userKey('bob')
    const values = [claim(mallory, 'bob', 9), claim(alice, 'bob', 1), claim(alice, 'bob', 1)]
    expect(selectors['cc-user']!(bytesFromString(key), values)).toBe(1)
  })

  it('throws when no value is valid', () => {
    const key = presenceKeyOf(alice)
    expect(() => selectors['cc-presence']!(bytesFromString(key), [new Uint8Array([1]), presenceOf(mallory, 1)])).toThrow('no valid record')
  })
})
