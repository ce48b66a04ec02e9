/** A mailbox's writer list: signed by the mailbox's owner, naming senders by tags bound to that mailbox. */
import { describe, it, expect } from 'vitest'
import * as cborg from 'cborg'
import {
  createWriterListItem, decodeWriterListItem, writerTag, isWriterListId, mailboxSetRules, mailboxSetKey, mailboxWriterOf,
  validateMailboxSetItem, createEnvelope, mailboxItemOf, generateAccountKeys, keyIdOf, InvalidSetItemError,
  FRIEND_REQUEST_KIND, FRIEND_ACCEPT_KIND, CONF_MESSAGE_KIND, DM_KIND, MAX_LISTED_WRITERS, type AccountKeys
} from '../src/index.js'

const owner = generateAccountKeys()
const friend = generateAccountKeys()
const stranger = generateAccountKeys()
const ownerId = keyIdOf(owner.signPublic)
const profile = (keys: AccountKeys, username: string): { username: string, keyId: string, boxPublic: Uint8Array } =>
  ({ username, keyId: keyIdOf(keys.signPublic), boxPublic: keys.boxPublic })

describe('mailbox writer lists', () => {
  it('names the listed senders and the owner, nobody else, and is told apart from envelopes', () => {
    const item = createWriterListItem(owner, [keyIdOf(friend.signPublic)], 1_000)
    expect(isWriterListId(item.id)).toBe(true)
    const list = decodeWriterListItem(ownerId, item)
    expect(list.at).toBe(1_000)
    expect([list.names(keyIdOf(friend.signPublic)), list.names(ownerId), list.names(keyIdOf(stranger.signPublic))]).toEqual([true, true, false])
    // holders count it as the owner's item, and accept it in the owner's mailbox only
    expect(mailboxWriterOf(item)).toBe(ownerId)
    expect(() => validateMailboxSetItem(mailboxSetKey(ownerId), item)).not.toThrow()
    expect(() => validateMailboxSetItem(mailboxSetKey(keyIdOf(friend.signPublic)), item)).toThrow(InvalidSetItemError)
  })

  it('is refused when signed by another key, altered, or moved to another id or time', () => {
    const forged = createWriterListItem(stranger, [keyIdOf(stranger.signPublic)], 1_000)
    expect(() => decodeWriterListItem(ownerId, forged)).toThrow(/not signed by the mailbox owner/)
    const item = createWriterListItem(owner, [keyIdOf(friend.signPublic)], 1_000)
    const outer = cborg.decode(item.data) as { body: Uint8Array }
    const body = cborg.decode(outer.body) as { at: number, tags: Uint8Array }
    const altered = cborg.encode({ ...outer, body: cborg.encode({ ...body, tags: writerTag(ownerId, keyIdOf(stranger.signPublic)) }) })
    expect(() => decodeWriterListItem(ownerId, { ...item, data: altered })).toThrow(/signature/)
    // an old list cannot pass for a newer one
    expect(() => decodeWriterListItem(ownerId, { ...item, addedAt: 2_000 })).toThrow(/time/)
    expect(() => decodeWriterListItem(ownerId, { ...item, id: 'allow.00000zzzz' })).toThrow(/id/)
  })

  it("tags a sender differently in each mailbox, so lists do not show who is whose friend", () => {
    const sender = keyIdOf(friend.signPublic)
    expect(Buffer.from(writerTag(ownerId, sender)).equals(Buffer.from(writerTag(keyIdOf(stranger.signPublic), sender)))).toBe(false)
    expect(() => createWriterListItem(owner, Array.from({ length: MAX_LISTED_WRITERS + 1 }, (_, i) => `${i}`))).toThrow(RangeError)
  })

  it('lets strangers leave friend requests only: no conference envelopes, no direct messages (the rule holders apply)', () => {
    const strangers = mailboxSetRules().writerList!.strangers
    const to = profile(owner, 'owner')
    const from = { username: 'mallory', keys: stranger }
    const request = mailboxItemOf(createEnvelope(FRIEND_REQUEST_KIND, {}, from, to))
    const confMessage = mailboxItemOf(createEnvelope(CONF_MESSAGE_KIND, {}, from, to))
    const dm = mailboxItemOf(createEnvelope(DM_KIND, { text: 'hi' }, from, to))
    const accept = mailboxItemOf(createEnvelope(FRIEND_ACCEPT_KIND, {}, from, to))
    expect([strangers.may(request), strangers.may(confMessage), strangers.may(dm), strangers.may(accept)]).toEqual([true, false, false, false])
    expect(strangers.items).toBeLessThanOrEqual(strangers.perDay)
  })
})
