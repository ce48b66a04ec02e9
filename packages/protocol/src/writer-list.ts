/**
 * A mailbox's writer list: which senders its owner knows (friends, people it asked to be
 * friends, members of its conferences), signed by the owner and kept in the mailbox
 * itself as an item whose id starts with `allow.`. Holders apply the newest one: a
 * sender it does not name is a stranger, who may leave only friend requests
 * (STRANGER_KINDS), and only a few (STRANGER_LIMITS). A mailbox
 * without a list takes every registered sender, as before lists existed.
 *
 * One registered key could fill its share of anyone's mailbox (2,000 items) with
 * envelopes of any kind; the list keeps the room in a mailbox for the people its owner knows.
 *
 * The list names senders by a tag, not by key id: a 12-byte hash of the mailbox and the
 * sender's key id. A holder can tell whether a sender it sees is named, but the list alone
 * does not say who the owner's friends are, and tags of one sender differ per mailbox.
 */
import * as cborg from 'cborg'
import { z } from 'zod'
import { blake2b } from '@noble/hashes/blake2.js'
import { sign, verify, keyIdOf, type AccountKeys } from './crypto.js'
import { peekCbor } from './record.js'
import { InvalidSetItemError, MAX_SET_ITEM_BYTES, type SetItem } from './sets.js'
import { FRIEND_REQUEST_KIND } from './messages.js'

const WRITER_LIST_DOMAIN = 'conf-chat:mailbox-writers:1'
const TAG_DOMAIN = 'conf-chat:mailbox-writer-tag:1'

/** The ids of writer-list items start with this; no envelope id does. */
export const WRITER_LIST_ID_PREFIX = 'allow.'

/** Bytes of one sender's tag in a list. */
export const WRITER_TAG_BYTES = 12

/** Most senders a list names: their tags fit in one set item with room to spare. */
export const MAX_LISTED_WRITERS = 4000

/**
 * What a sender the owner's list does not name may leave in the mailbox (see
 * `strangerMay` for which kinds): at most `items` (and `bytes`) at once and `perDay` a day
 * per sender, and `perSet` from all strangers together, so a flood of new accounts
 * cannot take the room of the people the owner knows: 200 items are 2 % of a mailbox.
 */
export const STRANGER_LIMITS = { items: 20, bytes: 512 * 1024, perDay: 50, perSet: 200 } as const

/**
 * The kinds a stranger may leave: a friend request, nothing else. (Conference members
 * who do not know each other yet write with the conference owner's writer key, which the
 * list names for each of the owner's friends: sealed-envelope.ts.)
 */
export const STRANGER_KINDS: readonly string[] = [FRIEND_REQUEST_KIND]

const bytes = z.custom<Uint8Array>(v => v instanceof Uint8Array, 'expected bytes')
const time = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER)

const signedListSchema = z.object({
  v: z.literal(1),
  signPublic: bytes.refine(b => b.length === 32),
  body: bytes,
  sig: bytes.refine(b => b.length === 64)
}).strict()

const listBodySchema = z.object({
  /** When the owner signed it (ms since epoch): the newest list applies. */
  at: time,
  /** The senders' tags, WRITER_TAG_BYTES each, one after another. */
  tags: bytes.refine(b => b.length % WRITER_TAG_BYTES === 0 && b.length <= MAX_LISTED_WRITERS * WRITER_TAG_BYTES)
}).strict()

/** A verified writer list of one mailbox. */
export interface WriterList {
  /** When its owner signed it. */
  at: number
  /** Whether the list names the sender with key id `writerKeyId` (the owner always counts as named). */
  names: (writerKeyId: string) => boolean
  /** How many senders it names. */
  size: number
}

export function isWriterListId (id: string): boolean {
  return id.startsWith(WRITER_LIST_ID_PREFIX)
}

/** The tag of the sender `writerKeyId` in the list of the mailbox of `mailboxKeyId`. */
export function writerTag (mailboxKeyId: string, writerKeyId: string): Uint8Array {
  return blake2b.create({ dkLen: WRITER_TAG_BYTES }).update(cborg.encode([TAG_DOMAIN, mailboxKeyId, writerKeyId])).digest()
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')

/**
 * The owner's list naming the senders `writerKeyIds` (at most MAX_LISTED_WRITERS; more
 * throw), as an item of its own mailbox. Its time is its id's and the item's, so it
 * expires with the mailbox's items and cannot be made to look newer.
 */
export function createWriterListItem (keys: Pick<AccountKeys, 'signPublic' | 'signSecret'>, writerKeyIds: Iterable<string>, now = Date.now()): SetItem {
  const mailbox = keyIdOf(keys.signPublic)
  const ids = [...new Set(writerKeyIds)]
  if (ids.length > MAX_LISTED_WRITERS) throw new RangeError(`a writer list names at most ${MAX_LISTED_WRITERS} senders`)
  const tags = new Uint8Array(ids.length * WRITER_TAG_BYTES)
  ids.forEach((id, i) => { tags.set(writerTag(mailbox, id), i * WRITER_TAG_BYTES) })
  const body = cborg.encode({ at: now, tags })
  const sig = sign(cborg.encode([WRITER_LIST_DOMAIN, mailbox, body]), keys.signSecret)
  return { id: writerListId(now), data: cborg.encode({ v: 1, signPublic: keys.signPublic, body, sig }), addedAt: now }
}

export function writerListId (at: number): string {
  return `${WRITER_LIST_ID_PREFIX}${at.toString(36).padStart(9, '0')}`
}

/** When a list was signed, read from its id (0 for an id that is no list's). */
export function writerListTime (id: string): number {
  const at = parseInt(id.slice(WRITER_LIST_ID_PREFIX.length), 36)
  return Number.isSafeInteger(at) && at > 0 ? at : 0
}

/**
 * Decode and verify a writer list item of the mailbox whose key id is `mailboxKeyId`:
 * signed by that mailbox's owner, under the id and time it signed. Throws InvalidSetItemError.
 */
export function decodeWriterListItem (mailboxKeyId: string, item: SetItem): WriterList {
  if (item.data.length > MAX_SET_ITEM_BYTES) throw new InvalidSetItemError('writer list too large')
  const outer = signedListSchema.safeParse(peekCbor(item.data))
  if (!outer.success) throw new InvalidSetItemError('malformed writer list')
  if (keyIdOf(outer.data.signPublic) !== mailboxKeyId) throw new InvalidSetItemError('writer list not signed by the mailbox owner')
  if (!verify(outer.data.sig, cborg.encode([WRITER_LIST_DOMAIN, mailboxKeyId, outer.data.body]), outer.data.signPublic)) {
    throw new InvalidSetItemError('bad writer list signature')
  }
  const parsed = listBodySchema.safeParse(peekCbor(outer.data.body))
  if (!parsed.success) throw new InvalidSetItemError('malformed writer list')
  const { at, tags } = parsed.data
  if (item.id !== writerListId(at) || item.addedAt !== at) throw new InvalidSetItemError('writer list id or time is not the one its owner signed')
  const named = new Set<string>()
  for (let i = 0; i < tags.length; i += WRITER_TAG_BYTES) named.add(hex(tags.subarray(i, i + WRITER_TAG_BYTES)))
  return {
    at,
    names: writer => writer === mailboxKeyId || named.has(hex(writerTag(mailboxKeyId, writer))),
    size: named.size
  }
}

/** The signer of a writer list item (its mailbox's owner), read without checking it; undefined if it is none. */
export function writerListSignerOf (item: SetItem): string | undefined {
  const signPublic = (peekCbor(item.data) as { signPublic?: unknown } | undefined)?.signPublic
  return signPublic instanceof Uint8Array && signPublic.length === 32 ? keyIdOf(signPublic) : undefined
}
