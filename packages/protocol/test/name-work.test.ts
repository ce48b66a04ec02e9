/** A name's proof of work: bound to the name and the key, found by trying, checked in one try. */
import { describe, it, expect } from 'vitest'
import {
  doNameWork, checkNameWork, doStrangerWork, checkStrangerWork, generateAccountKeys, createSignedRecord, encodeSignedRecord, verifyRecordValue, checkUpdate,
  userKey, nameClaimants, DEFAULT_NAME_WORK_BITS, type AccountPayload
} from '../src/index.js'
import { accountPayload as withWork } from './fixtures.js'

/** An account payload without work: a squatter's, or one made before names cost work. */
function accountPayload (username: string, extra: Partial<AccountPayload> = {}): AccountPayload {
  const { work, ...payload } = withWork(username, extra)
  return extra.work != null ? { ...payload, work } : payload
}

const BITS = 4

describe('name work', () => {
  it('is found by trying and checked in one try; it proves nothing for another name or another key', async () => {
    const alice = generateAccountKeys()
    const { work, tries } = await doNameWork('alice', alice.signPublic, { bits: BITS })
    expect(tries).toBeGreaterThan(0)
    expect(checkNameWork('alice', alice.signPublic, work, BITS)).toBe(true)
    // the same number for another name, or for the same name under another key, is (almost always) no proof
    const other = generateAccountKeys()
    const misses = [checkNameWork('alicf', alice.signPublic, work, 12), checkNameWork('alice', other.signPublic, work, 12)]
    expect(misses).toEqual([false, false])
    expect(checkNameWork('alice', alice.signPublic, -1, 0)).toBe(false)
    expect(checkNameWork('alice', alice.signPublic, 1.5, 0)).toBe(false)
  })

  it('of a stranger is bound to the writer key and the mailbox in the same way', async () => {
    const writer = generateAccountKeys().signPublic
    const { work } = await doStrangerWork(writer, 'mailbox-a', { bits: BITS })
    expect(await checkStrangerWork(writer, 'mailbox-a', work, BITS)).toBe(true)
    const misses = await Promise.all([
      checkStrangerWork(writer, 'mailbox-b', work, 12),
      checkStrangerWork(generateAccountKeys().signPublic, 'mailbox-a', work, 12),
      checkStrangerWork(writer, 'mailbox-a', -1, 0)
    ])
    expect(misses).toEqual([false, false, false])
  })

  it('costs about 2^bits tries: the mean of many searches is near it', async () => {
    const keys = generateAccountKeys()
    let tries = 0
    const searches = 24
    for (let i = 0; i < searches; i++) tries += (await doNameWork(`n${i}`, keys.signPublic, { bits: 3, lanes: 1 })).tries
    const mean = tries / searches
    // geometric with mean 8: the mean of 24 lies within 3..16 far beyond any real chance
    expect(mean).toBeGreaterThan(3)
    expect(mean).toBeLessThan(16)
    expect(DEFAULT_NAME_WORK_BITS).toBeGreaterThanOrEqual(7)
  })

  it("a holder takes a new claim of a name only with its work; the owner's update of an old record without it still goes", () => {
    const squatter = generateAccountKeys()
    const key = userKey('alice')
    const unworked = verifyRecordValue(key, encodeSignedRecord(createSignedRecord(key, 1, accountPayload('alice'), squatter)))
    expect(() => { checkUpdate(undefined, unworked) }).toThrow(/needs its proof of work/)
    // a record made before names cost work, held already, may be updated by its owner
    const next = verifyRecordValue(key, encodeSignedRecord(createSignedRecord(key, 2, accountPayload('alice', { fullName: 'New' }), squatter)))
    expect(() => { checkUpdate(unworked, next) }).not.toThrow()
    // but not taken over by another key's record without work
    const other = generateAccountKeys()
    const takeover = verifyRecordValue(key, encodeSignedRecord(createSignedRecord(key, 1, accountPayload('alice'), other)))
    expect(() => { checkUpdate(unworked, takeover) }).toThrow()
  })

  it('a record whose work does not match its name and key is invalid everywhere', async () => {
    const keys = generateAccountKeys()
    const key = userKey('alice')
    // found with the network's bits (0 in the tests: any number the check accepts)
    const { work } = await doNameWork('alice', keys.signPublic)
    expect(() => verifyRecordValue(key, encodeSignedRecord(createSignedRecord(key, 1, accountPayload('alice', { work }), keys)))).not.toThrow()
    const forged: Partial<AccountPayload> = { work: 2 ** 40 }
    // with bits 0 every number passes; a bad one is refused only above 0 bits: check the rule directly
    expect(checkNameWork('alice', keys.signPublic, forged.work!, 16)).toBe(false)
  })

  it('a claim without work does not make a name contested while a claim with work exists', async () => {
    const owner = generateAccountKeys()
    const squatter = generateAccountKeys()
    const key = userKey('alice')
    const { work } = await doNameWork('alice', owner.signPublic)
    const worked = encodeSignedRecord(createSignedRecord(key, 1, accountPayload('alice', { work }), owner))
    const forged = encodeSignedRecord(createSignedRecord(key, 1, accountPayload('alice'), squatter))
    expect(nameClaimants(key, [worked, forged, forged])).toEqual([owner.signPublic])
    // without any worked claim, both unworked claims count (accounts made before names cost work)
    const old = encodeSignedRecord(createSignedRecord(key, 1, accountPayload('alice'), owner))
    expect(nameClaimants(key, [old, forged])).toHaveLength(2)
  })
})
