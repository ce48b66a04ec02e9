/**
 * One read of the items of a set that the reader does not have yet (ListOptions.skip):
 * each holder's ids first; then, from each holder as soon as its listing ends, the items
 * of the ids not skipped that nobody has sent or is sending already, MAX_SET_GET_IDS at a
 * time and SET_GETS_IN_FLIGHT_PER_HOLDER requests at once. So the items of a full mailbox
 * come from all its holders at once, not from the first one in turn (1,000 items were 63
 * GETs one after the other), and a holder that stalls costs the read only what it alone
 * has: ids a holder listed but did not send are asked of the other holders that listed
 * them, one round each.
 */
import { MAX_SET_GET_IDS, type AccountKeys, type SetItem, type SetReadAuth } from '@conf-chat/protocol'
import { SET_GETS_IN_FLIGHT_PER_HOLDER } from './constants.js'
import type { SetRpc } from './set-rpc.js'
import type { AbortOptions, Logger, PeerId } from '@libp2p/interface'

export interface NewItemsReadComponents {
  rpc: Pick<SetRpc, 'ids' | 'get' | 'readAuth'>
  /** Why `item` is refused (the reader's check of what holders send), or undefined. */
  check: (item: SetItem) => string | undefined
  log: Logger
  /** The clock of the log's times (ms). */
  now: () => number
}

export interface NewItemsReadOptions extends AbortOptions {
  /** Ids the reader does not want. */
  skip: (id: string) => boolean
  /** Read as the owner of these keys (ListOptions.readAs). */
  readAs?: Pick<AccountKeys, 'signPublic' | 'signSecret'>
}

export class NewItemsRead {
  private readonly c: NewItemsReadComponents
  private readonly setKey: string
  private readonly options: NewItemsReadOptions
  private readonly found = new Map<string, SetItem>()
  /** ids some holder is being asked for now */
  private readonly asking = new Set<string>()
  /** for each id not found yet, the holders that listed it */
  private readonly listedBy = new Map<string, PeerId[]>()
  /** for each id, the holders asked for it so far */
  private readonly askedOf = new Map<string, Set<PeerId>>()
  /** What each holder was sent to prove the reader (see readAs), once asked; a challenge that failed is asked again. */
  private readonly auths = new Map<string, Promise<SetReadAuth | undefined>>()
  private readonly startedAt: number

  constructor (components: NewItemsReadComponents, setKey: string, options: NewItemsReadOptions) {
    this.c = components
    this.setKey = setKey
    this.options = options
    this.startedAt = components.now()
  }

  /** Items the reader has itself (its own copy of the set): counted as held. */
  addLocal (items: SetItem[]): void {
    for (const item of items) if (!this.options.skip(item.id)) this.found.set(item.id, item)
  }

  /** List `holder`'s ids, then fetch what it listed that nobody has sent or is sending. Throws if the listing fails. */
  async fromHolder (holder: PeerId): Promise<void> {
    const ids = await this.c.rpc.ids(holder, this.setKey, { ...this.options, auth: await this.authFor(holder) })
    const wanted: string[] = []
    for (const id of ids) {
      if (this.options.skip(id) || this.found.has(id)) continue
      this.listedBy.set(id, [...(this.listedBy.get(id) ?? []), holder])
      wanted.push(id)
    }
    this.c.log('%p lists %d ids of %s, %d wanted (%d ms)', holder, ids.size, this.setKey, wanted.length, this.c.now() - this.startedAt)
    await this.fetchFrom(holder, wanted)
  }

  /** What a holder listed and did not send: from another that listed it, one round each, until none is left to ask. */
  async fromOtherHolders (): Promise<void> {
    while (!this.aborted()) {
      const asks = new Map<PeerId, string[]>()
      for (const [id, holders] of this.listedBy) {
        if (this.found.has(id)) continue
        const holder = holders.find(h => this.askedOf.get(id)?.has(h) !== true)
        if (holder != null) asks.set(holder, [...(asks.get(holder) ?? []), id])
      }
      if (asks.size === 0) break
      await Promise.all([...asks].map(async ([holder, ids]) => { await this.fetchFrom(holder, ids) }))
    }
  }

  /** The items found, in id order. */
  items (): SetItem[] {
    return [...this.found.values()].sort(inIdOrder)
  }

  private aborted (): boolean {
    return this.options.signal?.aborted === true
  }

  private async authFor (holder: PeerId): Promise<SetReadAuth | undefined> {
    const { readAs } = this.options
    if (readAs == null) return undefined
    const key = holder.toString()
    let known = this.auths.get(key)
    if (known == null) {
      const asked = this.c.rpc.readAuth(holder, this.setKey, readAs, this.options)
      this.auths.set(key, asked)
      asked.catch(() => { if (this.auths.get(key) === asked) this.auths.delete(key) })
      known = asked
    }
    return await known
  }

  /**
   * Fetch from `holder` what it listed of `ids` and nobody has sent or is sending, a few
   * GETs at once; after a request of it failed, no more (a holder that stalls costs one
   * timeout, and what it listed is asked of the others).
   */
  private async fetchFrom (holder: PeerId, ids: string[]): Promise<void> {
    let failed = false
    let at = 0
    const next = (): string[] => {
      const batch: string[] = []
      while (at < ids.length && batch.length < MAX_SET_GET_IDS) {
        const id = ids[at++] as string
        if (!this.found.has(id) && !this.asking.has(id)) batch.push(id)
      }
      return batch
    }
    await Promise.all(Array.from({ length: SET_GETS_IN_FLIGHT_PER_HOLDER }, async () => {
      for (let batch = next(); batch.length > 0 && !failed && !this.aborted(); batch = next()) {
        if (!await this.fetch(holder, batch)) failed = true
      }
    }))
  }

  /** Ask `holder` for `ids`; keep each valid item it sends. False when the request failed. */
  private async fetch (holder: PeerId, ids: string[]): Promise<boolean> {
    for (const id of ids) {
      this.asking.add(id)
      this.askedOf.set(id, (this.askedOf.get(id) ?? new Set()).add(holder))
    }
    try {
      for (const item of await this.c.rpc.get(holder, this.setKey, ids, { ...this.options, auth: await this.authFor(holder) })) {
        if (!ids.includes(item.id) || this.found.has(item.id)) continue
        const reason = this.c.check(item)
        if (reason == null) this.found.set(item.id, item)
        else this.c.log('ignored item %s of %s from %p: %s', item.id, this.setKey, holder, reason)
      }
      return true
    } catch (err: any) {
      this.c.log('could not get %d items of %s from %p: %s', ids.length, this.setKey, holder, err.message)
      return false
    } finally {
      for (const id of ids) this.asking.delete(id)
    }
  }
}

/** Items in id order. */
export function inIdOrder (a: SetItem, b: SetItem): number {
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0
}
