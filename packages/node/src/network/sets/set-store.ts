/**
 * The replicated set store: append-only, multi-writer sets (mailboxes, directory shards)
 * held by the R DHT servers closest to each set key and served over
 * `/conf-chat/set/2.0.0`. kad-dht gives a key one value and last-put-wins; here every
 * item has its own id, a holder never replaces an item it holds, and signed removals
 * leave tombstones, so concurrent writers never overwrite each other and a stale replica
 * cannot bring removed items back. Holders hand their sets on to the current closest
 * peers (maintenance), so a set survives the loss of R-1 holders and the arrival of
 * closer peers.
 *
 * This class wires the parts: the client (set-client.ts), the holder's protocol server
 * (set-holder.ts), the on-disk layout (set-layout.ts), replication and the sweeper.
 */
import { fromString as bytesFromString } from 'uint8arrays'
import { SET_PROTOCOL, defaultSetNamespaces, type AccountKeys, type SetItem, type SetNamespaceRules } from '@conf-chat/protocol'
import {
  DEFAULT_SET_REPLICAS, DEFAULT_SET_ITEM_TTL_MS, DEFAULT_SET_MAINTENANCE_INTERVAL_MS, DEFAULT_SET_WELCOME_DELAY_MS, DEFAULT_SET_REQUEST_TIMEOUT_MS,
  DEFAULT_MAX_ITEMS_PER_SET, DEFAULT_MAX_BYTES_PER_SET, DEFAULT_WRITER_LIMITS, DEFAULT_QUERY_TIMEOUT_MS, SET_MAX_STREAMS_PER_CONNECTION
} from '../../constants.js'
import { shutdownController, untilEither } from '../../utils/index.js'
import { DEFAULT_SET_RETRY_DELAY_MS } from './constants.js'
import { SetLayout } from './set-layout.js'
import { SetNamespaces } from './set-namespaces.js'
import { SetHolder } from './set-holder.js'
import { SetRpc } from './set-rpc.js'
import { HolderLookup, type FindHoldersOptions } from './holder-lookup.js'
import { SetClient, type AddOptions, type AddResult, type ListOptions, type RemoveResult } from './set-client.js'
import { SetReplicator, type MaintenanceReport } from './replication.js'
import { SetSweeper } from './sweeper.js'
import { NotResponsibleError, type Responsibility } from '../dht/responsibility.js'
import type { HeldEntry } from '../storage-budget.js'
import type { KadDHT } from '@libp2p/kad-dht'
import type { AbortOptions, ComponentLogger, Libp2p, PeerId, StreamHandler } from '@libp2p/interface'
import type { Datastore } from 'interface-datastore'

export interface SetStoreInit {
  /** How many DHT servers (the closest to a set's key) hold each set (R). @default 5 */
  setReplicas?: number
  /** How long an item lives after it was added, unless its namespace sets its own (ms). @default 30 days */
  setItemTtlMs?: number
  /** How often a holder hands its sets on to the current closest peers, with ±25 % jitter (ms); 0 turns it off. @default 10 min */
  setMaintenanceIntervalMs?: number
  /** How long after a DHT server enters the routing table the sets it now holds are handed to it (ms); 0 turns it off. @default 5 s */
  setWelcomeDelayMs?: number
  /** Limit for one request to one holder, and for a holder answering one (ms). @default 10 s */
  setRequestTimeoutMs?: number
  /** Pause before a holder that did not answer an add or a listing is asked once more (ms). @default 500 */
  setRetryDelayMs?: number
  /** Most items a holder keeps in one set; more are refused. @default 10,000 */
  maxItemsPerSet?: number
  /** Most bytes of item data a holder keeps in one set; more are refused. @default 32 MiB */
  maxBytesPerSet?: number
  /**
   * Most items and bytes one writer may have in one set, for namespaces that tell writers
   * apart and set no limits of their own. @default 2,000 items, 4 MiB
   */
  writerLimits?: { items: number, bytes: number }
  /**
   * A holder takes items and removals of a set only if fewer than this many known peers
   * are closer to its key (see responsibility.ts). @default twice the replica count
   */
  setResponsibleRank?: number
  /** Limit for one DHT query (finding a set's holders) (ms). @default 15 s */
  queryTimeoutMs?: number
  /** Namespaces to serve besides (or instead of) the defaults `cc-mailbox` and `cc-dir`. */
  setNamespaces?: Record<string, SetNamespaceRules>
}

export interface SetStoreComponents {
  peerId: PeerId
  datastore: Pick<Datastore, 'get' | 'has' | 'delete' | 'batch' | 'query' | 'queryKeys'>
  dht: Pick<KadDHT, 'getClosestPeers' | 'getMode'>
  network: Pick<Libp2p, 'handle' | 'unhandle' | 'dialProtocol' | 'getConnections'>
  /** The DHT's protocol: peers that announce it (identify) are DHT servers. */
  /** Whether a connected peer serves the DHT by its own account (dht-servers.ts). */
  isDhtServer: (peer: PeerId) => boolean
  logger: ComponentLogger
  /** The clock for item expiry, tombstones, removal signatures and sweeps, ms since the epoch. @default Date.now */
  now?: () => number
  /** Whether this peer is close enough to a key to hold its set. @default every set is taken */
  responsibility?: Pick<Responsibility, 'isResponsible' | 'isAmongClosest' | 'amongClosest'>
  /** kad-dht's routing table: a DHT server it adds is handed the sets it now holds (see `welcome`). */
  routingTable?: RoutingTableEvents
}

/** The routing table's event of a peer added (kad-dht's RoutingTable). */
export interface RoutingTableEvents {
  addEventListener: (type: 'peer:add', listener: (evt: CustomEvent<PeerId>) => void) => void
  removeEventListener: (type: 'peer:add', listener: (evt: CustomEvent<PeerId>) => void) => void
}

export class SetStore {
  readonly replicas: number
  readonly itemTtlMs: number
  readonly maintenanceIntervalMs: number
  readonly requestTimeoutMs: number
  readonly maxItemsPerSet: number
  readonly queryTimeoutMs: number
  readonly responsibleRank: number
  private readonly network: Pick<Libp2p, 'handle' | 'unhandle'>
  private readonly now: () => number
  private readonly layout: SetLayout
  private readonly namespaces: SetNamespaces
  private readonly holder: SetHolder
  private readonly lookup: HolderLookup
  private readonly client: SetClient
  private readonly replicator: SetReplicator
  private readonly sweeper: SetSweeper
  private readonly routingTable?: RoutingTableEvents
  private running = false
  private shutdown = shutdownController()

  constructor (components: SetStoreComponents, init: SetStoreInit = {}) {
    this.replicas = init.setReplicas ?? DEFAULT_SET_REPLICAS
    this.itemTtlMs = init.setItemTtlMs ?? DEFAULT_SET_ITEM_TTL_MS
    this.maintenanceIntervalMs = init.setMaintenanceIntervalMs ?? DEFAULT_SET_MAINTENANCE_INTERVAL_MS
    this.requestTimeoutMs = init.setRequestTimeoutMs ?? DEFAULT_SET_REQUEST_TIMEOUT_MS
    this.maxItemsPerSet = init.maxItemsPerSet ?? DEFAULT_MAX_ITEMS_PER_SET
    this.queryTimeoutMs = init.queryTimeoutMs ?? DEFAULT_QUERY_TIMEOUT_MS
    const rank = this.responsibleRank = init.setResponsibleRank ?? 2 * this.replicas
    const { responsibility } = components
    const checkResponsible = responsibility == null
      ? undefined
      : (setKey: string): void => { if (!responsibility.isResponsible(bytesFromString(setKey), rank)) throw new NotResponsibleError(setKey, rank) }
    const isCoHolder = responsibility == null
      ? undefined
      : (peer: PeerId, setKey: string): boolean => responsibility.isAmongClosest(peer, bytesFromString(setKey), rank)
    const { peerId, logger } = components
    const now = this.now = components.now ?? Date.now
    this.network = components.network
    this.layout = new SetLayout({ datastore: components.datastore })
    this.namespaces = new SetNamespaces({ itemTtlMs: this.itemTtlMs, namespaces: { ...defaultSetNamespaces(), ...init.setNamespaces } })
    const { layout, namespaces } = this
    const pullRemovals = async (setKey: string): Promise<number> => await this.replicator.pullRemovals(setKey, { signal: this.shutdown.signal })
    this.holder = new SetHolder({ layout, namespaces, logger, now, checkResponsible, isCoHolder, pullRemovals, self: peerId.toString() }, {
      requestTimeoutMs: this.requestTimeoutMs,
      maxItemsPerSet: this.maxItemsPerSet,
      maxBytesPerSet: init.maxBytesPerSet ?? DEFAULT_MAX_BYTES_PER_SET,
      writerLimits: init.writerLimits ?? DEFAULT_WRITER_LIMITS
    })
    const rpc = new SetRpc({
      peerId, network: components.network, answerLocally: async (req, options) => await this.holder.answer(req, options)
    }, { requestTimeoutMs: this.requestTimeoutMs })
    this.lookup = new HolderLookup({
      peerId, dht: components.dht, network: components.network, isDhtServer: components.isDhtServer,
      logger, shutdown: () => this.shutdown.signal, now
    }, { replicas: this.replicas, queryTimeoutMs: this.queryTimeoutMs })
    const findHolders = async (setKey: string, options?: FindHoldersOptions): Promise<PeerId[]> => await this.lookup.findHolders(setKey, options)
    const localItems = async (setKey: string, options?: AbortOptions): Promise<SetItem[]> => await this.localItems(setKey, options)
    this.client = new SetClient({ peerId, namespaces, layout, rpc, findHolders, localItems, logger, now },
      { replicas: this.replicas, retryDelayMs: init.setRetryDelayMs ?? DEFAULT_SET_RETRY_DELAY_MS })
    this.sweeper = new SetSweeper({ layout, namespaces, logger, now })
    // a newcomer among the R closest to a key is one of its holders now
    const holdersAmong = responsibility == null
      ? undefined
      : (setKey: string, peers: PeerId[]): PeerId[] => responsibility.amongClosest(peers, bytesFromString(setKey), this.replicas)
    this.replicator = new SetReplicator({
      peerId, layout, namespaces, holder: this.holder, rpc, findHolders, localItems, logger, now, holdersAmong,
      sweep: async options => await this.sweeper.sweep(options)
    }, { intervalMs: this.maintenanceIntervalMs, welcomeDelayMs: init.setWelcomeDelayMs ?? DEFAULT_SET_WELCOME_DELAY_MS })
    this.routingTable = components.routingTable
  }

  /** The handler of `/conf-chat/set/2.0.0` streams (registered by `start`). */
  readonly onStream: StreamHandler = async (stream, connection) => { await this.holder.handleStream(stream, connection) }

  /** Serve (and accept writes to) sets of namespace `ns` under these rules; replaces earlier rules. */
  registerNamespace (ns: string, rules: SetNamespaceRules): void {
    this.namespaces.register(ns, rules)
  }

  /** The rules namespace `ns` is served under, if it is. */
  namespaceRules (ns: string): SetNamespaceRules | undefined {
    return this.namespaces.rulesOf(ns)
  }

  async start (options: AbortOptions = {}): Promise<void> {
    if (this.running) return
    this.running = true
    this.shutdown = shutdownController()
    await this.network.handle(SET_PROTOCOL, this.onStream, {
      ...options,
      maxInboundStreams: SET_MAX_STREAMS_PER_CONNECTION,
      maxOutboundStreams: SET_MAX_STREAMS_PER_CONNECTION
    })
    this.sweeper.start()
    this.replicator.start()
    this.routingTable?.addEventListener('peer:add', this.onPeerAdded)
  }

  async stop (options: AbortOptions = {}): Promise<void> {
    if (!this.running) return
    this.running = false
    this.shutdown.abort()
    this.sweeper.stop()
    await this.network.unhandle(SET_PROTOCOL, options).catch(() => {})
    this.routingTable?.removeEventListener('peer:add', this.onPeerAdded)
    await this.replicator.stop()
  }

  /**
   * Store items on the set's holders. Returns how many holders hold each item; throws
   * InvalidSetItemError (nothing sent) for an invalid item, NoSetHoldersError, and
   * SetWriteError (with the holders' refusals) when some item was stored by no holder.
   */
  async add (setKey: string, items: SetItem[], options: AddOptions = {}): Promise<AddResult> {
    return await this.client.add(setKey, items, this.untilStopped(options))
  }

  /**
   * Every valid, unexpired item of the set: the union by id over the local store and all
   * holders, sorted by id. Throws NoSetHoldersError when no holder is found and
   * SetReadError when none of them answered, so "empty" never hides "unreachable".
   */
  async list (setKey: string, options: ListOptions = {}): Promise<SetItem[]> {
    return await this.client.list(setKey, this.untilStopped(options))
  }

  /**
   * Remove items, signed by `signer` (for a mailbox: its owner). Holders delete them and
   * keep tombstones. Throws RemoveNotAuthorizedError if the namespace's rules refuse the
   * signer, SetRemoveError if no holder accepted the removal.
   */
  async remove (setKey: string, ids: string[], signer: Pick<AccountKeys, 'signPublic' | 'signSecret'>, options: AbortOptions = {}): Promise<RemoveResult> {
    return await this.client.remove(setKey, ids, signer, this.untilStopped(options))
  }

  /**
   * The set's holders: the R DHT servers closest to the key (`count` of them if given),
   * this peer included when it is a server and among them.
   */
  async findHolders (setKey: string, options: FindHoldersOptions = {}): Promise<PeerId[]> {
    return await this.lookup.findHolders(setKey, options)
  }

  /** The unexpired items this peer holds for the set, sorted by id. */
  async localItems (setKey: string, options: AbortOptions = {}): Promise<SetItem[]> {
    const ttl = this.namespaces.ttlFor(setKey)
    const now = this.now()
    const items: SetItem[] = []
    for await (const { item } of this.layout.items(setKey, options)) {
      if (item != null && item.addedAt + ttl > now) items.push(item)
    }
    return items
  }

  /** What this peer's holder did so far: items it sent to readers. */
  get stats (): { itemsServed: number } {
    return { ...this.holder.counts }
  }

  /** Every item this peer holds, for the storage budget: when it was written, and how to delete it. */
  async * heldItems (options: AbortOptions = {}): AsyncGenerator<HeldEntry> {
    const { layout } = this
    for (const setKey of await layout.heldSets(options)) {
      for await (const { key, item } of layout.items(setKey, options)) {
        // an unreadable item is the oldest of all
        yield {
          time: item?.addedAt ?? 0,
          bytes: (item?.data.length ?? 0) + key.toString().length,
          remove: async () => { await layout.withSetLock(setKey, async () => { await layout.deleteEntry(setKey, key, { item }) }) }
        }
      }
    }
  }

  /** The keys of the sets this peer holds anything of (items, tombstones or removals). */
  async heldSets (options: AbortOptions = {}): Promise<string[]> {
    return await this.layout.heldSets(options)
  }

  /** Delete expired items, tombstones and removals; forget sets with nothing left. Resolves to how many items it deleted. */
  async sweep (options: AbortOptions = {}): Promise<number> {
    return await this.sweeper.sweep(options)
  }

  /**
   * One replication round: for each set held here, find its current holders and give
   * each what it lacks (removals first, both ways, then items), after sweeping expired data.
   */
  async maintain (options: AbortOptions = {}): Promise<MaintenanceReport> {
    return await this.replicator.maintain(this.untilStopped(options))
  }

  /**
   * A DHT server new in the routing table: a few seconds later (`setWelcomeDelayMs`), each
   * set held here that it is now among the R closest to is handed to it.
   */
  welcome (peer: PeerId): void {
    this.replicator.welcome(peer)
  }

  /** The welcome itself, at once, for `peers` (what `welcome` runs after its delay). */
  async welcomeNewcomers (peers: PeerId[], options: AbortOptions = {}): Promise<MaintenanceReport> {
    return await this.replicator.welcomeNewcomers(peers, this.untilStopped(options))
  }

  private readonly onPeerAdded = (evt: CustomEvent<PeerId>): void => { this.welcome(evt.detail) }

  /** The caller's options, also aborted when the store stops. */
  private untilStopped (options: AbortOptions): AbortOptions {
    return { ...options, signal: untilEither(options, this.shutdown.signal) }
  }
}
