/**
 * The holder side of `/conf-chat/set/2.0.0`: one request and one response per stream.
 * Each request type has its handler in a dispatch map; a request that breaks the
 * protocol or the namespace's rules is answered with an error response and its code
 * (SetErrorCode), an item that may not be stored is listed in `rejected` with a reason
 * (see set-errors.ts for the codes those reasons stand for).
 */
import { randomBytes } from 'node:crypto'
import { lpStream, RateLimiter } from '@libp2p/utils'
import pMap from 'p-map'
import {
  boundedCache, MAX_SET_FRAME_BYTES, MAX_SET_ITEMS_PER_FRAME, MAX_SET_CLOCK_SKEW_MS, READ_NONCE_BYTES, RemoveNotAuthorizedError, ReadNotAuthorizedError,
  setRemovalSchema, verifyRemoveAuth, verifyReadAuth, removalId, encodeSetMessage, decodeSetRequest, setItemFrameBytes,
  type RefusalCode, type SetItem, type SetReadAuth, type SetRemoval, type SetNamespaceRules, type SetRequest, type SetResponse
} from '@conf-chat/protocol'
import { timeLimit, within } from '../../utils/index.js'
import { PAGE_BYTES, MAX_REFUSED_ID_CHARS, MAX_REFUSED_REASON_CHARS } from './constants.js'

/** Items of one request checked with the network at once (authorizeItem: a DHT read each). */
const AUTHORIZE_CONCURRENCY = 4
import { CHECKS_LIMITED, ITEM_REMOVED, ITEM_UNCHECKED, NO_WRITER_LIST, SET_FULL, WRITER_FULL, errorResponse, itemRefusal } from './set-errors.js'
import type { SetLayout } from './set-layout.js'
import { WriterAdmission } from './writer-admission.js'
import type { SetNamespaces } from './set-namespaces.js'
import type { AbortOptions, ComponentLogger, Connection, Logger, PeerId, Stream } from '@libp2p/interface'

/** How long a read of a set this holder is new to waits for its removals from the other holders (ms). */
const REMOVALS_WAIT_MS = 5_000
/**
 * New sets per minute whose removals one remote peer may make this holder take (a DHT
 * lookup and a request to each other holder each); past it, the set's removals come with
 * the next maintenance.
 */
const REMOVAL_PULLS_PER_PEER = 60

/** Read challenges a holder keeps, each for CHALLENGE_TTL_MS. */
const CHALLENGES = 10_000
const CHALLENGE_TTL_MS = 60_000
/** Read challenges one remote peer may ask for per minute (so that one peer cannot push everyone's out). */
const CHALLENGES_PER_PEER = 120

export interface SetHolderComponents {
  layout: SetLayout
  namespaces: Pick<SetNamespaces, 'rulesFor' | 'ttlFor' | 'checkItem'>
  logger: ComponentLogger
  /** The clock for expiry and signature times, ms since the epoch. */
  now: () => number
  /** Throws NotResponsibleError unless this peer is close enough to the set's key to store its items and removals. */
  checkResponsible?: (setKey: string) => void
  /** This peer's id: what a reader signs (with the holder's nonce) to read a set only some may read. */
  self: string
  /** Whether `peer` is one of the set's holders too (it reads without a signature, to hand the set on). */
  isCoHolder?: (peer: PeerId, setKey: string) => boolean
  /** Take the removals the set's other holders keep (done before serving a set this holder is new to). */
  pullRemovals?: (setKey: string) => Promise<unknown>
}

export interface SetHolderInit {
  /** Limit for reading one request and writing its response (ms). */
  requestTimeoutMs: number
  /** Most items kept in one set; more are refused ('set full'). */
  maxItemsPerSet: number
  /** Most bytes of item data kept in one set; more are refused ('set full'). */
  maxBytesPerSet: number
  /** Most items and bytes of one writer in one set, for namespaces that name writers and set no limits of their own. */
  writerLimits: { items: number, bytes: number }
}

/** What a removal changed: `fresh` if this holder did not have it yet. */
export interface RemovalResult {
  fresh: boolean
  removed: number
}

/** A request's signal, and the peer that sent it (undefined: this peer, as one of the holders). */
export interface AnswerOptions extends AbortOptions {
  from?: PeerId
}

type Handler<T extends SetRequest['type']> =
  (req: Extract<SetRequest, { type: T }>, rules: SetNamespaceRules, options: AnswerOptions) => Promise<SetResponse>

export class SetHolder {
  private readonly components: SetHolderComponents
  private readonly log: Logger
  private readonly requestTimeoutMs: number
  private readonly maxItemsPerSet: number
  private readonly maxBytesPerSet: number
  private readonly writerLimits: { items: number, bytes: number }
  private readonly handlers: { [T in SetRequest['type']]: Handler<T> }
  /** Items this holder sent in listings and GETs (ids-only listings not counted). */
  readonly counts = { itemsServed: 0 }
  /** Sets this holder got its first items of from another peer, while it takes their removals from the other holders. */
  private readonly pulling = new Map<string, Promise<void>>()
  private readonly pulls = new RateLimiter({ points: REMOVAL_PULLS_PER_PEER, duration: 60 })
  /** Read challenges given, by nonce (hex): the set each is for. */
  private readonly challenges = boundedCache<string, string>(CHALLENGES, { ttl: CHALLENGE_TTL_MS })
  private readonly challengesAsked = new RateLimiter({ points: CHALLENGES_PER_PEER, duration: 60 })
  /** The sets' writer lists, and what strangers to their owners stored lately. */
  private readonly admission: WriterAdmission

  constructor (components: SetHolderComponents, init: SetHolderInit) {
    this.components = components
    this.log = components.logger.forComponent('conf-chat:network:sets:holder')
    this.requestTimeoutMs = init.requestTimeoutMs
    this.maxItemsPerSet = init.maxItemsPerSet
    this.maxBytesPerSet = init.maxBytesPerSet
    this.writerLimits = init.writerLimits
    this.admission = new WriterAdmission(components.layout, components.now)
    this.handlers = {
      add: async (req, rules, options) => {
        components.checkResponsible?.(req.setKey)
        return await this.acceptItems(req.setKey, rules, req.items, options)
      },
      list: async (req, rules, options) => {
        this.checkRead(req.setKey, rules, req.auth, options)
        await this.removalsPulled(req.setKey, options)
        return await this.listPage(req.setKey, req.after, req.idsOnly === true, options)
      },
      get: async (req, rules, options) => {
        this.checkRead(req.setKey, rules, req.auth, options)
        await this.removalsPulled(req.setKey, options)
        return await this.getItems(req.setKey, req.ids, options)
      },
      challenge: async (req, _rules, options) => {
        if (options.from != null && !allows(this.challengesAsked, options.from)) {
          throw new ReadNotAuthorizedError('too many read challenges from this peer; try again in a minute')
        }
        const nonce = new Uint8Array(randomBytes(READ_NONCE_BYTES))
        this.challenges.set(Buffer.from(nonce).toString('hex'), req.setKey)
        return { type: 'challenge', nonce }
      },
      remove: async (req, rules, options) => {
        components.checkResponsible?.(req.setKey)
        return { type: 'removed', removed: (await this.acceptRemoval(req.setKey, rules, { ids: req.ids, auth: req.auth }, options)).removed }
      },
      removals: async (req, _rules, options) => await this.removalsPage(req.setKey, req.after, options)
    }
  }

  /**
   * The stream handler: read one request (within the request time limit), answer it,
   * close. A length prefix beyond the frame limit resets the stream unread.
   */
  readonly handleStream = async (stream: Stream, connection: Connection): Promise<void> => {
    const signal = timeLimit(this.requestTimeoutMs)
    try {
      const lp = lpStream(stream, { maxDataLength: MAX_SET_FRAME_BYTES })
      const frame = await lp.read({ signal })
      let request: SetRequest | undefined
      let response: SetResponse
      try {
        request = decodeSetRequest(frame.subarray())
      } catch (err) {
        response = errorResponse(err)
      }
      if (request != null) response = await this.answer(request, { signal, from: connection.remotePeer })
      if (response!.type === 'error') this.log('refused a set request from %p: %s %s', connection.remotePeer, response!.code, response!.message)
      await lp.write(encodeSetMessage(response!), { signal })
      await stream.close({ signal })
    } catch (err: any) {
      this.log('set stream from %p failed: %s', connection.remotePeer, err?.message)
      try { stream.abort(err) } catch {}
    }
  }

  /** Answer one request, from the network or from this peer as one of the holders; never throws. */
  async answer (req: SetRequest, options: AnswerOptions = {}): Promise<SetResponse> {
    try {
      const rules = this.components.namespaces.rulesFor(req.setKey)
      const handler = this.handlers[req.type] as Handler<SetRequest['type']>
      return await handler(req, rules, options)
    } catch (err) {
      return errorResponse(err)
    }
  }

  /**
   * ADD: store each valid item the set has no item (and no tombstone) for; never replace
   * one. Within the set's limits (items and bytes) and its writer's (see writerOf).
   */
  private async acceptItems (setKey: string, rules: SetNamespaceRules, items: SetItem[], options: AnswerOptions): Promise<SetResponse> {
    const { layout, namespaces } = this.components
    const now = this.components.now()
    const accepted: string[] = []
    const rejected: Array<{ id: string, code: RefusalCode, reason: string }> = []
    const refuse = (id: string, reason: string): void => { rejected.push({ id, code: itemRefusal(reason).code, reason: reason.slice(0, MAX_REFUSED_REASON_CHARS) }) }
    const valid = new Map<string, SetItem>()
    for (const item of items) {
      const reason = namespaces.checkItem(setKey, rules, item, now)
      if (reason != null) refuse(String(item.id).slice(0, MAX_REFUSED_ID_CHARS), reason)
      else if (!valid.has(item.id)) valid.set(item.id, item)
    }
    if (rules.authorizeItem != null) await this.authorize(setKey, rules, valid, refuse, options)
    if (valid.size === 0) return { type: 'added', accepted, rejected }
    const writerOf = rules.writerOf
    const writerLimits = rules.writerLimits ?? this.writerLimits
    // the first items of a set from another peer: this holder is new to the set, and may have
    // missed its removals (a replayed old item would come back), so it takes them before serving
    const newHere = options.from != null && this.components.pullRemovals != null && !await layout.holdsSet(setKey, options)
    const listRules = rules.writerList
    const ttl = this.components.namespaces.ttlFor(setKey)
    await layout.withSetLock(setKey, async () => {
      const usage = await layout.usage(setKey, writerOf, options)
      // the owner's list of the writers it knows, if the set has one: strangers get less room
      const gate = listRules != null ? await this.admission.gate(setKey, listRules, usage, valid.values(), ttl, options) : undefined
      let { items: count, bytes } = usage
      /** what each writer has, with the items of this request taken so far */
      const writers = new Map<string, { items: number, bytes: number }>()
      const fresh: SetItem[] = []
      for (const item of valid.values()) {
        const tomb = await layout.tombstone(setKey, item.id, options)
        if (tomb != null && tomb > now) { refuse(item.id, ITEM_REMOVED); continue }
        if (await layout.hasItem(setKey, item.id, options)) { accepted.push(item.id); continue }
        const size = item.data.length
        if (count >= this.maxItemsPerSet || bytes + size > this.maxBytesPerSet) { refuse(item.id, SET_FULL); continue }
        const writer = writerOf?.(item)
        if (writer != null) {
          const mine = writers.get(writer) ?? { ...(usage.writers.get(writer) ?? { items: 0, bytes: 0 }) }
          if (mine.items >= writerLimits.items || mine.bytes + size > writerLimits.bytes) { refuse(item.id, WRITER_FULL); continue }
          const stranger = gate == null
            ? (listRules?.onlyListed?.(item) === true ? NO_WRITER_LIST : undefined)
            : (gate.names(writer) ? undefined : gate.admit(writer, item, mine))
          if (stranger != null) { refuse(item.id, stranger); continue }
          writers.set(writer, { items: mine.items + 1, bytes: mine.bytes + size })
        }
        fresh.push(item)
        count++
        bytes += size
        accepted.push(item.id)
      }
      await layout.putItems(setKey, fresh, options)
      if (listRules != null) {
        for (const item of fresh) if (item.id.startsWith(listRules.listPrefix)) this.admission.stored(setKey, listRules, item, ttl)
      }
    })
    if (newHere && accepted.length > 0 && !this.pulling.has(setKey) && this.mayPull(options.from!)) {
      const pull = Promise.resolve(this.components.pullRemovals!(setKey))
        .then(() => {}, (err: any) => { this.log('could not take the removals of %s: %s', setKey, err?.message) })
        .finally(() => { this.pulling.delete(setKey) })
      this.pulling.set(setKey, pull)
    }
    return { type: 'added', accepted, rejected }
  }

  /**
   * The namespace's network check of each item this holder does not hold yet (at most
   * AUTHORIZE_CONCURRENCY at once); an item it refuses leaves `valid`. Items held already
   * were checked when they came.
   */
  private async authorize (setKey: string, rules: SetNamespaceRules, valid: Map<string, SetItem>, refuse: (id: string, reason: string) => void, options: AnswerOptions): Promise<void> {
    const { layout } = this.components
    const unknown: SetItem[] = []
    for (const item of valid.values()) if (!await layout.hasItem(setKey, item.id, options)) unknown.push(item)
    await pMap(unknown, async item => {
      try {
        await rules.authorizeItem!(setKey, item, { signal: options.signal, from: options.from?.toString() })
      } catch (err: any) {
        valid.delete(item.id)
        if (err?.name === 'InvalidSetItemError') refuse(item.id, String(err.message))
        else if (err?.name === 'RateLimitError') refuse(item.id, CHECKS_LIMITED)
        else refuse(item.id, ITEM_UNCHECKED)
      }
    }, { concurrency: AUTHORIZE_CONCURRENCY })
  }

  /**
   * REMOVE (and removals pulled from other holders): verify a signed removal and apply
   * it: delete the items, keep tombstones and the removal itself (to hand on) until every
   * item it could name has expired.
   */
  async acceptRemoval (setKey: string, rules: SetNamespaceRules, removal: SetRemoval, options: AbortOptions = {}): Promise<RemovalResult> {
    const parsed = setRemovalSchema.safeParse(removal)
    if (!parsed.success) throw new RemoveNotAuthorizedError('malformed removal')
    const { ids, auth } = parsed.data
    const now = this.components.now()
    const ttl = this.components.namespaces.ttlFor(setKey)
    // a removal is kept (and handed on) for a TTL, so it must be accepted for as long;
    // replaying it can only repeat a deletion of ids that never come back
    if (auth.time > now + MAX_SET_CLOCK_SKEW_MS) throw new RemoveNotAuthorizedError('removal signed in the future')
    if (auth.time + ttl <= now) throw new RemoveNotAuthorizedError('removal too old')
    if (!verifyRemoveAuth(setKey, ids, auth)) throw new RemoveNotAuthorizedError('bad removal signature')
    rules.authorizeRemove(setKey, ids, auth)
    const rid = removalId(auth)
    const expiresAt = auth.time + ttl + MAX_SET_CLOCK_SKEW_MS
    const { layout } = this.components
    return await layout.withSetLock(setKey, async () => {
      if (await layout.hasRemoval(setKey, rid, options)) return { fresh: false, removed: 0 }
      const removed = await layout.putRemoval(setKey, rid, { ids, auth, expiresAt }, options)
      // a writer list removed: the newest left is read from disk again
      if (rules.writerList != null && ids.some(id => id.startsWith(rules.writerList!.listPrefix))) this.admission.forget(setKey)
      this.log('removed %d of %d ids from %s', removed, ids.length, setKey)
      return { fresh: true, removed }
    })
  }

  /** LIST: a page of unexpired items (or of ids) in id order after the cursor `after`. */
  private async listPage (setKey: string, after: string | undefined, idsOnly: boolean, options: AbortOptions): Promise<SetResponse> {
    const { layout } = this.components
    const ttl = this.components.namespaces.ttlFor(setKey)
    const now = this.components.now()
    const ids: string[] = []
    const items: SetItem[] = []
    let bytes = 0
    let last: string | undefined
    let next: string | undefined
    if (idsOnly) {
      for await (const id of layout.itemIds(setKey, options)) {
        if (after != null && id <= after) continue
        if (ids.length >= MAX_SET_ITEMS_PER_FRAME) { next = last; break }
        ids.push(id)
        last = id
      }
      return { type: 'ids', ids, ...(next != null ? { next } : {}) }
    }
    // keys and values in one scan: a read per item made a 1,000-item mailbox cost its holders ~0.5 s
    for await (const { id, item } of layout.items(setKey, { ...options, after })) {
      if (item == null || item.addedAt + ttl <= now) { last = id; continue }
      const size = setItemFrameBytes(item)
      if (items.length > 0 && (bytes + size > PAGE_BYTES || items.length >= MAX_SET_ITEMS_PER_FRAME)) { next = last; break }
      bytes += size
      items.push(item)
      last = id
    }
    this.counts.itemsServed += items.length
    return { type: 'items', items, ...(next != null ? { next } : {}) }
  }

  /**
   * Whether the request's sender may read the set: anyone, unless its namespace says who
   * may (authorizeRead); then this peer itself, the set's other holders, and a signer the
   * namespace allows, over a nonce this holder gave for the set in the last minute.
   * Throws ReadNotAuthorizedError.
   */
  private checkRead (setKey: string, rules: SetNamespaceRules, auth: SetReadAuth | undefined, options: AnswerOptions): void {
    if (rules.authorizeRead == null || options.from == null) return
    if (this.components.isCoHolder?.(options.from, setKey) === true) return
    if (auth == null) throw new ReadNotAuthorizedError('reading this set needs a signature of a reader it allows')
    if (this.challenges.get(Buffer.from(auth.nonce).toString('hex')) !== setKey) throw new ReadNotAuthorizedError('unknown or expired read challenge')
    if (!verifyReadAuth(setKey, this.components.self, auth)) throw new ReadNotAuthorizedError('bad read signature')
    rules.authorizeRead(setKey, auth.pub)
  }

  /** Whether `peer` may make this holder take one more new set's removals now (REMOVAL_PULLS_PER_PEER). */
  private mayPull (peer: PeerId): boolean {
    if (allows(this.pulls, peer)) return true
    this.log('%p made this holder take the removals of too many new sets; the next maintenance takes them', peer)
    return false
  }

  /** Wait (at most REMOVALS_WAIT_MS) for the removals of a set this holder is new to. */
  private async removalsPulled (setKey: string, options: AbortOptions): Promise<void> {
    const pull = this.pulling.get(setKey)
    if (pull != null) await within(pull, REMOVALS_WAIT_MS, undefined, options)
  }

  /** GET: the unexpired items under these ids that the set has (at most MAX_SET_GET_IDS: they fit in a frame). */
  private async getItems (setKey: string, ids: string[], options: AbortOptions): Promise<SetResponse> {
    const { layout } = this.components
    const ttl = this.components.namespaces.ttlFor(setKey)
    const now = this.components.now()
    const items: SetItem[] = []
    for (const id of new Set(ids)) {
      const item = await layout.item(setKey, id, options)
      if (item != null && item.addedAt + ttl > now) items.push(item)
    }
    this.counts.itemsServed += items.length
    return { type: 'items', items }
  }

  /** REMOVALS: a page of the unexpired signed removals kept for the set, after the cursor `after`. */
  private async removalsPage (setKey: string, after: string | undefined, options: AbortOptions): Promise<SetResponse> {
    const now = this.components.now()
    const removals: SetRemoval[] = []
    let bytes = 0
    let last: string | undefined
    let next: string | undefined
    for await (const { rid, removal } of this.components.layout.removals(setKey, options)) {
      if (after != null && rid <= after) continue
      if (removal == null || removal.expiresAt <= now) { last = rid; continue }
      const size = removal.ids.reduce((n, id) => n + id.length + 2, 150)
      if (removals.length > 0 && (bytes + size > PAGE_BYTES || removals.length >= MAX_SET_ITEMS_PER_FRAME)) { next = last; break }
      bytes += size
      removals.push({ ids: removal.ids, auth: removal.auth })
      last = rid
    }
    return { type: 'removals', removals, ...(next != null ? { next } : {}) }
  }
}

/** Whether `peer` has a point left in `limiter` this minute (and takes it): RateLimiter.consume throws past them. */
function allows (limiter: RateLimiter, peer: PeerId): boolean {
  try {
    limiter.consume(peer.toString())
    return true
  } catch {
    return false
  }
}
