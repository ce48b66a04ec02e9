/**
 * The private state in pages: a sealed state larger than one record (STATE_PART_BYTES)
 * is cut into parts, the first in the head record `/cc-state/<keyId>`, the rest in page
 * records `/cc-state-page/<keyId>/<slot>/<i>`, each naming the digest of the whole. Pages
 * are written before their head, in the slot the current head does not use, so a head
 * read names pages that were written, and a write that fails before its head (no peer
 * took it, a crash, a logout) leaves the current head's pages whole. A page read of
 * another version (a write under way, a stale holder) makes the read "could not tell",
 * never a state with friends missing.
 *
 * One record once capped the state at 128 KiB: a user with a few hundred friends, or a
 * flood of requests, made it unwritable. Now the cap is MAX_STATE_PAGES records.
 */
import type { AbortOptions } from '@libp2p/interface'
import {
  createSignedRecord, encodeSignedRecord, sha256, bytesEqual, statePageKey, MAX_STATE_PAGES, STATE_PART_BYTES,
  type AccountKeys, type StatePayload, type StatePagePayload, type StatePageSlot, type VerifiedRecord
} from '@conf-chat/protocol'
import { UnknownRecordError, type RecordStore } from '../network/index.js'

/** The sealed state is larger than MAX_STATE_PAGES pages: it cannot be written. */
export class StateTooLargeError extends Error {
  override name = 'StateTooLargeError'
  constructor (bytes: number, maxPages = MAX_STATE_PAGES) {
    super(`your friends and conferences take ${Math.ceil(bytes / 1024)} KiB sealed, more than the ${Math.floor(maxPages * STATE_PART_BYTES / 1024)} KiB a state may have`)
  }
}

/** The slot a write after the head `current` fills: the one it does not use. */
export function nextSlot (current: StatePayload | undefined): StatePageSlot {
  return current?.pages?.slot === 'a' ? 'b' : 'a'
}

/**
 * The head's payload and the pages' (none for a state that fits the head) of the sealed
 * state `sealed`, in `slot`; throws StateTooLargeError past `maxPages` records.
 */
export function paginate (sealed: Uint8Array, updatedAt: number, slot: StatePageSlot, maxPages = MAX_STATE_PAGES): { head: StatePayload, pages: StatePagePayload[] } {
  if (sealed.length <= STATE_PART_BYTES) return { head: { sealed, updatedAt }, pages: [] }
  const count = Math.ceil(sealed.length / STATE_PART_BYTES)
  if (count > Math.min(maxPages, MAX_STATE_PAGES)) throw new StateTooLargeError(sealed.length, Math.min(maxPages, MAX_STATE_PAGES))
  const digest = sha256(sealed)
  const part = (i: number): Uint8Array => sealed.subarray(i * STATE_PART_BYTES, (i + 1) * STATE_PART_BYTES)
  return {
    head: { sealed: part(0), updatedAt, pages: { slot, count, digest } },
    pages: Array.from({ length: count - 1 }, (_, i) => ({ part: part(i + 1), digest }))
  }
}

/**
 * The whole sealed state a head record stands for: its own part, or all its pages read
 * and checked against its digest. Throws UnknownRecordError when a page cannot be read
 * as the head's version, and UnknownRecordError from its reads (the caller reads again later).
 */
export async function sealedStateOf (records: Pick<RecordStore, 'get'>, keyId: string, head: VerifiedRecord<StatePayload>, options: AbortOptions = {}): Promise<Uint8Array> {
  const pages = head.payload.pages
  if (pages == null) return head.payload.sealed
  const parts = await Promise.all(Array.from({ length: pages.count - 1 }, async (_, i) => {
    const key = statePageKey(keyId, pages.slot, i + 1)
    const page = await records.get<StatePagePayload>(key, options)
    if (page == null) throw new UnknownRecordError(key, `page ${i + 1} of ${pages.count} not found`)
    if (!bytesEqual(page.payload.digest, pages.digest)) throw new UnknownRecordError(key, `page ${i + 1} is of another version`)
    return page.payload.part
  }))
  const whole = Buffer.concat([head.payload.sealed, ...parts])
  if (!bytesEqual(sha256(whole), pages.digest)) throw new UnknownRecordError(statePageKey(keyId, pages.slot, 1), 'pages do not add up to their digest')
  return new Uint8Array(whole)
}

/**
 * Write the pages of version `seq` into `slot` (each under the head's seq, which rises
 * with every write). 'conflict': a holder (or this peer's own store) has a newer one,
 * written by another session; 'failed': a page reached no peer (`reason`).
 */
export async function writePages (records: Pick<RecordStore, 'put'>, keyId: string, keys: Pick<AccountKeys, 'signPublic' | 'signSecret'>, seq: number, slot: StatePageSlot, pages: StatePagePayload[]):
Promise<{ outcome: 'written' | 'conflict' | 'failed', reason?: string }> {
  const outcomes = await Promise.all(pages.map(async (page, i) => {
    const key = statePageKey(keyId, slot, i + 1)
    try {
      const result = await records.put(key, encodeSignedRecord(createSignedRecord(key, seq, page, keys)))
      if (result.replicas > 0) return { outcome: 'written' as const }
      return result.refused > 0 ? { outcome: 'conflict' as const } : { outcome: 'failed' as const, reason: `page ${i + 1}: no peer stored it` }
    } catch (err: any) {
      if (err.name === 'RecordConflictError') return { outcome: 'conflict' as const }
      return { outcome: 'failed' as const, reason: `page ${i + 1}: ${String(err.message)}` }
    }
  }))
  return outcomes.find(o => o.outcome === 'conflict') ?? outcomes.find(o => o.outcome === 'failed') ?? { outcome: 'written' }
}
