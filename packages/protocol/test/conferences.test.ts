import { describe, it, expect } from 'vitest'
import {
  conferenceIdOf, newConferenceLocalId, conferenceKey, isMemberAt, leftSince, currentMembers, mergeLeft, checkConferenceName,
  verifyConferenceRecord, verifyRecordValue, createSignedRecord, encodeSignedRecord, generateAccountKeys, keyIdOf,
  conferenceEntrySchema, confMessageBodySchema, CONFERENCE_ID_PATTERN, type ConferencePayload
} from '../src/index.js'

const alice = generateAccountKeys()
const bob = generateAccountKeys()
const aliceId = keyIdOf(alice.signPublic)
const bobId = keyIdOf(bob.signPublic)

function payload (extra: Partial<ConferencePayload> = {}): ConferencePayload {
  return {
    name: 'team',
    owner: 'alice',
    members: [
      { username: 'alice', keyId: aliceId, joinedAt: 10, signPublic: alice.signPublic, boxPublic: alice.boxPublic },
      { username: 'bob', keyId: bobId, joinedAt: 20, signPublic: bob.signPublic, boxPublic: bob.boxPublic }
    ],
    left: [],
    createdAt: 10,
    updatedAt: 10,
    ...extra
  }
}

describe('conference ids', () => {
  it('name the owner key and the local id, and look alike', () => {
    const local = newConferenceLocalId()
    const id = conferenceIdOf(aliceId, local)
    expect(id).toMatch(CONFERENCE_ID_PATTERN)
    expect(conferenceIdOf(aliceId, local)).toBe(id)
    expect(conferenceIdOf(bobId, local)).not.toBe(id)
    expect(conferenceIdOf(aliceId, newConferenceLocalId())).not.toBe(id)
  })
})

describe('the conference record', () => {
  const local = '0123456789abcdef'
  const key = conferenceKey(aliceId, local)

  it('is accepted when the owner signs it, and carried records are checked the same way', () => {
    const value = encodeSignedRecord(createSignedRecord(key, 1, payload(), alice))
    expect(verifyConferenceRecord({ owner: aliceId, local }, value).payload.members.map(m => m.username)).toEqual(['alice', 'bob'])
  })

  it('is refused when signed by anyone but the key its key names', () => {
    const value = encodeSignedRecord(createSignedRecord(key, 2, payload({ members: [] }), bob))
    expect(() => verifyRecordValue(key, value)).toThrow(/not signed by the key/)
    expect(() => verifyConferenceRecord({ owner: aliceId, local: 'fedcba9876543210' }, encodeSignedRecord(createSignedRecord(key, 1, payload(), alice))))
      .toThrow(/record is for key/)
  })

  it('is refused with a member twice or a key that is not the member\'s', () => {
    const twice = payload()
    twice.members.push({ ...twice.members[1]!, username: 'bob2' })
    expect(() => verifyRecordValue(key, encodeSignedRecord(createSignedRecord(key, 1, twice, alice)))).toThrow(/member twice/)
    const wrongKey = payload()
    wrongKey.members[1] = { ...wrongKey.members[1]!, signPublic: alice.signPublic }
    expect(() => verifyRecordValue(key, encodeSignedRecord(createSignedRecord(key, 1, wrongKey, alice)))).toThrow(/does not match its key id/)
  })
})

describe('membership rule', () => {
  const view = { members: [{ keyId: 'a', joinedAt: 10 }, { keyId: 'b', joinedAt: 20 }], left: [{ keyId: 'b', leftAt: 50 }] }

  it('counts a member until it left: a message sent before the leave still counts', () => {
    expect(isMemberAt(view, 'a', 1000)).toBe(true)
    expect(isMemberAt(view, 'b', 49)).toBe(true)
    expect(isMemberAt(view, 'b', 50)).toBe(false)
    expect(isMemberAt(view, 'b')).toBe(false)
    expect(isMemberAt(view, 'c', 30)).toBe(false)
    expect(leftSince(view, 'b')).toBe(50)
    expect(currentMembers(view).map(m => m.keyId)).toEqual(['a'])
  })

  it('ignores a leave from before the latest join (invited again)', () => {
    const again = { ...view, members: [{ keyId: 'a', joinedAt: 10 }, { keyId: 'b', joinedAt: 60 }] }
    expect(isMemberAt(again, 'b')).toBe(true)
    expect(leftSince(again, 'b')).toBeUndefined()
    expect(currentMembers(again).map(m => m.keyId)).toEqual(['a', 'b'])
  })

  it('merges leave lists without duplicates, oldest first', () => {
    const a = [{ keyId: 'b', leftAt: 50 }, { keyId: 'c', leftAt: 40 }]
    const b = [{ keyId: 'b', leftAt: 50 }, { keyId: 'b', leftAt: 70 }]
    expect(mergeLeft(a, b)).toEqual([{ keyId: 'c', leftAt: 40 }, { keyId: 'b', leftAt: 50 }, { keyId: 'b', leftAt: 70 }])
  })
})

describe('input and bodies', () => {
  it('checks conference names', () => {
    expect(checkConferenceName('  team  ')).toBe('team')
    expect(() => checkConferenceName(' ')).toThrow(/must not be empty/)
    expect(() => checkConferenceName('x'.repeat(101))).toThrow(/too long/)
    expect(() => checkConferenceName('two\nlines')).toThrow(/one line/)
  })

  it('refuses malformed bodies and entries', () => {
    const conf = { owner: aliceId, local: '0123456789abcdef' }
    expect(confMessageBodySchema.safeParse({ conf, mid: '00000000a-0123456789abcdef', text: 'hi' }).success).toBe(true)
    expect(confMessageBodySchema.safeParse({ conf, mid: '00000000a-0123456789abcdef', text: '' }).success).toBe(false)
    expect(confMessageBodySchema.safeParse({ conf: { ...conf, local: '../x' }, mid: '00000000a-0123456789abcdef', text: 'hi' }).success).toBe(false)
    expect(conferenceEntrySchema.safeParse({ id: 'conf-xyz' }).success).toBe(false)
  })
})
