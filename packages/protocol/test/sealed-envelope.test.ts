/**
 * Sealed envelopes: what a mailbox's holders see of an envelope between people who know
 * each other (neither sender nor kind), what they check (the pair key's signature, the
 * mailbox, the id and time), and that only the recipient opens one, to the very envelope.
 */
import { describe, it, expect } from 'vitest'
import * as cborg from 'cborg'
import {
  sealEnvelope, decodeSealedEnvelopeItem, openSealedEnvelope, isSealedEnvelopeItem, mailboxPairKeys, mailboxPairKeyId,
  createEnvelope, createWriterListItem, mailboxSetKey, mailboxSetRules, mailboxWriterOf, validateMailboxSetItem, generateAccountKeys,
  keyIdOf, sign, conferenceWriterSeed, conferenceWriterKeyId, sealStrangerEnvelope, isSealedStrangerItem, checkStrangerItemWork, InvalidSetItemError, DM_KIND, FRIEND_REQUEST_KIND, CONF_MESSAGE_KIND,
  MAX_SET_ITEM_BYTES, type AccountKeys
} from '../src/index.js'

const alice = generateAccountKeys()
const bob = generateAccountKeys()
const carol = generateAccountKeys()
const idOf = (k: AccountKeys): string => keyIdOf(k.signPublic)
const to = (keys: AccountKeys, username: string): { username: string, keyId: string, boxPublic: Uint8Array } =>
  ({ username, keyId: idOf(keys), boxPublic: keys.boxPublic })
const dm = (text: string, at = 1_000): ReturnType<typeof createEnvelope> =>
  createEnvelope(DM_KIND, { text }, { username: 'alice', keys: alice }, to(bob, 'bob'), at)

describe('sealed envelopes', () => {
  it('show holders neither the sender nor the kind, only a key both sides derive, and open to the envelope sealed', () => {
    const envelope = dm('meet at noon')
    const item = sealEnvelope(envelope, alice, bob.boxPublic)!
    expect(isSealedEnvelopeItem(item)).toBe(true)
    expect([item.id, item.addedAt]).toEqual([envelope.id, envelope.sentAt])
    // long secrets appear nowhere in the bytes; the short names (the 2-byte kind turned up by
    // chance in random ciphertext about once in 160 items) are no field's value
    const visible = Buffer.from(item.data)
    for (const secret of [alice.signPublic, Buffer.from('meet at noon')]) {
      expect(visible.includes(Buffer.from(secret))).toBe(false)
    }
    const values = Object.values(cborg.decode(item.data) as Record<string, unknown>)
    for (const name of ['alice', DM_KIND]) expect(values).not.toContain(name)
    // the holder's view: the mailbox, the id, the time and the pair key; it checks, it does not open
    const seen = decodeSealedEnvelopeItem(idOf(bob), item)
    expect(Object.keys(seen).sort()).toEqual(['id', 'sealed', 'sentAt', 'sig', 'to', 'v', 'writer'])
    // bob derives alice's pair key from his own secret: his list can name it
    expect(keyIdOf(seen.writer)).toBe(mailboxPairKeyId(bob, alice.boxPublic, idOf(alice), idOf(bob)))
    expect(mailboxWriterOf(item)).toBe(keyIdOf(seen.writer))
    // ... and it differs from alice's key, and from her pair key into another mailbox
    expect(keyIdOf(seen.writer)).not.toBe(idOf(alice))
    expect(keyIdOf(seen.writer)).not.toBe(mailboxPairKeyId(carol, alice.boxPublic, idOf(alice), idOf(carol)))
    expect(openSealedEnvelope(seen, bob)).toEqual(envelope)
    expect(() => openSealedEnvelope(seen, carol)).toThrow()
  })

  it('go under a conference owner\'s writer key that the owner hands to members and the mailbox\'s owner derives alone', () => {
    // carol owns a conference with alice and bob; she gives alice the seed of her writer key into bob's mailbox
    const seed = conferenceWriterSeed(carol, bob.boxPublic, idOf(carol), idOf(bob))
    const envelope = createEnvelope(CONF_MESSAGE_KIND, { text: 'hi bob' }, { username: 'alice', keys: alice }, to(bob, 'bob'), 5_000)
    const item = sealEnvelope(envelope, alice, bob.boxPublic, seed)!
    const seen = decodeSealedEnvelopeItem(idOf(bob), item)
    // bob names it from carol's box key alone, before he hears of the conference
    expect(keyIdOf(seen.writer)).toBe(conferenceWriterKeyId(bob, carol.boxPublic, idOf(carol), idOf(bob)))
    // it is neither alice's pair key nor her key, and carol's key into another mailbox differs
    expect(keyIdOf(seen.writer)).not.toBe(mailboxPairKeyId(bob, alice.boxPublic, idOf(alice), idOf(bob)))
    expect(keyIdOf(seen.writer)).not.toBe(idOf(alice))
    expect(keyIdOf(seen.writer)).not.toBe(conferenceWriterKeyId(alice, carol.boxPublic, idOf(carol), idOf(alice)))
    for (const secret of [alice.signPublic, carol.signPublic, Buffer.from('alice'), Buffer.from(CONF_MESSAGE_KIND)]) {
      expect(Buffer.from(item.data).includes(Buffer.from(secret))).toBe(false)
    }
    // bob opens it to alice's envelope, signed by alice
    expect(openSealedEnvelope(seen, bob)).toEqual(envelope)
    expect(() => sealEnvelope(envelope, alice, bob.boxPublic, seed.subarray(0, 31))).toThrow(/32 bytes/)
  })

  it('from a stranger: a friend request under the pair key with a stranger\'s work, which holders let in as a stranger\'s', async () => {
    const request = createEnvelope(FRIEND_REQUEST_KIND, { note: 'hi, it is alice' }, { username: 'alice', keys: alice }, to(bob, 'bob'), 7_000)
    const item = (await sealStrangerEnvelope(request, alice, bob.boxPublic, { bits: 2 }))!
    expect(isSealedStrangerItem(item)).toBe(true)
    for (const secret of [alice.signPublic, Buffer.from('alice'), Buffer.from(FRIEND_REQUEST_KIND)]) {
      expect(Buffer.from(item.data).includes(Buffer.from(secret))).toBe(false)
    }
    const seen = decodeSealedEnvelopeItem(idOf(bob), item)
    expect(keyIdOf(seen.writer)).toBe(mailboxPairKeyId(bob, alice.boxPublic, idOf(alice), idOf(bob)))
    await expect(checkStrangerItemWork(idOf(bob), item, 2)).resolves.toBeUndefined()
    // the work is signed with the rest: changed, the item is refused before any work is checked
    const outer = cborg.decode(item.data) as Record<string, unknown>
    const rewritten = { ...item, data: cborg.encode({ ...outer, work: (outer.work as number) + 1 }) }
    await expect(checkStrangerItemWork(idOf(bob), rewritten, 2)).rejects.toThrow(/signature/)
    // the holders' rule: a stranger's sealed item may come in, a sealed item without work may not
    const may = mailboxSetRules().writerList!.strangers.may
    expect([may(item), may(sealEnvelope(dm('hi'), alice, bob.boxPublic)!)]).toEqual([true, false])
    expect(openSealedEnvelope(seen, bob)).toEqual(request)
    // holders cannot tell a direct message in a stranger's item from a request: its
    // recipient's handlers refuse it from a non-friend, as they would in the open
    const sneaked = (await sealStrangerEnvelope(dm('buy now', 8_000), alice, bob.boxPublic, { bits: 0 }))!
    expect(may(sneaked)).toBe(true)
    expect(openSealedEnvelope(decodeSealedEnvelopeItem(idOf(bob), sneaked), bob).kind).toBe(DM_KIND)
  })

  it('from one stranger to one mailbox, sealed at once, share one search: one work, one check for holders', async () => {
    const sender = generateAccountKeys()
    const requests = Array.from({ length: 5 }, (_, i) => createEnvelope(FRIEND_REQUEST_KIND, {}, { username: 'sam', keys: sender }, to(bob, 'bob'), 9_000 + i))
    const items = await Promise.all(requests.map(async r => (await sealStrangerEnvelope(r, sender, bob.boxPublic, { bits: 3 }))!))
    expect(new Set(items.map(i => (cborg.decode(i.data) as { work: number }).work)).size).toBe(1)
  })

  it('are refused by holders when altered, in another mailbox, or under another id or time', () => {
    const item = sealEnvelope(dm('hi'), alice, bob.boxPublic)!
    const outer = cborg.decode(item.data) as Record<string, unknown>
    const altered = { ...item, data: cborg.encode({ ...outer, sealed: new Uint8Array(80) }) }
    expect(() => decodeSealedEnvelopeItem(idOf(bob), altered)).toThrow(/signature/)
    // the recipient skips the outer signature (its holders checked it) but not the rest:
    // the envelope inside must open and be signed by its sender
    const resigned = { ...item, data: cborg.encode({ ...outer, sig: new Uint8Array(64) }) }
    expect(openSealedEnvelope(decodeSealedEnvelopeItem(idOf(bob), resigned, { signature: false }), bob).id).toBe(item.id)
    expect(() => openSealedEnvelope(decodeSealedEnvelopeItem(idOf(bob), altered, { signature: false }), bob)).toThrow()
    expect(() => decodeSealedEnvelopeItem(idOf(carol), item, { signature: false })).toThrow(/another mailbox/)
    expect(() => decodeSealedEnvelopeItem(idOf(carol), item)).toThrow(/another mailbox/)
    expect(() => decodeSealedEnvelopeItem(idOf(bob), { ...item, addedAt: item.addedAt + 1 })).toThrow(/time/)
    expect(() => decodeSealedEnvelopeItem(idOf(bob), { ...item, id: dm('other', 2_000).id })).toThrow(/id/)
    // through the mailbox rules: the same refusals, as invalid items
    expect(() => validateMailboxSetItem(mailboxSetKey(idOf(bob)), altered)).toThrow(InvalidSetItemError)
    expect(() => validateMailboxSetItem(mailboxSetKey(idOf(bob)), item)).not.toThrow()
  })

  it('are opened only to an envelope under the id, time and recipient they show', () => {
    // a pair key's holder (bob could, alice could) wraps another envelope under this item's id: refused on opening
    const pair = mailboxPairKeys(alice, bob.boxPublic, idOf(alice), idOf(bob))
    const first = sealEnvelope(dm('first', 1_000), alice, bob.boxPublic)!
    const inner = sealEnvelope(dm('second', 2_000), alice, bob.boxPublic)!
    const { sealed } = cborg.decode(inner.data) as { sealed: Uint8Array }
    const head = cborg.decode(first.data) as Record<string, unknown>
    const swapped = resign({ ...head, sealed }, pair.signSecret)
    const seen = decodeSealedEnvelopeItem(idOf(bob), { ...first, data: swapped })
    expect(() => openSealedEnvelope(seen, bob)).toThrow(/not the envelope inside/)
  })

  it('are never what a stranger may leave without a stranger\'s work, and need the owner\'s list to be stored at all without it', async () => {
    const rules = mailboxSetRules().writerList!
    const sealed = sealEnvelope(createEnvelope(FRIEND_REQUEST_KIND, { note: 'hi' }, { username: 'alice', keys: alice }, to(bob, 'bob')), alice, bob.boxPublic)!
    const open = createEnvelope(FRIEND_REQUEST_KIND, { note: 'hi' }, { username: 'alice', keys: alice }, to(bob, 'bob'))
    expect(rules.strangers.may(sealed)).toBe(false)
    expect(rules.onlyListed?.(sealed)).toBe(true)
    expect(rules.onlyListed?.({ id: open.id, data: cborg.encode(open), addedAt: open.sentAt })).toBe(false)
    // with a stranger's work it may come into a mailbox without a list too, as anyone's may
    expect(rules.onlyListed?.((await sealStrangerEnvelope(open, alice, bob.boxPublic, { bits: 0 }))!)).toBe(false)
    // bob's list naming alice's pair key lets holders tell her sealed items from anyone's
    const list = rules.decode(mailboxSetKey(idOf(bob)), createWriterListItem(bob, [mailboxPairKeyId(bob, alice.boxPublic, idOf(alice), idOf(bob))], 5_000))
    expect(list.names(mailboxWriterOf(sealed)!)).toBe(true)
    expect(list.names(mailboxWriterOf(sealEnvelope(createEnvelope(DM_KIND, { text: 'x' }, { username: 'carol', keys: carol }, to(bob, 'bob')), carol, bob.boxPublic)!)!)).toBe(false)
  })

  it('are not made when the envelope would not fit a set item sealed (it then goes as it is)', () => {
    const big = createEnvelope(DM_KIND, { text: 'x'.repeat(MAX_SET_ITEM_BYTES - 300) }, { username: 'alice', keys: alice }, to(bob, 'bob'))
    expect(sealEnvelope(big, alice, bob.boxPublic)).toBeUndefined()
  })
})

/** A sealed envelope's fields signed again with `signSecret` (the pair key, which either side can derive). */
function resign (fields: Record<string, unknown>, signSecret: Uint8Array): Uint8Array {
  const f = fields as { v: number, id: string, to: string, sentAt: number, writer: Uint8Array, sealed: Uint8Array }
  const sig = sign(cborg.encode(['conf-chat:sealed-envelope:1', f.v, f.id, f.to, f.sentAt, f.writer, f.sealed]), signSecret)
  return cborg.encode({ ...fields, sig })
}
