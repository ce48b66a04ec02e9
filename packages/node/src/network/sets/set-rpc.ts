/**
 * The requesting side of `/conf-chat/set/2.0.0`: one request to one holder per stream,
 * within the request time limit; a request to this peer itself goes straight to its own
 * holder, through the same checks. Paged requests (list, removals) follow the cursor.
 */
import { lpStream } from '@libp2p/utils'
import {
  SET_PROTOCOL, MAX_SET_FRAME_BYTES, MAX_SET_ITEMS_PER_FRAME, MAX_SET_GET_IDS, encodeSetMessage, decodeSetResponse, setItemFrameBytes, createReadAuth,
  type AccountKeys, type SetItem, type SetReadAuth, type SetRemoval, type SetRequest, type SetResponse
} from '@conf-chat/protocol'
import { timeLimit } from '../../utils/index.js'
import { PAGE_BYTES } from './constants.js'
import { SetRequestError, unexpected } from './set-errors.js'
import type { AbortOptions, Libp2p, PeerId } from '@libp2p/interface'

export interface SetRpcComponents {
  peerId: PeerId
  network: Pick<Libp2p, 'dialProtocol'>
  /** Answers a request to this peer (its own holder); never throws. */
  answerLocally: (req: SetRequest, options: AbortOptions) => Promise<SetResponse>
}

export interface SetRpcInit {
  /** Limit for one request to one holder (ms). */
  requestTimeoutMs: number
}

export class SetRpc {
  private readonly components: SetRpcComponents
  private readonly requestTimeoutMs: number

  constructor (components: SetRpcComponents, init: SetRpcInit) {
    this.components = components
    this.requestTimeoutMs = init.requestTimeoutMs
  }

  /** One request to one holder: its response (an `error` response too); throws when it gave none. */
  async send (holder: PeerId, req: SetRequest, options: AbortOptions = {}): Promise<SetResponse> {
    if (holder.equals(this.components.peerId)) return await this.components.answerLocally(req, options)
    const signal = timeLimit(this.requestTimeoutMs, options)
    const stream = await this.components.network.dialProtocol(holder, SET_PROTOCOL, { signal })
    try {
      const lp = lpStream(stream, { maxDataLength: MAX_SET_FRAME_BYTES })
      await lp.write(encodeSetMessage(req), { signal })
      const res = decodeSetResponse((await lp.read({ signal })).subarray())
      await stream.close({ signal })
      return res
    } catch (err: any) {
      stream.abort(err)
      throw err
    }
  }

  /**
   * What to send to read a set on `holder` as the owner of `keys` (a signature over a nonce
   * the holder gives now); undefined for this peer's own holder, which needs none.
   */
  async readAuth (holder: PeerId, setKey: string, keys: Pick<AccountKeys, 'signPublic' | 'signSecret'>, options: AbortOptions = {}): Promise<SetReadAuth | undefined> {
    if (holder.equals(this.components.peerId)) return undefined
    const res = await this.send(holder, { type: 'challenge', setKey }, options)
    if (res.type !== 'challenge') throw unexpected(res)
    return createReadAuth(setKey, holder.toString(), res.nonce, keys)
  }

  /** Every item the holder serves for the set, page by page (`auth`: see readAuth). */
  async * items (holder: PeerId, setKey: string, options: AbortOptions & { auth?: SetReadAuth } = {}): AsyncGenerator<SetItem> {
    let after: string | undefined
    do {
      const res = await this.send(holder, { type: 'list', setKey, ...(after != null ? { after } : {}), ...withAuth(options.auth) }, options)
      if (res.type !== 'items') throw unexpected(res)
      yield * res.items
      after = nextCursor(after, res.next)
    } while (after != null)
  }

  /** The ids of every item the holder has of the set (`auth`: see readAuth). */
  async ids (holder: PeerId, setKey: string, options: AbortOptions & { auth?: SetReadAuth } = {}): Promise<Set<string>> {
    const held = new Set<string>()
    let after: string | undefined
    do {
      const res = await this.send(holder, { type: 'list', setKey, idsOnly: true, ...(after != null ? { after } : {}), ...withAuth(options.auth) }, options)
      if (res.type !== 'ids') throw unexpected(res)
      for (const id of res.ids) held.add(id)
      after = nextCursor(after, res.next)
    } while (after != null)
    return held
  }

  /**
   * The items the holder has under `ids`, in one GET: at most MAX_SET_GET_IDS (a reader
   * spreads more over several GETs and holders, see NewItemsRead; `auth`: see readAuth).
   */
  async get (holder: PeerId, setKey: string, ids: string[], options: AbortOptions & { auth?: SetReadAuth } = {}): Promise<SetItem[]> {
    if (ids.length > MAX_SET_GET_IDS) throw new RangeError(`a GET asks for at most ${MAX_SET_GET_IDS} ids, not ${ids.length}`)
    const res = await this.send(holder, { type: 'get', setKey, ids, ...withAuth(options.auth) }, options)
    if (res.type !== 'items') throw unexpected(res)
    return res.items
  }

  /** Every signed removal the holder keeps for the set. */
  async removals (holder: PeerId, setKey: string, options: AbortOptions = {}): Promise<SetRemoval[]> {
    const out: SetRemoval[] = []
    let after: string | undefined
    do {
      const res = await this.send(holder, { type: 'removals', setKey, ...(after != null ? { after } : {}) }, options)
      if (res.type !== 'removals') throw unexpected(res)
      out.push(...res.removals)
      after = res.next
    } while (after != null)
    return out
  }
}

/** The `auth` field of a read request, if there is one to send. */
function withAuth (auth: SetReadAuth | undefined): { auth?: SetReadAuth } {
  return auth != null ? { auth } : {}
}

/**
 * The cursor of the next page: it must move forward (ids sort as strings), or a holder
 * could keep a reader paging for ever.
 */
function nextCursor (after: string | undefined, next: string | undefined): string | undefined {
  if (next != null && after != null && next <= after) throw new SetRequestError(`a page cursor went back (${next} after ${after})`, 'malformed')
  return next
}

/** Split items into ADD requests that fit in a frame. */
export function batches (items: SetItem[]): SetItem[][] {
  const out: SetItem[][] = []
  let current: SetItem[] = []
  let bytes = 0
  for (const item of items) {
    const size = setItemFrameBytes(item)
    if (current.length > 0 && (bytes + size > PAGE_BYTES || current.length >= MAX_SET_ITEMS_PER_FRAME)) {
      out.push(current)
      current = []
      bytes = 0
    }
    current.push(item)
    bytes += size
  }
  if (current.length > 0) out.push(current)
  return out
}
