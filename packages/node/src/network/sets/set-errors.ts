/**
 * The set store's errors, and the codes its holders refuse with: a whole request is
 * refused with a SetErrorCode (in the `error` response), a single item with a reason
 * that maps to a RefusalCode (see ITEM_REFUSAL_CODES).
 */
import {
  refusal, type Refusal, type RefusalCode, type SetErrorCode, type SetResponse
} from '@conf-chat/protocol'
import { MAX_SET_ERROR_MESSAGE_CHARS } from './constants.js'

/**
 * Some items were stored by no holder. `stored` tells which ones made it where;
 * `refusals` holds, per item id, the refusal of each holder that answered and refused
 * it (with its code). `code` is set when every holder that refused a lost item
 * refused every lost item with the same code (e.g. 'already-delivered': the recipient
 * already removed it from its mailbox).
 */
export class SetWriteError extends Error {
  override name = 'SetWriteError'
  readonly code?: RefusalCode

  constructor (message = 'No holder stored the items', readonly stored: Record<string, number> = {},
    readonly refusals: Record<string, Refusal[]> = {}) {
    super(message)
    const lost = Object.entries(stored).filter(([, n]) => n === 0).map(([id]) => id)
    const codes = new Set(lost.flatMap(id => (refusals[id] ?? []).map(r => r.code)))
    if (lost.length > 0 && codes.size === 1 && lost.every(id => (refusals[id]?.length ?? 0) > 0)) this.code = [...codes][0]
  }

  /** Whether some holder answered about item `id` and every one that did refused it with `code` (or one of `code`). */
  refusedEverywhere (id: string, code: RefusalCode | readonly RefusalCode[]): boolean {
    const codes: readonly RefusalCode[] = typeof code === 'string' ? [code] : code
    const list = this.refusals[id] ?? []
    return list.length > 0 && list.every(r => codes.includes(r.code))
  }
}

export class SetRemoveError extends Error {
  override name = 'SetRemoveError'
  constructor (message = 'No holder accepted the removal') { super(message) }
}

export class SetReadError extends Error {
  override name = 'SetReadError'
  constructor (message = 'No holder of the set answered') { super(message) }
}

export class NoSetHoldersError extends Error {
  override name = 'NoSetHoldersError'
  constructor (message = 'No DHT server found to hold the set: network not reachable') { super(message) }
}

/** A holder answered a request with an error response (or with a response of the wrong type). */
export class SetRequestError extends Error {
  override name = 'SetRequestError'
  constructor (message: string, readonly code: SetErrorCode) { super(message) }
}

/** A holder's reason for refusing one item, and the refusal code that goes with it. */
export const ITEM_REMOVED = 'removed'
export const SET_FULL = 'set full'
/** The writer has as much in the set as one writer may (its namespace's writerLimits). */
export const WRITER_FULL = 'too much from this writer'
export const ITEM_EXPIRED = 'expired'
export const ITEM_IN_FUTURE = 'added in the future'
/** The namespace's network check could not tell now (authorizeItem); the writer tries again. */
export const ITEM_UNCHECKED = 'cannot be checked now'
/** The peer that sent the item made this holder check too many writers lately; it tries again later. */
export const CHECKS_LIMITED = 'too many checks for this peer'
/** The set's owner does not list the writer, and a stranger may not store this kind of item (see WriterListRules). */
export const STRANGER_KIND = 'not listed by the owner: not a kind strangers may leave'
/** The item may be stored only where the owner's list names its writer, and the set has no list (see WriterListRules.onlyListed). */
export const NO_WRITER_LIST = 'not listed by the owner: the set has no writer list'
/** The writer, a stranger to the set's owner, stored as many items in the last day as strangers may. */
export const STRANGER_DAY_FULL = 'not listed by the owner: enough for today'

/**
 * The code a holder sends with each reason it gives for refusing an item: the reasons it
 * words are a fixed vocabulary; any other reason is the namespace's validation refusing
 * the item ('malformed'). The client decides on the code, never on the words.
 */
const ITEM_REFUSAL_CODES: Record<string, RefusalCode> = {
  /** a tombstone: the set's owner removed the item (for a mailbox: it was delivered) */
  [ITEM_REMOVED]: 'already-delivered',
  /** the holder keeps no more items in this set for now */
  [SET_FULL]: 'full',
  /** the writer's share of the set is full for now: items of it must expire or be removed first */
  [WRITER_FULL]: 'rate-limited',
  [ITEM_EXPIRED]: 'stale',
  /** the holder's clock is behind ours by more than the allowed skew: its fault, not final */
  [ITEM_IN_FUTURE]: 'internal',
  [ITEM_UNCHECKED]: 'not-ready',
  [CHECKS_LIMITED]: 'rate-limited',
  /** passing: the owner's list may not have caught up with a friendship just begun */
  [STRANGER_KIND]: 'not-listed',
  /** passing: the owner's list may be on its way; the writer may also send another way (a mailbox: the envelope itself) */
  [NO_WRITER_LIST]: 'not-listed',
  [STRANGER_DAY_FULL]: 'rate-limited'
}

/** The refusal of an item for `reason` (the holder's words): the code it sends with them. */
export function itemRefusal (reason: string): Refusal {
  return refusal(ITEM_REFUSAL_CODES[reason] ?? 'malformed', reason)
}

/** The error code of a request refused by throwing `err`, by the error's name. */
const SET_ERROR_CODES: Record<string, SetErrorCode> = {
  InvalidSetKeyError: 'invalid-key',
  UnknownSetNamespaceError: 'unknown-namespace',
  RemoveNotAuthorizedError: 'unauthorized',
  ReadNotAuthorizedError: 'unauthorized',
  NotResponsibleError: 'not-responsible',
  InvalidSetMessageError: 'malformed'
}

export function setErrorCodeOf (err: unknown): SetErrorCode {
  const name = (err as { name?: unknown } | undefined)?.name
  return (typeof name === 'string' ? SET_ERROR_CODES[name] : undefined) ?? 'internal'
}

/** The error response for a request refused by throwing `err`. */
export function errorResponse (err: unknown): SetResponse {
  const message = String((err as { message?: unknown } | undefined)?.message ?? err)
  return { type: 'error', code: setErrorCodeOf(err), message: message.slice(0, MAX_SET_ERROR_MESSAGE_CHARS) }
}

/** The error for a response that is not the one the request asked for. */
export function unexpected (res: SetResponse): SetRequestError {
  if (res.type === 'error') return new SetRequestError(res.message, res.code)
  return new SetRequestError(`unexpected response ${res.type}`, 'malformed')
}
