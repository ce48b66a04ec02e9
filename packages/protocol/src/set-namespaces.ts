/**
 * The set namespaces every peer serves: mailboxes (envelopes for one account, only its
 * owner removes and reads) and the user directory (each user's own signed entry, in 8
 * shards). What holders and readers check of each; the generic parts are in sets.ts.
 */
import * as cborg from 'cborg'
import { z } from 'zod'
import { sign, verify, keyIdOf, sha256, KEY_ID_PATTERN, type AccountKeys } from './crypto.js'
import { peekCbor } from './record.js'
import { decodeEnvelope, encodeEnvelope, type Envelope } from './envelope.js'
import { decodeSealedEnvelopeItem, isSealedEnvelopeItem, isSealedStrangerItem, sealedWriterOf, SEALED_ENVELOPE_VERSION, type SealedEnvelope } from './sealed-envelope.js'
import { MAX_FULL_NAME_CHARS, USERNAME_PATTERN } from './limits.js'
import {
  decodeWriterListItem, isWriterListId, writerListSignerOf, STRANGER_KINDS, STRANGER_LIMITS, WRITER_LIST_ID_PREFIX, type WriterList
} from './writer-list.js'
import {
  InvalidSetKeyError, InvalidSetItemError, ReadNotAuthorizedError, RemoveNotAuthorizedError,
  type SetItem, type SetNamespaceRules
} from './sets.js'

const DIRECTORY_DOMAIN = 'conf-chat:directory-entry:1'
const bytes = z.custom<Uint8Array>(v => v instanceof Uint8Array, 'expected bytes')
const time = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER)

// ---------------------------------------------------------------- mailboxes

export const MAILBOX_SET_NAMESPACE = 'cc-mailbox'

/** The mailbox of the account whose key id is `keyId`. */
export const mailboxSetKey = (keyId: string): string => `/${MAILBOX_SET_NAMESPACE}/${keyId}`

/**
 * A mailbox item is a well-formed, correctly signed envelope addressed to the mailbox's
 * owner, stored under its own id and its signed time, so a holder can neither forge one,
 * swap the data under an id, nor make it look newer. Throws InvalidSetItemError.
 */
export function validateMailboxItem (setKey: string, item: SetItem): Envelope {
  let envelope: Envelope
  try {
    envelope = decodeEnvelope(item.data)
  } catch (err: any) {
    throw new InvalidSetItemError(`not a valid envelope: ${String(err.message)}`)
  }
  if (setKey !== mailboxSetKey(envelope.toKeyId)) throw new InvalidSetItemError('envelope is addressed to another mailbox')
  if (item.id !== envelope.id) throw new InvalidSetItemError('item id is not the envelope id')
  if (item.addedAt !== envelope.sentAt) throw new InvalidSetItemError('item time is not the time its sender signed')
  return envelope
}

/**
 * The mailbox item of an envelope: under its id, and stored as of the time its sender
 * signed (`sentAt`), so that nobody can make an old envelope look new: it expires a
 * lifetime after it was sent, wherever it is stored again.
 */
export function mailboxItemOf (envelope: Envelope): SetItem {
  return { id: envelope.id, data: encodeEnvelope(envelope), addedAt: envelope.sentAt }
}

/** The key id of the owner of the mailbox `setKey`. */
export const mailboxOwnerOf = (setKey: string): string => setKey.split('/')[2] ?? ''

/**
 * A mailbox item of any kind: an envelope addressed to the owner, one sealed to the owner
 * (sealed-envelope.ts), or the owner's writer list (writer-list.ts). Throws InvalidSetItemError.
 */
export function validateMailboxSetItem (setKey: string, item: SetItem): Envelope | SealedEnvelope | WriterList {
  if (isWriterListId(item.id)) return decodeWriterListItem(mailboxOwnerOf(setKey), item)
  if (!isSealedEnvelopeItem(item)) return validateMailboxItem(setKey, item)
  try {
    return decodeSealedEnvelopeItem(mailboxOwnerOf(setKey), item)
  } catch (err: any) {
    throw new InvalidSetItemError(`not a valid sealed envelope: ${String(err.message)}`)
  }
}

/**
 * The key id of an item's signer (an envelope's sender, a sealed envelope's pair key, a
 * writer list's owner), read without checking the signature (for an item a holder
 * checked when it came); undefined if the data is none of them.
 */
export function mailboxWriterOf (item: SetItem): string | undefined {
  if (isWriterListId(item.id)) return writerListSignerOf(item)
  const raw = peekCbor(item.data) as { v?: unknown, fromKey?: unknown } | undefined
  if (raw?.v !== 1) return sealedWriterOf(item)
  return raw.fromKey instanceof Uint8Array && raw.fromKey.length === 32 ? keyIdOf(raw.fromKey) : undefined
}

/**
 * Whether a (checked) mailbox item is one a stranger may leave: an envelope that shows a
 * kind strangers may leave (STRANGER_KINDS), or a stranger's sealed item (its work is
 * checked by the holder's authorizeItem; its kind is hidden: the recipient's handlers
 * take nothing but a friend request from someone who is not a friend, as for an open one).
 */
function strangerMay (item: SetItem): boolean {
  const raw = peekCbor(item.data) as { v?: unknown, kind?: unknown } | undefined
  if (raw?.v === SEALED_ENVELOPE_VERSION) return isSealedStrangerItem(item)
  return raw?.v === 1 && typeof raw.kind === 'string' && STRANGER_KINDS.includes(raw.kind)
}

/**
 * Mailboxes: anyone may add a signed envelope for the owner, and whom the owner's list
 * names a sealed one; only the owner may remove.
 */
export function mailboxSetRules (options: { validateItem?: (setKey: string, item: SetItem) => void } = {}): SetNamespaceRules {
  return {
    checkKey: parts => {
      if (parts.length !== 1 || !KEY_ID_PATTERN.test(parts[0] ?? '')) throw new InvalidSetKeyError('a mailbox key is /cc-mailbox/<keyId>')
    },
    validateItem: options.validateItem ?? ((setKey, item) => { validateMailboxSetItem(setKey, item) }),
    authorizeRemove: (setKey, _ids, auth) => {
      if (keyIdOf(auth.pub) !== mailboxOwnerOf(setKey)) throw new RemoveNotAuthorizedError('only the mailbox owner may remove from it')
    },
    // envelopes show their sender, kind and time, sealed ones a pair's pseudonym: only the owner lists them
    authorizeRead: (setKey, pub) => {
      if (keyIdOf(pub) !== mailboxOwnerOf(setKey)) throw new ReadNotAuthorizedError('only the mailbox owner may read it')
    },
    writerOf: mailboxWriterOf,
    writerList: {
      listPrefix: WRITER_LIST_ID_PREFIX,
      decode: (setKey, item) => decodeWriterListItem(mailboxOwnerOf(setKey), item),
      strangers: { ...STRANGER_LIMITS, may: strangerMay },
      // a pair key is nobody's account: only the owner's list can vouch for it, or a stranger's work
      onlyListed: item => isSealedEnvelopeItem(item) && !isSealedStrangerItem(item)
    }
  }
}

// ---------------------------------------------------------------- directory

export const DIRECTORY_SET_NAMESPACE = 'cc-dir'

/** Most entries one signing key has in one directory shard. */
export const DIRECTORY_ENTRIES_PER_KEY = 4

/** Directory entries outlive mailbox items: a user is listed for years without a refresh. */
export const DIRECTORY_ITEM_TTL_MS = 5 * 365 * 24 * 60 * 60 * 1000

export const directoryEntrySchema = z.object({
  username: z.string().regex(USERNAME_PATTERN),
  fullName: z.string().min(1).max(MAX_FULL_NAME_CHARS),
  signPublic: bytes.refine(b => b.length === 32),
  boxPublic: bytes.refine(b => b.length === 32),
  createdAt: time
}).strict()

export type DirectoryEntry = z.infer<typeof directoryEntrySchema>

const signedDirectoryEntrySchema = z.object({
  v: z.literal(1),
  body: bytes,
  sig: bytes.refine(b => b.length === 64)
}).strict()

/**
 * How many shards the directory has. Listing all users reads every shard, so few large
 * shards beat one per first letter; a shard is a set, so it grows past any value limit.
 */
export const DIRECTORY_SHARDS = 8

/** The shard of a username: its SHA-256's first byte, modulo the shard count. */
export function directoryShardOf (username: string): string {
  return String((sha256(username)[0] ?? 0) % DIRECTORY_SHARDS)
}

/** Every shard, for listing the whole directory. */
export function allDirectoryShards (): string[] {
  return Array.from({ length: DIRECTORY_SHARDS }, (_, i) => String(i))
}

export const directorySetKey = (shard: string): string => `/${DIRECTORY_SET_NAMESPACE}/${shard}`

/** Bound to the signer and the entry's time, so only the signer can remove it and a copy cannot pose under another id. */
export function directoryItemId (entry: Pick<DirectoryEntry, 'signPublic' | 'createdAt'>): string {
  return `${keyIdOf(entry.signPublic)}.${entry.createdAt.toString(36)}`
}

/** A directory item for the account, signed by its signing key, for the set `directorySetKey(directoryShardOf(username))`. */
export function createDirectoryItem (input: { username: string, fullName: string, createdAt?: number },
  keys: Pick<AccountKeys, 'signPublic' | 'signSecret' | 'boxPublic'>): SetItem {
  const entry: DirectoryEntry = {
    username: input.username,
    fullName: input.fullName,
    signPublic: keys.signPublic,
    boxPublic: keys.boxPublic,
    createdAt: input.createdAt ?? Date.now()
  }
  const body = cborg.encode(entry)
  const sig = sign(cborg.encode([DIRECTORY_DOMAIN, body]), keys.signSecret)
  return { id: directoryItemId(entry), data: cborg.encode({ v: 1, body, sig }), addedAt: Date.now() }
}

/** Decode and verify a directory item of the shard `setKey`; throws InvalidSetItemError. */
export function decodeDirectoryItem (setKey: string, item: SetItem): DirectoryEntry {
  const outer = signedDirectoryEntrySchema.safeParse(peekCbor(item.data))
  if (!outer.success) throw new InvalidSetItemError('malformed directory entry')
  const entry = directoryEntrySchema.safeParse(peekCbor(outer.data.body))
  if (!entry.success) throw new InvalidSetItemError(`malformed directory entry: ${entry.error.issues[0]?.path.join('.') ?? ''} ${entry.error.issues[0]?.message ?? ''}`.trim())
  if (!verify(outer.data.sig, cborg.encode([DIRECTORY_DOMAIN, outer.data.body]), entry.data.signPublic)) {
    throw new InvalidSetItemError('bad directory entry signature')
  }
  if (directorySetKey(directoryShardOf(entry.data.username)) !== setKey) throw new InvalidSetItemError('directory entry is in the wrong shard')
  if (item.id !== directoryItemId(entry.data)) throw new InvalidSetItemError('directory item id does not match its entry')
  return entry.data
}

/** Directory shards: anyone may add their own signed entry; only its signer may remove it. */
export function directorySetRules (): SetNamespaceRules {
  return {
    checkKey: parts => {
      if (parts.length !== 1 || !allDirectoryShards().includes(parts[0] ?? '')) throw new InvalidSetKeyError(`a directory key is /cc-dir/<shard 0-${DIRECTORY_SHARDS - 1}>`)
    },
    validateItem: (setKey, item) => { decodeDirectoryItem(setKey, item) },
    authorizeRemove: (_setKey, ids, auth) => {
      const keyId = keyIdOf(auth.pub)
      if (!ids.every(id => id.startsWith(keyId + '.'))) throw new RemoveNotAuthorizedError('a directory entry may be removed only by its signer')
    },
    itemTtlMs: DIRECTORY_ITEM_TTL_MS,
    // the item id starts with the signer's key id (directoryItemId)
    writerOf: item => item.id.split('.')[0],
    // an entry is a few hundred bytes; a key re-registered under new names has a few
    writerLimits: { items: DIRECTORY_ENTRIES_PER_KEY, bytes: DIRECTORY_ENTRIES_PER_KEY * 4096 }
  }
}

/** The namespaces every peer serves unless configured otherwise. */
export function defaultSetNamespaces (): Record<string, SetNamespaceRules> {
  return {
    [MAILBOX_SET_NAMESPACE]: mailboxSetRules(),
    [DIRECTORY_SET_NAMESPACE]: directorySetRules()
  }
}
