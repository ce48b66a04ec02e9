/**
 * Handing sets on: every maintenance interval (with jitter) a holder finds the current
 * holders of each set it holds and gives each what it lacks: removals first, both ways
 * (so a stale holder learns a removal before it could push the removed items back),
 * then the items. A set so survives the loss of R-1 holders and the arrival of closer
 * peers.
 *
 * A DHT server that joins is also welcomed at once, as in Kademlia: a few seconds after
 * it enters this peer's routing table, each set held here that it is now one of the R
 * closest holders of (as far as this peer's table tells) is handed to it the same way,
 * with no lookup. Without this, a set written while the network had few servers (a
 * registration right after the first peers joined) stays on those few until the next
 * round, minutes later, and is gone for its readers if they leave first.
 */
import { LRUCache } from 'lru-cache'
import { removalId, type SetNamespaceRules, type SetRemoval } from '@conf-chat/protocol'
import { batches, type SetRpc } from './set-rpc.js'
import { unexpected } from './set-errors.js'
import { shutdownController } from '../../utils/index.js'
import type { SetHolder } from './set-holder.js'
import type { SetLayout } from './set-layout.js'
import type { SetNamespaces } from './set-namespaces.js'
import type { FindHoldersOptions } from './holder-lookup.js'
import type { AbortOptions, ComponentLogger, Logger, PeerId } from '@libp2p/interface'
import type { SetItem } from '@conf-chat/protocol'

export interface MaintenanceReport {
  sets: number
  pushedItems: number
  pushedRemovals: number
  pulledRemovals: number
  swept: number
}

export interface SetReplicatorComponents {
  peerId: PeerId
  layout: Pick<SetLayout, 'heldSets' | 'removals'>
  namespaces: Pick<SetNamespaces, 'rulesFor'>
  holder: Pick<SetHolder, 'acceptRemoval'>
  rpc: Pick<SetRpc, 'send' | 'ids' | 'removals'>
  findHolders: (setKey: string, options?: FindHoldersOptions) => Promise<PeerId[]>
  /** This peer's own unexpired items of the set. */
  localItems: (setKey: string, options?: AbortOptions) => Promise<SetItem[]>
  /** Delete expired data first, so that none of it is handed on. */
  sweep: (options?: AbortOptions) => Promise<number>
  logger: ComponentLogger
  /** The clock for which removals are still kept, ms since the epoch. */
  now: () => number
  /** Those of `peers` that are among the R closest to the set's key, as far as this peer knows. @default all of them */
  holdersAmong?: (setKey: string, peers: PeerId[]) => PeerId[]
}

export interface SetReplicatorInit {
  /** How often a round runs, ±25 % (ms); 0: never on its own (`maintain` still works). */
  intervalMs: number
  /**
   * How long after a DHT server enters the routing table the sets it now holds are handed
   * to it (ms): servers that join within this time are welcomed together, and a newcomer
   * has finished starting. 0: newcomers wait for the next round. @default 0
   */
  welcomeDelayMs?: number
}

/**
 * Newcomers waiting for their welcome at most: more within one delay (a burst of joins,
 * or a peer churning identities near our sets) are left to the next maintenance round.
 */
const MAX_NEWCOMERS = 64
/** Peers welcomed lately, not welcomed again (kad-dht adds every peer of the peer store again at a restart). */
const WELCOMED_PEERS = 1024
/** Held sets checked between two turns of the event loop in a welcome. */
const SETS_PER_TURN = 200

export class SetReplicator {
  private readonly components: SetReplicatorComponents
  private readonly log: Logger
  private readonly intervalMs: number
  private readonly welcomeDelayMs: number
  private running = false
  private shutdown = shutdownController()
  private timer?: NodeJS.Timeout
  private round?: Promise<unknown>
  /** DHT servers new in the routing table, waiting for their welcome (by id). */
  private readonly newcomers = new Map<string, PeerId>()
  private welcomeTimer?: NodeJS.Timeout
  private welcoming?: Promise<unknown>
  /** Peers welcomed within the last maintenance interval (by id). */
  private readonly welcomed: LRUCache<string, true>

  constructor (components: SetReplicatorComponents, init: SetReplicatorInit) {
    this.components = components
    this.log = components.logger.forComponent('conf-chat:network:sets:replication')
    this.intervalMs = init.intervalMs
    this.welcomeDelayMs = init.welcomeDelayMs ?? 0
    this.welcomed = new LRUCache({ max: WELCOMED_PEERS, ttl: this.intervalMs > 0 ? this.intervalMs : 10 * 60_000 })
  }

  start (): void {
    if (this.running) return
    this.running = true
    this.shutdown = shutdownController()
    if (this.intervalMs > 0) this.schedule()
  }

  /** Stop the timer and wait for a running round to end (it is aborted). */
  async stop (): Promise<void> {
    if (!this.running) return
    this.running = false
    this.shutdown.abort()
    clearTimeout(this.timer)
    clearTimeout(this.welcomeTimer)
    this.welcomeTimer = undefined
    this.newcomers.clear()
    await Promise.all([this.round?.catch(() => {}), this.welcoming?.catch(() => {})])
  }

  /**
   * A DHT server entered the routing table: in `welcomeDelayMs`, each set held here that it
   * is now a holder of is handed to it (`welcomeNewcomers`).
   */
  welcome (peer: PeerId): void {
    if (!this.running || this.welcomeDelayMs <= 0 || peer.equals(this.components.peerId) || this.welcomed.has(peer.toString())) return
    if (this.newcomers.size >= MAX_NEWCOMERS && !this.newcomers.has(peer.toString())) return
    this.newcomers.set(peer.toString(), peer)
    if (this.welcomeTimer == null) this.scheduleWelcome()
  }

  private scheduleWelcome (): void {
    this.welcomeTimer = setTimeout(() => {
      this.welcomeTimer = undefined
      // one welcome at a time: newcomers meanwhile wait for the next
      if (this.welcoming != null) { this.scheduleWelcome(); return }
      const peers = [...this.newcomers.values()]
      this.newcomers.clear()
      for (const peer of peers) this.welcomed.set(peer.toString(), true)
      this.welcoming = this.welcomeNewcomers(peers, { signal: this.shutdown.signal })
        .then(r => { if (r.sets > 0) this.log('welcomed %d newcomers: %o', peers.length, r) }, err => {
          if (this.running) this.log.error('welcome failed: %e', err)
        })
        .finally(() => { this.welcoming = undefined })
    }, this.welcomeDelayMs).unref()
  }

  /**
   * Hand each set held here to those of `peers` that are now among its R closest (as far
   * as this peer's routing table tells; no lookup): removals both ways, then the items
   * they lack, as a round does. A newcomer that fails once (silent, or no set protocol)
   * gets nothing more in this welcome: the next maintenance round tries it again. Only
   * while started; stops early when `options.signal` aborts.
   */
  async welcomeNewcomers (peers: PeerId[], options: AbortOptions = {}): Promise<MaintenanceReport> {
    const report: MaintenanceReport = { sets: 0, pushedItems: 0, pushedRemovals: 0, pulledRemovals: 0, swept: 0 }
    const holdersAmong = this.components.holdersAmong ?? ((_setKey: string, all: PeerId[]) => all)
    let live = peers
    let checked = 0
    for (const setKey of await this.components.layout.heldSets(options)) {
      if (options.signal?.aborted === true || !this.running || live.length === 0) break
      // many sets, few of them the newcomers': the event loop gets a turn now and then
      if (++checked % SETS_PER_TURN === 0) await new Promise(resolve => setImmediate(resolve))
      const holders = holdersAmong(setKey, live)
      if (holders.length === 0) continue
      let rules: SetNamespaceRules
      try { rules = this.components.namespaces.rulesFor(setKey) } catch { continue }
      report.sets++
      const failed = new Set<PeerId>()
      await Promise.all(holders.map(async peer => {
        try {
          await this.syncWith(peer, setKey, rules, report, options)
        } catch (err: any) {
          this.log('could not welcome %p with %s: %s', peer, setKey, err.message)
          failed.add(peer)
        }
      }))
      if (failed.size > 0) live = live.filter(peer => !failed.has(peer))
    }
    return report
  }

  private schedule (): void {
    const wait = this.intervalMs * (0.75 + Math.random() / 2)
    this.timer = setTimeout(() => {
      this.round = this.maintain({ signal: this.shutdown.signal })
        .then(r => { this.log('maintenance: %o', r) }, err => { this.log.error('maintenance failed: %e', err) })
        .finally(() => {
          this.round = undefined
          if (this.running) this.schedule()
        })
    }, wait).unref()
  }

  /**
   * One round: for each set held here, find its current holders and give each what it
   * lacks (removals first, both ways, then items), after sweeping expired data. Only
   * while started; stops early when `options.signal` aborts.
   */
  async maintain (options: AbortOptions = {}): Promise<MaintenanceReport> {
    const report: MaintenanceReport = { sets: 0, pushedItems: 0, pushedRemovals: 0, pulledRemovals: 0, swept: await this.components.sweep(options) }
    for (const setKey of await this.components.layout.heldSets(options)) {
      if (options.signal?.aborted === true || !this.running) break
      let rules: SetNamespaceRules
      try { rules = this.components.namespaces.rulesFor(setKey) } catch { continue }
      report.sets++
      try {
        await this.withOtherHolders(setKey, 'hand on', async peer => { await this.syncWith(peer, setKey, rules, report, options) }, options)
      } catch (err: any) {
        this.log('maintenance of %s: %s', setKey, err.message)
      }
    }
    return report
  }

  /**
   * Take the removals the set's other holders keep (a holder new to a set does this before
   * it serves the set's items: a removal it never got would let an old item come back).
   * Resolves to how many were new here.
   */
  async pullRemovals (setKey: string, options: AbortOptions = {}): Promise<number> {
    const rules = this.components.namespaces.rulesFor(setKey)
    const report = { pulledRemovals: 0 }
    await this.withOtherHolders(setKey, 'take the removals of', async peer => { await this.pullFrom(peer, setKey, rules, report, options) }, options)
    return report.pulledRemovals
  }

  /** Run `work` with each of the set's current holders but this peer, at once; a holder that fails is logged (`what` it was for). */
  private async withOtherHolders (setKey: string, what: string, work: (peer: PeerId) => Promise<void>, options: AbortOptions): Promise<void> {
    const self = this.components.peerId
    const holders = (await this.components.findHolders(setKey, options)).filter(p => !p.equals(self))
    await Promise.all(holders.map(async peer => {
      try {
        await work(peer)
      } catch (err: any) {
        this.log('could not %s %s with %p: %s', what, setKey, peer, err.message)
      }
    }))
  }

  /** The peer's removals of the set, applied here; resolves to their ids. */
  private async pullFrom (peer: PeerId, setKey: string, rules: SetNamespaceRules, report: { pulledRemovals: number }, options: AbortOptions): Promise<Set<string>> {
    const theirs = await this.components.rpc.removals(peer, setKey, options)
    for (const r of theirs) {
      try {
        if ((await this.components.holder.acceptRemoval(setKey, rules, r, options)).fresh) report.pulledRemovals++
      } catch (err: any) {
        this.log('ignored a removal of %s from %p: %s', setKey, peer, err.message)
      }
    }
    return new Set(theirs.map(r => removalId(r.auth)))
  }

  private async syncWith (peer: PeerId, setKey: string, rules: SetNamespaceRules, report: MaintenanceReport, options: AbortOptions): Promise<void> {
    const { rpc } = this.components
    const theirIds = await this.pullFrom(peer, setKey, rules, report, options)
    for (const r of await this.localRemovals(setKey, options)) {
      if (theirIds.has(removalId(r.auth))) continue
      const res = await rpc.send(peer, { type: 'remove', setKey, ids: r.ids, auth: r.auth }, options)
      if (res.type === 'removed') report.pushedRemovals++
    }
    // a holder that does not count this peer among the set's holders lets only the set's
    // owner read it (a mailbox): then it gets every item, and acknowledges those it has
    const held = await rpc.ids(peer, setKey, options).catch((err: any) => {
      if (err?.code === 'unauthorized') return new Set<string>()
      throw err
    })
    const missing = (await this.components.localItems(setKey, options)).filter(i => !held.has(i.id))
    for (const batch of batches(missing)) {
      const res = await rpc.send(peer, { type: 'add', setKey, items: batch }, options)
      if (res.type !== 'added') throw unexpected(res)
      report.pushedItems += res.accepted.length
    }
  }

  private async localRemovals (setKey: string, options: AbortOptions): Promise<SetRemoval[]> {
    const out: SetRemoval[] = []
    const now = this.components.now()
    for await (const { removal } of this.components.layout.removals(setKey, options)) {
      if (removal != null && removal.expiresAt > now) out.push({ ids: removal.ids, auth: removal.auth })
    }
    return out
  }
}
