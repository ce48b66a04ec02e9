/**
 * The replicated set store: append-only, multi-writer sets (mailboxes, directory shards)
 * held by the R DHT servers closest to each set key and served over
 * `/conf-chat/set/1.0.0`. kad-dht gives a key one value and last-put-wins; here every
 * item has its own id, a holder never replaces an item it holds, and signed removals
 * leave tombstones, so concurrent writers never overwrite each other and a stale replica
 * cannot bring removed items back. Holders hand their sets on to the current closest
 * peers (maintenance), so a set survives the loss of R-1 holders and the arrival of
 * closer peers.
 */
import { lpStream } from '@libp2p/utils'
import { logger } from '@libp2p/logger'
import { Key } from 'interface-datastore'
import * as cborg from 'cborg'
import { z } from 'zod'
import { fromString as bytesFromString, toString as bytesToString } from 'uint8arrays'
import { xor } from 'uint8arrays/xor'
import { compare } from 'uint8arrays/compare'
import {
  SET_PROTOCOL, MAX_SET_FRAME_BYTES, MAX_SET_ITEMS_PER_FRAME, MAX_SET_CLOCK_SKEW_MS,
  InvalidSetItemError, UnknownSetNamespaceError, RemoveNotAuthorizedError,
  parseSetKey, setKeyHash, setItemSchema, setRemovalSchema, createRemoveAuth, verifyRemoveAuth, removalId,
  encodeSetMessage, decodeSetRequest, decodeSetResponse, setItemFrameBytes, defaultSetNamespaces, sha256,
  type SetItem, type SetRemoval, type SetRemoveAuth, type SetNamespaceRules, type SetRequest, type SetResponse,
  type SetErrorCode, type AccountKeys
} from '@conf-chat/protocol'
import type { KadDHT } from '@libp2p/kad-dht'
import type { AbortOptions, Connection, Libp2p, PeerId, PeerStore, Stream } from '@libp2p/interface'
import type { Datastore } from 'interface-datastore'
import {
  DEFAULT_SET_REPLICAS, DEFAULT_SET_ITEM_TTL_MS, DEFAULT_SET_MAINTENANCE_INTERVAL_MS, DEFAULT_SET_REQUEST_TIMEOUT_MS,
  DEFAULT_MAX_ITEMS_PER_SET, DEFAULT_QUERY_TIMEOUT_MS, SET_MAX_STREAMS_PER_CONNECTION
} from '../../constants.js'

const log = logger('conf-chat:sets')

export interface SetStoreInit {
  /** How many DHT servers (the closest to a set's key) hold each set (R). @default 5 */
  setReplicas?: number
  /** How long an item lives after it was added, unless its namespace sets its own. @default 30 days */
  setItemTtlMs?: number
  /** How often a holder hands its sets on to the current closest peers, with ±25 % jitter; 0 turns it off. @default 10 min */
  setMaintenanceIntervalMs?: number
  /** Limit for one request to one holder, in ms. @default 10 s */
  setRequestTimeoutMs?: number
  /** Most items a holder keeps in one set; more are refused. @default 10,000 */
  maxItemsPerSet?: number
  /** Limit for one DHT query (finding a set's holders). @default 15 s */
  queryTimeoutMs?: number
  /** Namespaces to serve besides (or instead of) the defaults `cc-mailbox` and `cc-dir`. */
  setNamespaces?: Record<string, SetNamespaceRules>
}

export interface SetStoreComponents {
  peerId: PeerId
  datastore: Datastore
  dht: Pick<KadDHT, 'getClosestPeers' | 'getMode'>
  network: Pick<Libp2p, 'handle' | 'unhandle' | 'dialProtocol' | 'getConnections'>
  peerStore: Pick<PeerStore, 'get'>
  /** The DHT's protocol: peers that announce it (identify) are DHT servers. */
  dhtProtocol: string
}

export interface AddResult {
  /** How many holders were asked. */
  holders: number
  /** For each item id, how many holders now hold it. */
  stored: Record<string, number>
}

export interface RemoveResult {
  holders: number
  /** Holders that accepted the removal. */
  acknowledged: number
}

export interface MaintenanceReport {
  sets: number
  pushedItems: number
  pushedRemovals: number
  pulledRemovals: number
  swept: number
}

/** Some items were stored by no holder; `stored` tells which ones made it where. */
export class SetWriteError extends Error {
  override name = 'SetWriteError'
  constructor (message = 'No holder stored the items', readonly stored: Record<string, number> = {}) { super(message) }
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

/** A holder answered a request with an error response. */
export class SetRequestError extends Error {
  override name = 'SetRequestError'
  constructor (message: string, readonly code: SetErrorCode) { super(message) }
}

const storedRemovalSchema = setRemovalSchema.extend({ expiresAt: z.number() })

const ROOT = '/cc-sets'
/** Page budget: half a frame, so that a page of items plus CBOR overhead always fits. */
const PAGE_BYTES = MAX_SET_FRAME_BYTES / 2
/** A holder that did not answer an add or a listing is asked once more, after this pause. */
const RETRY_DELAY_MS = 500
const pause = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

const indexKey = (h: string): Key => new Key(`${ROOT}/keys/${h}`, false)
const itemsPrefix = (h: string): string => `${ROOT}/items/${h}/`
const tombsPrefix = (h: string): string => `${ROOT}/tombs/${h}/`
const removalsPrefix = (h: string): string => `${ROOT}/removals/${h}/`
const under = (prefix: string, name: string): Key => new Key(prefix + name, false)

function errorCodeOf (err: any): SetErrorCode {
  switch (err?.name) {
    case 'InvalidSetKeyError': return 'invalid-key'
    case 'UnknownSetNamespaceError': return 'unknown-namespace'
    case 'RemoveNotAuthorizedError': return 'unauthorized'
    case 'InvalidSetMessageError': return 'malformed'
    default: return 'internal'
  }
}

export class SetStore {
  private readonly components: SetStoreComponents
  readonly replicas: number
  readonly itemTtlMs: number
  readonly maintenanceIntervalMs: number
  readonly requestTimeoutMs: number
  readonly maxItemsPerSet: number
  readonly queryTimeoutMs: number
  private readonly namespaces = new Map<string, SetNamespaceRules>()
  /** Writes to one set run one at a time, so "keep the first item under an id" holds. */
  private readonly locks = new Map<string, Promise<void>>()
  private readonly counts = new Map<string, number>()
  private readonly lookups = new Map<string, Promise<PeerId[]>>()
  private running = false
  private shutdown = new AbortController()
  private sweepTimer?: NodeJS.Timeout
  private maintenanceTimer?: NodeJS.Timeout
  private maintaining?: Promise<unknown>

  constructor (components: SetStoreComponents, init: SetStoreInit = {}) {
    this.components = components
    this.replicas = init.setReplicas ?? DEFAULT_SET_REPLICAS
    this.itemTtlMs = init.setItemTtlMs ?? DEFAULT_SET_ITEM_TTL_MS
    this.maintenanceIntervalMs = init.setMaintenanceIntervalMs ?? DEFAULT_SET_MAINTENANCE_INTERVAL_MS
    this.requestTimeoutMs = init.setRequestTimeoutMs ?? DEFAULT_SET_REQUEST_TIMEOUT_MS
    this.maxItemsPerSet = init.maxItemsPerSet ?? DEFAULT_MAX_ITEMS_PER_SET
    this.queryTimeoutMs = init.queryTimeoutMs ?? DEFAULT_QUERY_TIMEOUT_MS
    for (const [ns, rules] of Object.entries({ ...defaultSetNamespaces(), ...init.setNamespaces })) this.namespaces.set(ns, rules)
  }

  /** Serve (and accept writes to) sets of namespace `ns` under these rules; replaces earlier rules. */
  registerNamespace (ns: string, rules: SetNamespaceRules): void {
    this.namespaces.set(ns, rules)
  }

  async start (): Promise<void> {
    if (this.running) return
    this.running = true
    this.shutdown = new AbortController()
    await this.components.network.handle(SET_PROTOCOL, this.onStream, {
      maxInboundStreams: SET_MAX_STREAMS_PER_CONNECTION,
      maxOutboundStreams: SET_MAX_STREAMS_PER_CONNECTION
    })
    const shortestTtl = Math.min(this.itemTtlMs, ...[...this.namespaces.values()].map(r => r.itemTtlMs ?? Infinity))
    const sweepEvery = Math.max(250, Math.min(shortestTtl / 4, 10 * 60_000))
    this.sweepTimer = setInterval(() => {
      this.sweep().catch(err => { log.error('sweep failed: %e', err) })
    }, sweepEvery).unref()
    if (this.maintenanceIntervalMs > 0) this.scheduleMaintenance()
  }

  async stop (): Promise<void> {
    if (!this.running) return
    this.running = false
    this.shutdown.abort()
    clearInterval(this.sweepTimer)
    clearTimeout(this.maintenanceTimer)
    await this.components.network.unhandle(SET_PROTOCOL).catch(() => {})
    await this.maintaining?.catch(() => {})
  }

  private scheduleMaintenance (): void {
    const delay = this.maintenanceIntervalMs * (0.75 + Math.random() / 2)
    this.maintenanceTimer = setTimeout(() => {
      this.maintaining = this.maintain({ signal: this.shutdown.signal })
        .then(r => { log('maintenance: %o', r) }, err => { log.error('maintenance failed: %e', err) })
        .finally(() => {
          this.maintaining = undefined
          if (this.running) this.scheduleMaintenance()
        })
    }, delay).unref()
  }

  // ------------------------------------------------------------ client side

  /**
   * Store items on the set's holders. Returns how many holders hold each item; throws
   * InvalidSetItemError (nothing sent) for an invalid item and SetWriteError when some
   * item was stored by no holder.
   */
  async add (setKey: string, items: SetItem[], options: AbortOptions = {}): Promise<AddResult> {
    const rules = this.rulesFor(setKey)
    const now = Date.now()
    for (const item of items) {
      const reason = this.checkItem(setKey, rules, item, now)
      if (reason != null) throw new InvalidSetItemError(`item ${String(item?.id).slice(0, 100)}: ${reason}`)
    }
    const holders = await this.findHolders(setKey, options)
    if (holders.length === 0) throw new NoSetHoldersError()
    const stored: Record<string, number> = Object.fromEntries(items.map(i => [i.id, 0]))
    const failed: Array<{ holder: PeerId, batch: SetItem[] }> = []
    const addTo = async (holder: PeerId, batch: SetItem[]): Promise<boolean> => {
      try {
        const res = await this.send(holder, { type: 'add', setKey, items: batch }, options)
        if (res.type !== 'added') throw unexpected(res)
        for (const id of new Set(res.accepted)) if (id in stored) stored[id] = (stored[id] ?? 0) + 1
        for (const r of res.rejected) log('%p refused item %s of %s: %s', holder, r.id, setKey, r.reason)
        return true
      } catch (err: any) {
        log('could not add to %s on %p: %s', setKey, holder, err.message)
        return false
      }
    }
    await Promise.all(holders.map(async holder => {
      for (const batch of batches(items)) {
        if (!await addTo(holder, batch)) failed.push({ holder, batch })
      }
    }))
    // a busy holder (or one whose connection just dropped) gets one more try when an item
    // reached fewer than half the holders (easy to miss for a reader that cannot reach them
    // all); one holder that is down for good does not make every add wait twice
    const few = (batch: SetItem[]): boolean => batch.some(i => (stored[i.id] ?? 0) < holders.length / 2)
    const again = failed.filter(f => few(f.batch))
    if (again.length > 0 && options.signal?.aborted !== true) {
      await pause(RETRY_DELAY_MS)
      await Promise.all(again.map(async ({ holder, batch }) => await addTo(holder, batch)))
    }
    const lost = Object.entries(stored).filter(([, n]) => n === 0).map(([id]) => id)
    if (lost.length > 0) throw new SetWriteError(`no holder of ${setKey} stored ${lost.length} of ${items.length} items`, stored)
    return { holders: holders.length, stored }
  }

  /**
   * Every valid, unexpired item of the set: the union by id over the local store and all
   * holders, sorted by id. Throws NoSetHoldersError when no holder is found and
   * SetReadError when none of them answered, so "empty" never hides "unreachable".
   */
  async list (setKey: string, options: AbortOptions = {}): Promise<SetItem[]> {
    const rules = this.rulesFor(setKey)
    const byId = new Map<string, SetItem>()
    for (const item of await this.localItems(setKey)) byId.set(item.id, item)
    // readers ask twice as many peers as writers store on: a writer whose lookup was cut
    // short by load may have picked holders a little further from the key
    const found = await this.findHolders(setKey, { ...options, count: this.replicas * 2 })
    if (found.length === 0) throw new NoSetHoldersError()
    const holders = found.filter(p => !p.equals(this.components.peerId))
    let answered = 0
    const readFrom = async (holder: PeerId): Promise<boolean> => {
      try {
        const now = Date.now()
        for await (const item of this.remoteItems(holder, setKey, options)) {
          if (byId.has(item.id)) continue
          const reason = this.checkItem(setKey, rules, item, now)
          if (reason == null) byId.set(item.id, item)
          else log('ignored item %s of %s from %p: %s', item.id, setKey, holder, reason)
        }
        answered++
        return true
      } catch (err: any) {
        log('could not list %s on %p: %s', setKey, holder, err.message)
        return false
      }
    }
    const results = await Promise.all(holders.map(readFrom))
    // a holder that did not answer (busy, or its connection just dropped) may hold the only
    // copy of a fresh item: ask it once more
    const retry = holders.filter((_, i) => results[i] === false)
    if (retry.length > 0 && options.signal?.aborted !== true) {
      await pause(RETRY_DELAY_MS)
      await Promise.all(retry.map(readFrom))
    }
    if (holders.length > 0 && answered === 0 && !await this.holdsSet(setKey)) {
      throw new SetReadError(`none of the ${holders.length} holders of ${setKey} answered`)
    }
    return [...byId.values()].sort((a, b) => a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
  }

  /**
   * Remove items, signed by `signer` (for a mailbox: its owner). Holders delete them and
   * keep tombstones. Throws RemoveNotAuthorizedError if the namespace's rules refuse the
   * signer, SetRemoveError if no holder accepted the removal.
   */
  async remove (setKey: string, ids: string[], signer: Pick<AccountKeys, 'signPublic' | 'signSecret'>, options: AbortOptions = {}): Promise<RemoveResult> {
    const rules = this.rulesFor(setKey)
    const removals: SetRemoval[] = []
    for (let i = 0; i < ids.length; i += MAX_SET_ITEMS_PER_FRAME) {
      const chunk = ids.slice(i, i + MAX_SET_ITEMS_PER_FRAME)
      removals.push({ ids: chunk, auth: createRemoveAuth(setKey, chunk, signer) })
    }
    for (const r of removals) rules.authorizeRemove(setKey, r.ids, r.auth)
    const holders = await this.findHolders(setKey, { ...options, count: this.replicas * 2 }) // as many as a reader asks
    const self = this.components.peerId
    // a stale local copy must learn the removal too, or our own maintenance pushes the items back
    if (!holders.some(p => p.equals(self)) && await this.holdsSet(setKey)) holders.push(self)
    if (holders.length === 0) throw new NoSetHoldersError()
    let acknowledged = 0
    const reasons: string[] = []
    await Promise.all(holders.map(async holder => {
      try {
        for (const r of removals) {
          const res = await this.send(holder, { type: 'remove', setKey, ids: r.ids, auth: r.auth }, options)
          if (res.type !== 'removed') throw unexpected(res)
        }
        acknowledged++
      } catch (err: any) {
        reasons.push(err.message)
        log('could not remove from %s on %p: %s', setKey, holder, err.message)
      }
    }))
    if (acknowledged === 0) throw new SetRemoveError(`no holder of ${setKey} accepted the removal: ${reasons[0] ?? 'no answer'}`)
    return { holders: holders.length, acknowledged }
  }

  /**
   * The set's holders: the R DHT servers closest to the key (kad-dht hashes the key
   * bytes, so the target is sha256(setKey)), ourselves included when we are a server
   * and among them.
   */
  async findHolders (setKey: string, options: AbortOptions & { count?: number } = {}): Promise<PeerId[]> {
    const count = options.count ?? this.replicas
    parseSetKey(setKey)
    options.signal?.throwIfAborted()
    // concurrent writers on one peer share one lookup: a burst of adds costs one DHT query
    let lookup = this.lookups.get(setKey)
    if (lookup == null) {
      lookup = this.lookupHolders(setKey).finally(() => this.lookups.delete(setKey))
      this.lookups.set(setKey, lookup)
    }
    const signal = options.signal
    // each caller gets its own copy of the shared result
    if (signal == null) return (await lookup).slice(0, count)
    return await new Promise<PeerId[]>((resolve, reject) => {
      const onAbort = (): void => { reject(signal.reason) }
      signal.addEventListener('abort', onAbort, { once: true })
      lookup.then(peers => { resolve(peers.slice(0, count)) }, reject).finally(() => { signal.removeEventListener('abort', onAbort) })
    })
  }

  private async lookupHolders (setKey: string): Promise<PeerId[]> {
    const keyBytes = bytesFromString(setKey)
    const target = sha256(keyBytes)
    const found = new Map<string, PeerId>()
    const signal = this.signal({}, this.queryTimeoutMs)
    try {
      for await (const ev of this.components.dht.getClosestPeers(keyBytes, { signal })) {
        if (ev.name === 'FINAL_PEER') found.set(ev.peer.id.toString(), ev.peer.id)
      }
    } catch (err: any) {
      log('closest peers to %s: %s', setKey, err.message)
    }
    // a query cut short by load finds too few peers, and writers and readers would then
    // disagree on the holders: every connected DHT server is a candidate too
    for (const conn of this.components.network.getConnections()) {
      if (conn.status === 'open' && !found.has(conn.remotePeer.toString()) && await this.isDhtServer(conn.remotePeer)) {
        found.set(conn.remotePeer.toString(), conn.remotePeer)
      }
    }
    const self = this.components.peerId
    if (this.components.dht.getMode() === 'server') found.set(self.toString(), self)
    return [...found.values()]
      .map(peer => ({ peer, distance: xor(sha256(peer.toMultihash().bytes), target) }))
      .sort((a, b) => compare(a.distance, b.distance))
      .map(p => p.peer)
  }

  private async isDhtServer (peer: PeerId): Promise<boolean> {
    try {
      return (await this.components.peerStore.get(peer)).protocols.includes(this.components.dhtProtocol)
    } catch {
      return false
    }
  }

  // ------------------------------------------------------------ local store

  /** The unexpired items this peer holds for the set, sorted by id. */
  async localItems (setKey: string): Promise<SetItem[]> {
    const h = setKeyHash(setKey)
    const ttl = this.ttlFor(setKey)
    const now = Date.now()
    const items: SetItem[] = []
    for await (const { value } of this.components.datastore.query({ prefix: itemsPrefix(h) })) {
      const item = decodeStored(value, setItemSchema)
      if (item != null && item.addedAt + ttl > now) items.push(item)
    }
    return items
  }

  /** The keys of the sets this peer holds anything of (items, tombstones or removals). */
  async heldSets (): Promise<string[]> {
    const keys: string[] = []
    for await (const { value } of this.components.datastore.query({ prefix: `${ROOT}/keys/` })) keys.push(bytesToString(value))
    return keys
  }

  private async holdsSet (setKey: string): Promise<boolean> {
    return await this.components.datastore.has(indexKey(setKeyHash(setKey)))
  }

  /** Delete expired items, tombstones and removals; forget sets with nothing left. */
  async sweep (): Promise<number> {
    let swept = 0
    const now = Date.now()
    const ds = this.components.datastore
    for (const setKey of await this.heldSets()) {
      const h = setKeyHash(setKey)
      const ttl = this.ttlFor(setKey)
      swept += await this.withSetLock(h, async () => {
        let deleted = 0
        let left = 0
        for await (const { key, value } of ds.query({ prefix: itemsPrefix(h) })) {
          const item = decodeStored(value, setItemSchema)
          if (item == null || item.addedAt + ttl <= now) { await ds.delete(key); deleted++ } else left++
        }
        for await (const { key, value } of ds.query({ prefix: tombsPrefix(h) })) {
          const expiresAt = decodeStored(value)
          if (typeof expiresAt !== 'number' || expiresAt <= now) await ds.delete(key); else left++
        }
        for await (const { key, value } of ds.query({ prefix: removalsPrefix(h) })) {
          const removal = decodeStored(value, storedRemovalSchema)
          if (removal == null || removal.expiresAt <= now) await ds.delete(key); else left++
        }
        if (left === 0) await ds.delete(indexKey(h))
        this.counts.delete(h)
        return deleted
      })
    }
    if (swept > 0) log('swept %d expired items', swept)
    return swept
  }

  // ------------------------------------------------------------ maintenance

  /**
   * One replication round: for each set held here, find its current holders and give
   * each what it lacks (removals first, both ways, then items), after sweeping expired data.
   */
  async maintain (options: AbortOptions = {}): Promise<MaintenanceReport> {
    const report: MaintenanceReport = { sets: 0, pushedItems: 0, pushedRemovals: 0, pulledRemovals: 0, swept: await this.sweep() }
    const self = this.components.peerId
    for (const setKey of await this.heldSets()) {
      if (options.signal?.aborted === true || !this.running) break
      let rules: SetNamespaceRules
      try { rules = this.rulesFor(setKey) } catch { continue }
      report.sets++
      try {
        const holders = (await this.findHolders(setKey, options)).filter(p => !p.equals(self))
        await Promise.all(holders.map(async peer => {
          try {
            await this.syncWith(peer, setKey, rules, report, options)
          } catch (err: any) {
            log('could not hand %s on to %p: %s', setKey, peer, err.message)
          }
        }))
      } catch (err: any) {
        log('maintenance of %s: %s', setKey, err.message)
      }
    }
    return report
  }

  private async syncWith (peer: PeerId, setKey: string, rules: SetNamespaceRules, report: MaintenanceReport, options: AbortOptions): Promise<void> {
    const theirs = await this.remoteRemovals(peer, setKey, options)
    const theirIds = new Set(theirs.map(r => removalId(r.auth)))
    for (const r of theirs) {
      try {
        if ((await this.acceptRemoval(setKey, rules, r)).fresh) report.pulledRemovals++
      } catch (err: any) {
        log('ignored a removal of %s from %p: %s', setKey, peer, err.message)
      }
    }
    for (const r of await this.localRemovals(setKey)) {
      if (theirIds.has(removalId(r.auth))) continue
      const res = await this.send(peer, { type: 'remove', setKey, ids: r.ids, auth: r.auth }, options)
      if (res.type === 'removed') report.pushedRemovals++
    }
    const held = new Set<string>()
    let after: string | undefined
    do {
      const res = await this.send(peer, { type: 'list', setKey, idsOnly: true, ...(after != null ? { after } : {}) }, options)
      if (res.type !== 'ids') throw unexpected(res)
      for (const id of res.ids) held.add(id)
      after = res.next
    } while (after != null)
    const missing = (await this.localItems(setKey)).filter(i => !held.has(i.id))
    for (const batch of batches(missing)) {
      const res = await this.send(peer, { type: 'add', setKey, items: batch }, options)
      if (res.type !== 'added') throw unexpected(res)
      report.pushedItems += res.accepted.length
    }
  }

  private async localRemovals (setKey: string): Promise<SetRemoval[]> {
    const out: SetRemoval[] = []
    for await (const { value } of this.components.datastore.query({ prefix: removalsPrefix(setKeyHash(setKey)) })) {
      const r = decodeStored(value, storedRemovalSchema)
      if (r != null && r.expiresAt > Date.now()) out.push({ ids: r.ids, auth: r.auth })
    }
    return out
  }

  // ------------------------------------------------------------ serving

  private readonly onStream = async (stream: Stream, connection: Connection): Promise<void> => {
    const signal = AbortSignal.timeout(this.requestTimeoutMs)
    try {
      const lp = lpStream(stream, { maxDataLength: MAX_SET_FRAME_BYTES })
      const frame = await lp.read({ signal })
      let response: SetResponse
      try {
        response = await this.serve(decodeSetRequest(frame.subarray()))
      } catch (err: any) {
        log('refused a set request from %p: %s', connection.remotePeer, err.message)
        response = { type: 'error', code: errorCodeOf(err), message: String(err.message).slice(0, 500) }
      }
      await lp.write(encodeSetMessage(response), { signal })
      await stream.close({ signal })
    } catch (err: any) {
      log('set stream from %p failed: %s', connection.remotePeer, err?.message)
      try { stream.abort(err) } catch {}
    }
  }

  /** Answer one request, from the network or from ourselves as one of the holders. */
  private async serve (req: SetRequest): Promise<SetResponse> {
    const rules = this.rulesFor(req.setKey)
    switch (req.type) {
      case 'add': return await this.acceptItems(req.setKey, rules, req.items)
      case 'list': return await this.listPage(req.setKey, req.after, req.idsOnly === true)
      case 'remove': return { type: 'removed', removed: (await this.acceptRemoval(req.setKey, rules, { ids: req.ids, auth: req.auth })).removed }
      case 'removals': return await this.removalsPage(req.setKey, req.after)
    }
  }

  private async acceptItems (setKey: string, rules: SetNamespaceRules, items: SetItem[]): Promise<SetResponse> {
    const now = Date.now()
    const accepted: string[] = []
    const rejected: Array<{ id: string, reason: string }> = []
    const valid = new Map<string, SetItem>()
    for (const item of items) {
      const reason = this.checkItem(setKey, rules, item, now)
      if (reason != null) rejected.push({ id: String(item.id).slice(0, 100), reason: reason.slice(0, 200) })
      else if (!valid.has(item.id)) valid.set(item.id, item)
    }
    if (valid.size === 0) return { type: 'added', accepted, rejected }
    const h = setKeyHash(setKey)
    const ds = this.components.datastore
    await this.withSetLock(h, async () => {
      let count = await this.itemCount(h)
      const batch = ds.batch()
      let added = 0
      for (const item of valid.values()) {
        if (await this.isTombstoned(h, item.id, now)) { rejected.push({ id: item.id, reason: 'removed' }); continue }
        if (await ds.has(under(itemsPrefix(h), item.id))) { accepted.push(item.id); continue }
        if (count >= this.maxItemsPerSet) { rejected.push({ id: item.id, reason: 'set full' }); continue }
        batch.put(under(itemsPrefix(h), item.id), cborg.encode({ id: item.id, data: item.data, addedAt: item.addedAt }))
        count++
        added++
        accepted.push(item.id)
      }
      if (added === 0) return
      batch.put(indexKey(h), bytesFromString(setKey))
      try {
        await batch.commit()
        this.counts.set(h, count)
      } catch (err) {
        this.counts.delete(h)
        throw err
      }
    })
    return { type: 'added', accepted, rejected }
  }

  /**
   * Verify and apply a signed removal: delete the items, keep tombstones and the removal
   * itself (to hand on) until every item it could name has expired.
   */
  private async acceptRemoval (setKey: string, rules: SetNamespaceRules, removal: SetRemoval): Promise<{ fresh: boolean, removed: number }> {
    const parsed = setRemovalSchema.safeParse(removal)
    if (!parsed.success) throw new RemoveNotAuthorizedError('malformed removal')
    const { ids, auth } = parsed.data
    const now = Date.now()
    const ttl = this.ttlFor(setKey)
    // a removal is kept (and handed on) for a TTL, so it must be accepted for as long;
    // replaying it can only repeat a deletion of ids that never come back
    if (auth.time > now + MAX_SET_CLOCK_SKEW_MS) throw new RemoveNotAuthorizedError('removal signed in the future')
    if (auth.time + ttl <= now) throw new RemoveNotAuthorizedError('removal too old')
    if (!verifyRemoveAuth(setKey, ids, auth)) throw new RemoveNotAuthorizedError('bad removal signature')
    rules.authorizeRemove(setKey, ids, auth)
    const h = setKeyHash(setKey)
    const rid = removalId(auth)
    const expiresAt = auth.time + ttl + MAX_SET_CLOCK_SKEW_MS
    const ds = this.components.datastore
    return await this.withSetLock(h, async () => {
      if (await ds.has(under(removalsPrefix(h), rid))) return { fresh: false, removed: 0 }
      const batch = ds.batch()
      let removed = 0
      for (const id of new Set(ids)) {
        if (await ds.has(under(itemsPrefix(h), id))) { batch.delete(under(itemsPrefix(h), id)); removed++ }
        const tomb = under(tombsPrefix(h), id)
        const previous = decodeStored(await this.read(tomb))
        batch.put(tomb, cborg.encode(Math.max(expiresAt, typeof previous === 'number' ? previous : 0)))
      }
      batch.put(under(removalsPrefix(h), rid), cborg.encode({ ids, auth, expiresAt }))
      batch.put(indexKey(h), bytesFromString(setKey))
      try {
        await batch.commit()
      } finally {
        this.counts.delete(h)
      }
      log('removed %d of %d ids from %s', removed, ids.length, setKey)
      return { fresh: true, removed }
    })
  }

  private async listPage (setKey: string, after: string | undefined, idsOnly: boolean): Promise<SetResponse> {
    const h = setKeyHash(setKey)
    const prefix = itemsPrefix(h)
    const ttl = this.ttlFor(setKey)
    const now = Date.now()
    const ids: string[] = []
    const items: SetItem[] = []
    let bytes = 0
    let last: string | undefined
    let next: string | undefined
    for await (const key of this.components.datastore.queryKeys({ prefix })) {
      const id = key.toString().slice(prefix.length)
      if (after != null && id <= after) continue
      if (idsOnly) {
        if (ids.length >= MAX_SET_ITEMS_PER_FRAME) { next = last; break }
        ids.push(id)
      } else {
        // a sweep may delete the item between the key scan and this read
        const item = decodeStored(await this.read(key), setItemSchema)
        if (item == null || item.addedAt + ttl <= now) { last = id; continue }
        const size = setItemFrameBytes(item)
        if (items.length > 0 && (bytes + size > PAGE_BYTES || items.length >= MAX_SET_ITEMS_PER_FRAME)) { next = last; break }
        bytes += size
        items.push(item)
      }
      last = id
    }
    if (idsOnly) return { type: 'ids', ids, ...(next != null ? { next } : {}) }
    return { type: 'items', items, ...(next != null ? { next } : {}) }
  }

  private async removalsPage (setKey: string, after: string | undefined): Promise<SetResponse> {
    const prefix = removalsPrefix(setKeyHash(setKey))
    const removals: SetRemoval[] = []
    let bytes = 0
    let last: string | undefined
    let next: string | undefined
    for await (const { key, value } of this.components.datastore.query({ prefix })) {
      const rid = key.toString().slice(prefix.length)
      if (after != null && rid <= after) continue
      const r = decodeStored(value, storedRemovalSchema)
      if (r == null || r.expiresAt <= Date.now()) { last = rid; continue }
      const size = r.ids.reduce((n, id) => n + id.length + 2, 150)
      if (removals.length > 0 && (bytes + size > PAGE_BYTES || removals.length >= MAX_SET_ITEMS_PER_FRAME)) { next = last; break }
      bytes += size
      removals.push({ ids: r.ids, auth: r.auth })
      last = rid
    }
    return { type: 'removals', removals, ...(next != null ? { next } : {}) }
  }

  // ------------------------------------------------------------ helpers

  private rulesFor (setKey: string): SetNamespaceRules {
    const { namespace, parts } = parseSetKey(setKey)
    const rules = this.namespaces.get(namespace)
    if (rules == null) throw new UnknownSetNamespaceError(`unknown set namespace ${namespace}`)
    rules.checkKey(parts)
    return rules
  }

  private ttlFor (setKey: string): number {
    try {
      return this.rulesFor(setKey).itemTtlMs ?? this.itemTtlMs
    } catch {
      return this.itemTtlMs
    }
  }

  /** Why an item may not be stored, or undefined if it may. */
  private checkItem (setKey: string, rules: SetNamespaceRules, item: SetItem, now: number): string | undefined {
    const parsed = setItemSchema.safeParse(item)
    if (!parsed.success) return `malformed item: ${parsed.error.issues[0]?.path.join('.') ?? ''} ${parsed.error.issues[0]?.message ?? ''}`.trim()
    if (item.addedAt > now + MAX_SET_CLOCK_SKEW_MS) return 'added in the future'
    if (item.addedAt + (rules.itemTtlMs ?? this.itemTtlMs) <= now) return 'expired'
    try {
      rules.validateItem(setKey, parsed.data)
    } catch (err: any) {
      return String(err.message ?? err)
    }
    return undefined
  }

  private async isTombstoned (h: string, id: string, now: number): Promise<boolean> {
    const expiresAt = decodeStored(await this.read(under(tombsPrefix(h), id)))
    return typeof expiresAt === 'number' && expiresAt > now
  }

  /** A stored value, or empty bytes (which decode as absent) when there is none. */
  private async read (key: Key): Promise<Uint8Array> {
    try {
      return await this.components.datastore.get(key)
    } catch {
      return new Uint8Array()
    }
  }

  private async itemCount (h: string): Promise<number> {
    const cached = this.counts.get(h)
    if (cached != null) return cached
    let n = 0
    for await (const _ of this.components.datastore.queryKeys({ prefix: itemsPrefix(h) })) n++
    this.counts.set(h, n)
    return n
  }

  private async withSetLock<T> (h: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(h) ?? Promise.resolve()
    let release!: () => void
    const gate = new Promise<void>(resolve => { release = resolve })
    const current = previous.then(async () => { await gate })
    this.locks.set(h, current)
    await previous
    try {
      return await fn()
    } finally {
      release()
      if (this.locks.get(h) === current) this.locks.delete(h)
    }
  }

  private async * remoteItems (peer: PeerId, setKey: string, options: AbortOptions): AsyncGenerator<SetItem> {
    let after: string | undefined
    do {
      const res = await this.send(peer, { type: 'list', setKey, ...(after != null ? { after } : {}) }, options)
      if (res.type !== 'items') throw unexpected(res)
      yield * res.items
      after = res.next
    } while (after != null)
  }

  private async remoteRemovals (peer: PeerId, setKey: string, options: AbortOptions): Promise<SetRemoval[]> {
    const out: SetRemoval[] = []
    let after: string | undefined
    do {
      const res = await this.send(peer, { type: 'removals', setKey, ...(after != null ? { after } : {}) }, options)
      if (res.type !== 'removals') throw unexpected(res)
      out.push(...res.removals)
      after = res.next
    } while (after != null)
    return out
  }

  /** One request to one holder; to ourselves without a stream, through the same checks. */
  private async send (holder: PeerId, req: SetRequest, options: AbortOptions): Promise<SetResponse> {
    if (holder.equals(this.components.peerId)) {
      try {
        return await this.serve(req)
      } catch (err: any) {
        return { type: 'error', code: errorCodeOf(err), message: String(err.message) }
      }
    }
    const signal = this.signal(options, this.requestTimeoutMs)
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

  private signal (options: AbortOptions, ms: number): AbortSignal {
    const signals = [AbortSignal.timeout(ms), this.shutdown.signal]
    if (options.signal != null) signals.push(options.signal)
    return AbortSignal.any(signals)
  }
}

function unexpected (res: SetResponse): Error {
  if (res.type === 'error') return new SetRequestError(res.message, res.code)
  return new SetRequestError(`unexpected response ${res.type}`, 'malformed')
}

/** Split items into ADD requests that fit in a frame. */
function batches (items: SetItem[]): SetItem[][] {
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

/** Our own stored values: decoded and, with a schema, checked; anything else reads as absent. */
function decodeStored (value: Uint8Array): unknown
function decodeStored<T> (value: Uint8Array, schema: { safeParse: (v: unknown) => { success: true, data: T } | { success: false } }): T | undefined
function decodeStored<T> (value: Uint8Array, schema?: { safeParse: (v: unknown) => { success: true, data: T } | { success: false } }): unknown {
  let raw: unknown
  try { raw = cborg.decode(value) } catch { return undefined }
  if (schema == null) return raw
  const parsed = schema.safeParse(raw)
  return parsed.success ? parsed.data : undefined
}

export type { SetItem, SetRemoveAuth, SetNamespaceRules }
