import { describe, it, expect } from 'vitest'
import {
  generateAccountKeys, keyIdOf, createEnvelope, encodeEnvelope, mailboxSetKey, validateMailboxItem,
  ownerLocalKey, encryptLocal, decryptLocal, sealForOwner, openForOwner, conversationId, checkMessageText, checkFriendNote,
  historyEntrySchema, privateStateSchema, emptyPrivateState, DM_KIND, MAX_MESSAGE_CHARS, type Envelope
} from '../src/index.js'

const alice = generateAccountKeys()
const bob = generateAccountKeys()
const bobProfile = { username: 'bob', keyId: keyIdOf(bob.signPublic), boxPublic: bob.boxPublic }
const carolKeyId = keyIdOf(generateAccountKeys().signPublic)

const envelope = (): Envelope => createEnvelope(DM_KIND, { text: 'hi' }, { username: 'alice', keys: alice }, bobProfile)
const item = (e: Envelope, id = e.id): { id: string, data: Uint8Array, addedAt: number } => ({ id, data: encodeEnvelope(e), addedAt: e.sentAt })

describe('mailbox items', () => {
  it('accepts a signed envelope addressed to the mailbox, under its own id', () => {
    const e = envelope()
    expect(validateMailboxItem(mailboxSetKey(bobProfile.keyId), item(e)).id).toBe(e.id)
  })

  it('refuses an envelope for another mailbox, under another id or time, with a changed body, or no envelope at all', () => {
    const e = envelope()
    expect(() => validateMailboxItem(mailboxSetKey(carolKeyId), item(e))).toThrow(/another mailbox/)
    expect(() => validateMailboxItem(mailboxSetKey(bobProfile.keyId), item(e, 'some-other-id'))).toThrow(/not the envelope id/)
    // stored as of another time than the one its sender signed: an old envelope made to look new
    expect(() => validateMailboxItem(mailboxSetKey(bobProfile.keyId), { ...item(e), addedAt: e.sentAt + 60_000 })).toThrow(/time its sender signed/)
    const tampered = { ...e, body: Uint8Array.from(e.body, (b, i) => i === 0 ? b ^ 1 : b) }
    expect(() => validateMailboxItem(mailboxSetKey(bobProfile.keyId), item(tampered))).toThrow(/bad envelope signature/)
    expect(() => validateMailboxItem(mailboxSetKey(bobProfile.keyId), { id: e.id, data: new Uint8Array([1, 2, 3]), addedAt: Date.now() }))
      .toThrow(expect.objectContaining({ name: 'InvalidSetItemError' }))
  })
})

describe('owner-only data', () => {
  const entry = { id: envelope().id, from: 'alice', to: 'bob', text: 'secret words', sentAt: Date.now() }

  it('encrypts local entries so that only the owner opens them', () => {
    const data = encryptLocal(entry, ownerLocalKey(alice))
    expect(Buffer.from(data).includes('secret words')).toBe(false)
    expect(decryptLocal(data, ownerLocalKey(alice), historyEntrySchema)).toEqual(entry)
    expect(() => decryptLocal(data, ownerLocalKey(bob), historyEntrySchema)).toThrow(expect.objectContaining({ name: 'DecryptionError' }))
    // one bit changed: refused, not misread
    const changed = Uint8Array.from(data, (b, i) => i === data.length - 1 ? b ^ 1 : b)
    expect(() => decryptLocal(changed, ownerLocalKey(alice), historyEntrySchema)).toThrow(expect.objectContaining({ name: 'DecryptionError' }))
  })

  it('seals the private state to its owner and keeps fields it does not know', () => {
    const state = { ...emptyPrivateState(), conferences: [{ id: 'c1' }], addedLater: { x: 1 } }
    const sealed = sealForOwner(state, alice)
    expect(openForOwner(sealed, alice, privateStateSchema)).toEqual(state)
    expect(() => openForOwner(sealed, bob, privateStateSchema)).toThrow(expect.objectContaining({ name: 'DecryptionError' }))
  })

  it('names a conversation so that only its owner can tell with whom', () => {
    expect(conversationId(alice, bobProfile.keyId)).toBe(conversationId(alice, bobProfile.keyId))
    expect(conversationId(alice, bobProfile.keyId)).not.toBe(conversationId(alice, carolKeyId))
    expect(conversationId(alice, bobProfile.keyId)).not.toBe(conversationId(bob, bobProfile.keyId))
    expect(conversationId(alice, bobProfile.keyId)).toMatch(/^[0-9a-f]{32}$/)
  })
})

describe('input checks', () => {
  it('takes messages of 1 to MAX_MESSAGE_CHARS characters, not blank', () => {
    expect(checkMessageText('x'.repeat(MAX_MESSAGE_CHARS))).toHaveLength(MAX_MESSAGE_CHARS)
    expect(() => checkMessageText('x'.repeat(MAX_MESSAGE_CHARS + 1))).toThrow(/too long/)
    expect(() => checkMessageText(' \n ')).toThrow(/empty/)
  })

  it('trims notes and drops empty ones', () => {
    expect(checkFriendNote('  hello ')).toBe('hello')
    expect(checkFriendNote('   ')).toBeUndefined()
    expect(() => checkFriendNote('n'.repeat(201))).toThrow(/note too long/)
  })
})
