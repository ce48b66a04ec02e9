/**
 * The writing and reading side of the set store: add items to, list, and remove items
 * from a set on its holders. A write goes to the R closest servers, a read asks twice as
 * many and takes the union (where holders keep different items under one id, the one
 * most of them keep); a holder that did not answer is asked once more.
 */
import {
  MAX_SET_ITEMS_PER_FRAME, InvalidSetItemError, createRemoveAuth, refusal, bytesEqual,
  type AccountKeys, type Refusal, type SetItem, type SetNamespaceRules, type SetRemoval
} from '@conf-chat/protocol'
import { delay } from '../../utils/index.js'
import { ITEM_UNCHECKED, NoSetHoldersError, SetReadError, SetRemoveError, SetWriteError, itemRefusal, unexpected } from './set-errors.js'
import { batches, type SetRpc } from './set-rpc.js'
import { NewItemsRead, inIdOrder } from './new-items-read.js'
import type { FindHoldersOptions } from './holder-lookup.js'
import type { SetLayout } from './set-layout.js'
import type { SetNamespaces } from './set-namespaces.js'
import type { AbortOptions, ComponentLogger, Logger, PeerId } from '@libp2p/interface'

export interface AddResult {
  /** How many holders were asked. */
  holders: number
  /** For each item id, how many holders now hold it. */
  stored: Record<string, number>
}

export interface AddOptions extends AbortOptions {
  /**
   * Reuse this peer's lookup of the set's holders if it is at most this old (ms), as a
   * periodic read does (ListOptions.holdersMaxAgeMs), instead of a new one. @default 0
   */
  holdersMaxAgeMs?: number
}

export interface RemoveResult {
  holders: number
  /** Holders that accepted the removal. */
  acknowledged: number
}

export interface ListOptions extends AbortOptions {
  /**
   * A periodic read: reuse the holders this peer found for the set at most this long ago
   * (ms) instead of looking them up again; if one of them does not answer, the read looks
   * them up afresh. @default 0 (a new lookup)
   */
  holdersMaxAgeMs?: number
  /**
   * Ids the reader has already and does not want again: the read lists the holders' ids
   * first and fetches only the items of the other ids (one copy each, from a holder that
   * listed it). Without it, every holder sends every item and the version most holders
   * keep under an id wins.
   */
  skip?: (id: string) => boolean
  /**
   * Read as the owner of these keys: each holder gives a nonce to sign first (a mailbox's
   * holders let only its owner, and the set's other holders, read it).
   */
  readAs?: Pick<AccountKeys, 'signPublic' | 'signSecret'>
  /**
   * The reader's own check of each item a holder sends, in place of the namespace's
   * (throws to refuse the item, which is then asked of another holder). For a reader that
   * can check more than a holder can, at less cost: a mailbox's owner opens a sealed
   * envelope and checks its sender's signature instead of the pair key's.
   */
  validateItem?: SetNamespaceRules['validateItem']
}

export interface SetClientComponents {
  peerId: PeerId
  namespaces: Pick<SetNamespaces, 'rulesFor' | 'ttlFor' | 'checkItem'>
  layout: Pick<SetLayout, 'holdsSet'>
  rpc: Pick<SetRpc, 'send' | 'items' | 'ids' | 'get' | 'readAuth'>
  findHolders: (setKey: string, options?: FindHoldersOptions) => Promise<PeerId[]>
  /** This peer's own unexpired items of the set (a reader's union includes them). */
  localItems: (setKey: string, options?: AbortOptions) => Promise<SetItem[]>
  logger: ComponentLogger
  /** The clock for item expiry and removal signatures, ms since the epoch. */
  now: () => number
}

export interface SetClientInit {
  /** How many holders a set has (R); readers and removers ask twice as many. */
  replicas: number
  /** Pause before asking a holder that did not answer once more (ms). */
  retryDelayMs: number
}

/** A holder's refusal of an item it could not check with the network yet: asked once more, as a silent holder is. */
const UNCHECKED_REFUSAL = itemRefusal(ITEM_UNCHECKED).code

export class SetClient {
  private readonly components: SetClientComponents
  private readonly log: Logger
  private readonly replicas: number
  private readonly retryDelayMs: number

  constructor (components: SetClientComponents, init: SetClientInit) {
    this.components = components
    this.log = components.logger.forComponent('conf-chat:network:sets:client')
    this.replicas = init.replicas
    this.retryDelayMs = init.retryDelayMs
  }

  /**
   * Store items on the set's holders. Returns how many holders hold each item; throws
   * InvalidSetItemError (nothing sent) for an invalid item and SetWriteError (with the
   * holders' refusals) when some item was stored by no holder.
   */
  async add (setKey: string, items: SetItem[], options: AddOptions = {}): Promise<AddResult> {
    const { namespaces, rpc } = this.components
    const rules = namespaces.rulesFor(setKey)
    const now = this.components.now()
    for (const item of items) {
      const reason = namespaces.checkItem(setKey, rules, item, now)
      if (reason != null) throw new InvalidSetItemError(`item ${String(item?.id).slice(0, 100)}: ${reason}`)
    }
    const holders = await this.components.findHolders(setKey, { signal: options.signal, maxAgeMs: options.holdersMaxAgeMs })
    if (holders.length === 0) throw new NoSetHoldersError()
    const stored: Record<string, number> = Object.fromEntries(items.map(i => [i.id, 0]))
    /** each holder's refusal of each item: its answer to the last try */
    const refused = new Map<string, Map<string, Refusal>>()
    /** what to send once more after the pause: batches that failed, items refused for now */
    const failed: Array<{ holder: PeerId, batch: SetItem[] }> = []
    const addTo = async (holder: PeerId, batch: SetItem[]): Promise<void> => {
      try {
        const res = await rpc.send(holder, { type: 'add', setKey, items: batch }, options)
        if (res.type !== 'added') throw unexpected(res)
        for (const id of new Set(res.accepted)) {
          if (Object.hasOwn(stored, id)) stored[id] = (stored[id] ?? 0) + 1
          refused.get(id)?.delete(holder.toString())
        }
        const unchecked = new Set<string>()
        for (const r of res.rejected) {
          this.log('%p refused item %s of %s: %s', holder, r.id, setKey, r.reason)
          if (!Object.hasOwn(stored, r.id)) continue
          if (r.code === UNCHECKED_REFUSAL) unchecked.add(r.id)
          let byHolder = refused.get(r.id)
          if (byHolder == null) refused.set(r.id, byHolder = new Map())
          byHolder.set(holder.toString(), refusal(r.code, r.reason))
        }
        if (unchecked.size > 0) failed.push({ holder, batch: batch.filter(i => unchecked.has(i.id)) })
      } catch (err: any) {
        this.log('could not add to %s on %p: %s', setKey, holder, err.message)
        failed.push({ holder, batch })
      }
    }
    await Promise.all(holders.map(async holder => {
      for (const batch of batches(items)) await addTo(holder, batch)
    }))
    // a busy holder (or one whose connection just dropped), and one that could not check an
    // item yet (the writer's fresh account not readable there yet), gets one more try when
    // an item reached fewer than half the holders (easy to miss for a reader that cannot
    // reach them all); one holder that is down for good does not make every add wait twice
    const few = (item: SetItem): boolean => (stored[item.id] ?? 0) < holders.length / 2
    const again = failed.map(f => ({ holder: f.holder, batch: f.batch.filter(few) })).filter(f => f.batch.length > 0)
    if (again.length > 0 && await this.pause(options)) {
      await Promise.all(again.map(async ({ holder, batch }) => { await addTo(holder, batch) }))
    }
    const refusals: Record<string, Refusal[]> = {}
    for (const [id, byHolder] of refused) if (byHolder.size > 0) refusals[id] = [...byHolder.values()]
    const lost = Object.entries(stored).filter(([, n]) => n === 0).map(([id]) => id)
    if (this.log.enabled) this.log('added %d items to %s: each on %s of %d holders', items.length, setKey, [...new Set(Object.values(stored))].join('/'), holders.length)
    if (lost.length > 0) throw new SetWriteError(`no holder of ${setKey} stored ${lost.length} of ${items.length} items`, stored, refusals)
    return { holders: holders.length, stored }
  }

  /**
   * Every valid, unexpired item of the set: the union by id over the local store and all
   * holders, sorted by id. Throws NoSetHoldersError when no holder is found and
   * SetReadError when none of them answered, so "empty" never hides "unreachable".
   */
  async list (setKey: string, options: ListOptions = {}): Promise<SetItem[]> {
    if (options.skip != null) return await this.listNew(setKey, options.skip, options)
    const { namespaces, rpc } = this.components
    const rules = this.readerRules(setKey, options)
    // holders keep the first item they get under an id, so two holders may keep different
    // items under one id (one of them missed the first): the version most holders keep wins
    const byId = new Map<string, Array<{ item: SetItem, votes: number }>>()
    /** Counts `item` as one more holder's vote; a version not seen yet is checked first (its refusal is returned). */
    const count = (item: SetItem, check?: () => string | undefined): string | undefined => {
      const versions = byId.get(item.id) ?? []
      const same = versions.find(v => v.item.addedAt === item.addedAt && bytesEqual(v.item.data, item.data))
      if (same != null) { same.votes++; return undefined }
      const reason = check?.()
      if (reason != null) return reason
      versions.push({ item, votes: 1 })
      byId.set(item.id, versions)
      return undefined
    }
    for (const item of await this.components.localItems(setKey, options)) count(item)
    // one vote per holder and id: a holder that sends an id twice (or a listing asked again
    // after it broke off) does not count twice
    const votes = new Map<string, Set<string>>()
    await this.answeringHolders(setKey, options, async holder => {
      const voted = votes.get(holder.toString()) ?? new Set<string>()
      votes.set(holder.toString(), voted)
      const now = this.components.now()
      const auth = options.readAs != null ? await rpc.readAuth(holder, setKey, options.readAs, options) : undefined
      for await (const item of rpc.items(holder, setKey, { ...options, auth })) {
        if (voted.has(item.id)) continue
        voted.add(item.id)
        const reason = count(item, () => namespaces.checkItem(setKey, rules, item, now))
        if (reason != null) this.log('ignored item %s of %s from %p: %s', item.id, setKey, holder, reason)
      }
    })
    // (on a tie the version read first: our own, then the first holder's)
    const chosen = [...byId.values()].map(versions => versions.reduce((a, b) => b.votes > a.votes ? b : a).item)
    return chosen.sort(inIdOrder)
  }

  /**
   * Run `read` on each holder of the set (the 2R closest, this peer left out), in
   * parallel; a holder that failed is asked once more after a pause. With
   * `holdersMaxAgeMs`, holders found a while ago are reused, and if one of them is silent
   * the closest peers are looked up afresh and the new ones read too. Resolves to each
   * holder that answered with what `read` gave; throws NoSetHoldersError when no holder is
   * found and SetReadError when none answered (and this peer holds nothing of the set),
   * so that "empty" never hides "unreachable".
   */
  private async answeringHolders<T> (setKey: string, options: ListOptions, read: (holder: PeerId) => Promise<T>): Promise<Array<[PeerId, T]>> {
    // readers ask twice as many peers as writers store on: a writer whose lookup was cut
    // short by load may have picked holders a little further from the key
    const reusing = (options.holdersMaxAgeMs ?? 0) > 0
    const found = await this.components.findHolders(setKey, { signal: options.signal, count: this.replicas * 2, maxAgeMs: options.holdersMaxAgeMs })
    if (found.length === 0) throw new NoSetHoldersError()
    const holders = found.filter(p => !p.equals(this.components.peerId))
    const answers: Array<[PeerId, T]> = []
    const readFrom = async (holder: PeerId): Promise<boolean> => {
      try {
        answers.push([holder, await read(holder)])
        return true
      } catch (err: any) {
        this.log('could not list %s on %p: %s', setKey, holder, err.message)
        return false
      }
    }
    const results = await Promise.all(holders.map(readFrom))
    // a holder that did not answer (busy, or its connection just dropped) may hold the only
    // copy of a fresh item: ask it once more
    const retry = holders.filter((_, i) => results[i] === false)
    if (retry.length > 0 && await this.pause(options)) await Promise.all(retry.map(readFrom))
    // holders found a while ago, one of them silent now: it may have left, and the set's
    // items moved to the peers that are closest now, so find those and read them
    if (reusing && answers.length < holders.length && options.signal?.aborted !== true) {
      const fresh = await this.components.findHolders(setKey, { signal: options.signal, count: this.replicas * 2 })
      const asked = new Set(holders.map(h => h.toString()))
      const others = fresh.filter(p => !p.equals(this.components.peerId) && !asked.has(p.toString()))
      holders.push(...others)
      await Promise.all(others.map(readFrom))
    }
    // (a local read, not under the caller's signal: a caller that gave up still learns that nobody answered)
    if (holders.length > 0 && answers.length === 0 && !await this.components.layout.holdsSet(setKey)) {
      throw new SetReadError(`none of the ${holders.length} holders of ${setKey} answered`)
    }
    return answers
  }

  /** The set's rules, with the reader's own item check where it gives one (ListOptions.validateItem). */
  private readerRules (setKey: string, options: ListOptions): SetNamespaceRules {
    const rules = this.components.namespaces.rulesFor(setKey)
    return options.validateItem == null ? rules : { ...rules, validateItem: options.validateItem }
  }

  /** `list` with `skip`: ids first, then only the items not skipped, from every holder at once (see NewItemsRead). Throws as `list` does. */
  private async listNew (setKey: string, skip: (id: string) => boolean, options: ListOptions): Promise<SetItem[]> {
    const { namespaces, rpc } = this.components
    const now = (): number => this.components.now()
    const rules = this.readerRules(setKey, options)
    const started = now()
    const read = new NewItemsRead({ rpc, check: item => namespaces.checkItem(setKey, rules, item, now()), log: this.log, now }, setKey, { ...options, skip })
    read.addLocal(await this.components.localItems(setKey, options))
    await this.answeringHolders(setKey, options, async holder => { await read.fromHolder(holder) })
    await read.fromOtherHolders()
    const items = read.items()
    this.log('read %d new items of %s in %d ms', items.length, setKey, now() - started)
    return items
  }

  /**
   * Remove items, signed by `signer` (for a mailbox: its owner). Holders delete them and
   * keep tombstones. Throws RemoveNotAuthorizedError if the namespace's rules refuse the
   * signer, SetRemoveError if no holder accepted the removal.
   */
  async remove (setKey: string, ids: string[], signer: Pick<AccountKeys, 'signPublic' | 'signSecret'>, options: AbortOptions = {}): Promise<RemoveResult> {
    const rules = this.components.namespaces.rulesFor(setKey)
    const now = this.components.now()
    const removals: SetRemoval[] = []
    for (let i = 0; i < ids.length; i += MAX_SET_ITEMS_PER_FRAME) {
      const chunk = ids.slice(i, i + MAX_SET_ITEMS_PER_FRAME)
      removals.push({ ids: chunk, auth: createRemoveAuth(setKey, chunk, signer, now) })
    }
    for (const r of removals) rules.authorizeRemove(setKey, r.ids, r.auth)
    const holders = await this.components.findHolders(setKey, { ...options, count: this.replicas * 2 }) // as many as a reader asks
    const self = this.components.peerId
    // a stale local copy must learn the removal too, or our own maintenance pushes the items back
    if (!holders.some(p => p.equals(self)) && await this.components.layout.holdsSet(setKey, options)) holders.push(self)
    if (holders.length === 0) throw new NoSetHoldersError()
    let acknowledged = 0
    const reasons: string[] = []
    await Promise.all(holders.map(async holder => {
      try {
        for (const r of removals) {
          const res = await this.components.rpc.send(holder, { type: 'remove', setKey, ids: r.ids, auth: r.auth }, options)
          if (res.type !== 'removed') throw unexpected(res)
        }
        acknowledged++
      } catch (err: any) {
        reasons.push(err.message)
        this.log('could not remove from %s on %p: %s', setKey, holder, err.message)
      }
    }))
    if (acknowledged === 0) throw new SetRemoveError(`no holder of ${setKey} accepted the removal: ${reasons[0] ?? 'no answer'}`)
    return { holders: holders.length, acknowledged }
  }

  /** The pause before asking again; false when the caller gave up meanwhile (then nobody is asked again). */
  private async pause (options: AbortOptions): Promise<boolean> {
    const aborted = (): boolean => options.signal?.aborted === true
    if (aborted()) return false
    await delay(this.retryDelayMs, options).catch(() => {})
    return !aborted()
  }
}
