/**
 * The set namespaces' rules on this peer: protocol's (what an item must look like, who
 * may remove it), plus what a holder checks with the network before it stores an item it
 * has not got (`authorizeItem`): that the writer is a registered user.
 *
 * - Directory: the entry's name is registered to the key that signed it. A script once
 *   filled a shard with 10,000 entries for names it never registered: the shard was full
 *   for real users, and a full listing took 45 s.
 * - Mailbox: the envelope's sender is registered with the key that signed it. 10,000
 *   envelopes from a key nobody registered once filled a user's mailbox on every holder in
 *   4 s, and a friend's message could no longer be left there.
 *
 * So every item costs its writer a registration, and a registration a name's proof of
 * work. A name's owner does not change, so a holder remembers each confirmed pair for a
 * while (OWNER_CACHE_*) instead of reading the record for every item, and each name it
 * found registered to another key for a minute (REFUSED_CACHE_*). A name it found not
 * registered is read again next time: the user may have just registered it.
 *
 * A read is a DHT query the writer makes a holder do: items from ever new unregistered
 * names would make each holder read for every one. So the reads each remote peer causes
 * are limited (READS_PER_PEER per minute); past it, its items are refused for now
 * (`rate-limited`) until the minute is over. What a peer's own holder checks is not limited.
 *
 * A stranger's sealed item (protocol's sealed-envelope.ts) shows no sender to check: it
 * carries a stranger's work instead, a name's cost for its signing key, which the holder
 * checks (an Argon2id run) once per key, mailbox and work (WORK_CHECKED), and at most
 * WORK_CHECKS_PER_PEER times a minute for one remote peer and WORK_CHECKS_PER_MINUTE for
 * all of them: junk work costs its sender nothing, so the checks it can cause are bounded.
 */
import { RateLimiter } from '@libp2p/utils'
import {
  boundedCache, directorySetRules, decodeDirectoryItem, mailboxSetRules, validateMailboxItem, isSealedEnvelopeItem, strangerWorkOf, checkStrangerItemWork,
  mailboxOwnerOf, userKey, bytesEqual, keyIdOf, InvalidSetItemError, isWriterListId, DIRECTORY_SET_NAMESPACE, MAILBOX_SET_NAMESPACE,
  type SetNamespaceRules, type UserPayload
} from '@conf-chat/protocol'
import type { RecordStore } from './records/index.js'

export { DIRECTORY_SET_NAMESPACE, MAILBOX_SET_NAMESPACE }

const OWNER_CACHE_ENTRIES = 10_000
const OWNER_CACHE_TTL_MS = 10 * 60_000
const REFUSED_CACHE_ENTRIES = 10_000
const REFUSED_CACHE_TTL_MS = 60_000
/** Record reads one remote peer may cause per minute (a hand-off of a mailbox with this many new writers fits). */
export const READS_PER_PEER = 120
/**
 * Strangers' work one remote peer may make this holder check per minute: each check is
 * an Argon2id run over 8 MiB on libuv's thread pool (15 ms measured, median), so at most
 * about 2 s of one pool thread a minute; a mailbox takes at most 200 strangers' items.
 */
export const WORK_CHECKS_PER_PEER = 120
/** Strangers' work this holder checks per minute in all (about 9 s of one pool thread at most). */
export const WORK_CHECKS_PER_MINUTE = 600
/** (key, mailbox, work) triples found valid, kept: a stranger's next items under one key cost no check. */
const WORK_CHECKED = 10_000

/**
 * Resolves if `username` is a live account of `signPublic`; else rejects (the refusal).
 * `from`: the remote peer the item came from, whose reads are limited.
 */
export type OwnerCheck = (username: string, signPublic: Uint8Array, options: { signal?: AbortSignal, from?: string }) => Promise<void>

export function ownerCheck (records: Pick<RecordStore, 'get'>, init: { readsPerPeer?: number } = {}): OwnerCheck {
  const confirmed = boundedCache<string, true>(OWNER_CACHE_ENTRIES, { ttl: OWNER_CACHE_TTL_MS })
  const refused = boundedCache<string, Error>(REFUSED_CACHE_ENTRIES, { ttl: REFUSED_CACHE_TTL_MS })
  // consume() throws a RateLimitError past the points of the minute
  const reads = new RateLimiter({ points: init.readsPerPeer ?? READS_PER_PEER, duration: 60 })
  return async (username, signPublic, options) => {
    const id = `${username}/${keyIdOf(signPublic)}`
    if (confirmed.has(id)) return
    const known = refused.get(id)
    if (known != null) throw known
    if (options.from != null) reads.consume(options.from)
    // a read that cannot tell throws UnknownRecordError: a passing refusal, the writer tries again (not remembered)
    const owner = await records.get<UserPayload>(userKey(username), options)
    // not (yet) registered as far as this holder can read: passing too (a registration racing its first write)
    if (owner == null || owner.payload.type !== 'account') throw new Error(`${username} is not registered`)
    if (!bytesEqual(owner.record.pub, signPublic)) {
      const err = new InvalidSetItemError(`${username} is registered to another key`)
      refused.set(id, err)
      throw err
    }
    confirmed.set(id, true)
  }
}

/** Directory entries of names registered to their signer only. */
export function ownedDirectoryRules (isOwner: OwnerCheck): SetNamespaceRules {
  return {
    ...directorySetRules(),
    authorizeItem: async (setKey, item, options) => {
      const entry = decodeDirectoryItem(setKey, item)
      await isOwner(entry.username, entry.signPublic, options)
    }
  }
}

/**
 * Mailbox items from registered senders only. A sealed envelope's signer is a pair key,
 * nobody's account: it is stored only where the owner's writer list names it, or as a
 * stranger's, with a stranger's work (a name's cost) for its key, checked here.
 */
export function registeredSenderMailboxRules (isOwner: OwnerCheck, init: { workChecksPerPeer?: number, workChecksPerMinute?: number, workBits?: number } = {}): SetNamespaceRules {
  const checks = new RateLimiter({ points: init.workChecksPerPeer ?? WORK_CHECKS_PER_PEER, duration: 60 })
  const allChecks = new RateLimiter({ points: init.workChecksPerMinute ?? WORK_CHECKS_PER_MINUTE, duration: 60 })
  const checked = boundedCache<string, true>(WORK_CHECKED)
  return {
    ...mailboxSetRules(),
    authorizeItem: async (setKey, item, options) => {
      // the owner's writer list: its signature is the owner's (validateItem)
      if (isWriterListId(item.id)) return
      if (isSealedEnvelopeItem(item)) {
        const work = strangerWorkOf(item)
        if (work == null) return
        const id = `${work.writer}/${setKey}/${work.work}`
        if (checked.has(id)) return
        // this peer's own writes are not limited, as for the owner check
        if (options.from != null) {
          checks.consume(options.from)
          allChecks.consume('all')
        }
        try {
          await checkStrangerItemWork(mailboxOwnerOf(setKey), item, init.workBits)
        } catch (err: any) {
          throw new InvalidSetItemError(String(err.message))
        }
        checked.set(id, true)
        return
      }
      const envelope = validateMailboxItem(setKey, item)
      await isOwner(envelope.from, envelope.fromKey, options)
    }
  }
}
