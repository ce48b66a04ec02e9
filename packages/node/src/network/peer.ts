/**
 * A conf-chat peer: a libp2p node in the project's own Kademlia DHT (put together in
 * libp2p-node.ts), with a persistent identity and datastore under its data directory, the
 * signed record store, the set store, and a bootstrap loop that keeps trying until it
 * reaches the network.
 */
import '../polyfill.js'
import { join } from 'node:path'
import { mkdir } from 'node:fs/promises'
import { TypedEventEmitter, type AbortOptions, type ComponentLogger, type Logger, type PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { defaultLogger } from '@libp2p/logger'
import { quietPeerLogger } from './quiet-logger.js'
import { ChatDatastore, DHT_RECORD_PREFIX, loadOrCreatePeerKey } from '../storage/index.js'
import { RecordStore, findPutTargets, type RecordStoreInit } from './records/index.js'
import { SetStore, SET_ITEMS_PREFIX, type RoutingTableEvents, type SetStoreInit } from './sets/index.js'
import { StorageBudget } from './storage-budget.js'
import { DhtServers } from './dht/dht-servers.js'
import { DhtService, Responsibility, type DhtServiceStats, type RoutingView } from './dht/index.js'
import { ConnectionLiveness } from './liveness.js'
import { ConnectionTrimmer, type ConnectionTrimmerInit } from './connection-trimmer.js'
import { InboundGate, INBOUND_GATE } from './inbound-gate.js'
import { parseBootstrapAddrs } from './addresses.js'
import type { HolePunchStats } from './hole-punch.js'
import { isRelayed, type RelayLimits, type Reachability } from './relay.js'
import type { Reached } from './reachability.js'
import { ReachabilityKeeper } from './reachability-keeper.js'
import { joinTargets, rememberedPeers } from './join-targets.js'
import { createChatLibp2p, kadOptions, type ChatLibp2p } from './libp2p-node.js'
import { ownerCheck, ownedDirectoryRules, registeredSenderMailboxRules, DIRECTORY_SET_NAMESPACE, MAILBOX_SET_NAMESPACE } from './set-rules.js'
import { NotStartedError } from '../errors.js'
import { delay, settledWithin, timeLimit } from '../utils/index.js'
import {
  DHT_PROTOCOL, DHT_TABLE_REFRESH_INTERVAL_MS, DEFAULT_HOST, BOOTSTRAP_RETRY_MIN_MS, BOOTSTRAP_RETRY_MAX_MS, DEFAULT_STORAGE_BUDGET_BYTES
} from '../constants.js'

export type { ChatLibp2p } from './libp2p-node.js'

/** A peer that became a DHT server at join looks itself up again this much later (identify push waits 1 s to gather changes). */
const RELOOKUP_AFTER_SERVING_MS = 5_000
/** How long a stop waits for the puts still going on to other holders after their write quorum (RecordStore.settled). */
const STOP_SETTLE_MS = 2_000


export interface ChatPeerInit extends RecordStoreInit, SetStoreInit {
  /** Holds the identity key (`peer-key`) and the datastore (`datastore/`). */
  dataDir: string
  /** Address to listen on (IPv4 or IPv6). @default '127.0.0.1' */
  host?: string
  /** TCP port; 0 picks a free one. @default 0 */
  port?: number
  /** Multiaddrs of peers to join through. */
  bootstrap?: string[]
  /** Take part in the DHT as a client only (store nothing, answer no queries). @default false (true while `reachability` is not `public`: until a dial-back says the peer is reachable) */
  clientMode?: boolean
  /**
   * Whether other peers can dial this one. `private` (behind a NAT): the peer is a DHT
   * client, keeps reservations on two relays (relay.ts) and is dialled through them.
   * `auto`: a DHT client until DHT servers it joined through dial it back (reachability.ts),
   * then `public` or `private` as they found, again at each join.
   * @default 'public'
   */
  reachability?: Reachability
  /**
   * With `reachability: 'auto'`, a peer the dial-back finds not reachable asks its home
   * router (UPnP) to forward a port, and is checked again at that port (upnp.ts).
   * @default false
   */
  upnp?: boolean
  /** Serve as a circuit relay for peers that are not reachable, with these limits (`{}`: the defaults). @default off */
  relay?: Partial<RelayLimits>
  /** Where the peer's components log. @default a logger prefixed with the peer id */
  logger?: ComponentLogger
  /** How many connections the peer keeps (low and high water marks, grace period). */
  connections?: Omit<ConnectionTrimmerInit, 'now'>
  /**
   * Most bytes of DHT records and set items the peer holds for others; past it, the
   * oldest are deleted (storage-budget.ts). @default 512 MiB
   */
  storageBudgetBytes?: number
  /**
   * The routing-table size from which only peers this one is connected to are offered to
   * it, not every peer heard of in a lookup's answers (see DhtServiceInit's
   * `tableFromConnections`). @default kad-dht's k (20)
   */
  tableFromConnections?: number
}

export interface ChatPeerEvents {
  /** Connected to the network through `via` (a bootstrap address or a remembered peer). */
  'network:joined': CustomEvent<{ via: string }>
  /** No bootstrap address and no remembered peer answered; trying again after `retryInMs`. */
  'network:unreachable': CustomEvent<{ tried: string[], retryInMs: number }>
  /** The last connection closed: the peer dials its bootstrap and remembered peers again
   * (`network:joined` follows once one answers). */
  'network:lost': CustomEvent<Record<string, never>>
  /** A dial-back check (reachability `auto`) found whether other peers can dial this one. */
  'network:reachability': CustomEvent<{ reached: 'public' | 'private' }>
  /** The addresses at which this peer can be dialled changed (a relay reservation made or lost). */
  'network:addresses': CustomEvent<{ addrs: string[] }>
}

export type PeerStatus = 'stopped' | 'starting' | 'started' | 'stopping'

export class ChatPeer extends TypedEventEmitter<ChatPeerEvents> {
  readonly init: ChatPeerInit
  status: PeerStatus = 'stopped'
  /** True while the peer is part of the network: it reached another peer and has not lost
   * every connection since. */
  joined = false
  /** Whether the peer has joined since it started (a join after that is a rejoin). */
  private joinedOnce = false
  private _libp2p?: ChatLibp2p
  private _records?: RecordStore
  private _sets?: SetStore
  private datastore?: ChatDatastore
  private dht?: DhtService
  private liveness?: ConnectionLiveness
  private trimmer?: ConnectionTrimmer
  private budget?: StorageBudget
  private inboundGate?: InboundGate
  /** This peer's IPv4 address as other hosts see it (identify's observed address), when it is not its own. */
  private reach?: ReachabilityKeeper
  private servers?: DhtServers
  private readonly bootstrapAddrs: Multiaddr[]
  private bootstrapAbort?: AbortController
  /** The running join loop, if any (one at a time). */
  private joining?: Promise<void>
  private _logger?: ComponentLogger
  private log: Logger = defaultLogger().forComponent('conf-chat:network:peer')

  constructor (init: ChatPeerInit) {
    super()
    this.init = init
    this.bootstrapAddrs = parseBootstrapAddrs(init.bootstrap ?? [])
  }

  get libp2p (): ChatLibp2p { return started(this._libp2p) }

  get records (): RecordStore { return started(this._records) }

  /** The replicated append-only sets (mailboxes, directory shards). */
  get sets (): SetStore { return started(this._sets) }

  /** Loggers for the components of this peer: each line starts with the peer id, so the
   * logs of many peers in one process can be told apart. */
  get logger (): ComponentLogger { return started(this._logger) }

  /** Whether this peer stores records and sets for others (a DHT server). */
  isDhtServer (): boolean { return this.libp2p.services.dht.getMode() === 'server' }

  get peerId (): PeerId { return this.libp2p.peerId }

  /** Whether `peer` is in this peer's DHT routing table (only DHT servers are). */
  async inRoutingTable (peer: PeerId): Promise<boolean> {
    const table = (this.libp2p.services.dht as unknown as { routingTable?: { find: (p: PeerId) => Promise<PeerId | undefined> } }).routingTable
    return (await table?.find(peer)) != null
  }

  /** The DHT wiring's counters (pooled streams, closer peers filtered). */
  get dhtStats (): DhtServiceStats { return started(this.dht).stats }

  /** Half-open inbound connections admitted, upgraded, and closed to make room (inbound-gate.ts). */
  get inboundStats (): InboundGate['counts'] { return started(this.inboundGate).counts }

  /** Bytes of DHT records and set items held for others, and the budget they are kept under (storage-budget.ts). */
  get storage (): { heldBytes: number, budgetBytes: number } {
    return { heldBytes: started(this.datastore).heldBytes ?? 0, budgetBytes: started(this.budget).budgetBytes }
  }

  /** Trims and connections closed by the connection trimmer. */
  get trimStats (): ConnectionTrimmer['counts'] { return started(this.trimmer).counts }

  get multiaddrs (): Multiaddr[] { return this.libp2p.getMultiaddrs() }

  /** Hole punching so far (a `private` peer only). */
  get punchStats (): HolePunchStats | undefined { return this.libp2p.services.punch?.stats }

  async start (): Promise<this> {
    if (this.status !== 'stopped') return this
    this.status = 'starting'
    const { dataDir, host = DEFAULT_HOST, port = 0, reachability = 'public' } = this.init
    const clientMode = this.init.clientMode ?? reachability !== 'public'
    try {
      await mkdir(dataDir, { recursive: true })
      const privateKey = await loadOrCreatePeerKey(dataDir)
      const logger = this._logger = this.init.logger ?? quietPeerLogger(peerIdFromPrivateKey(privateKey))
      this.log = logger.forComponent('conf-chat:network:peer')
      const reach = this.reach = new ReachabilityKeeper({
        setting: reachability,
        host,
        fixedMode: this.init.clientMode != null,
        dhtProtocol: DHT_PROTOCOL,
        isDhtServer: peer => this.servers?.has(peer) === true,
        running: () => this.status === 'started',
        changed: reached => { this.safeDispatch('network:reachability', { reached }) },
        // a server now: looked up again once the peers it met have heard (identify push)
        // that it serves, so that one that found out at the same moment has it in its table
        switched: mode => {
          const signal = this.bootstrapAbort?.signal
          if (mode === 'server') setTimeout(() => { if (signal?.aborted === false) void this.lookupSelf(signal) }, RELOOKUP_AFTER_SERVING_MS).unref()
        },
        log: this.log
      })
      this.datastore = new ChatDatastore(join(dataDir, 'datastore'), { logger })
      await this.datastore.open()
      await this.datastore.countHeld([DHT_RECORD_PREFIX + '/', SET_ITEMS_PREFIX])
      const dht = this.dht = new DhtService({
        kad: kadOptions(clientMode, logger),
        // an RPC that timed out with no answer: is the connection dead? (liveness.ts)
        onStall: peer => { this.liveness?.suspect(peer) },
        tableRefreshIntervalMs: DHT_TABLE_REFRESH_INTERVAL_MS,
        tableFromConnections: this.init.tableFromConnections
      })
      const gate = this.inboundGate = new InboundGate(INBOUND_GATE, logger.forComponent('conf-chat:network:inbound-gate'))
      const libp2p = await createChatLibp2p({
        privateKey,
        logger,
        datastore: this.datastore,
        host,
        port,
        reachability,
        dht,
        gate,
        relay: this.init.relay,
        upnp: this.init.upnp,
        publicIp: () => reach.observedIp,
        serving: () => this._libp2p?.services.dht.getMode() === 'server'
      })
      this._libp2p = libp2p
      // the join dials after this, so every peer's identify is seen
      const servers = this.servers = new DhtServers(libp2p, DHT_PROTOCOL)
      this.liveness = new ConnectionLiveness({
        ping: async (peer, options) => await libp2p.services.ping.ping(peer, options),
        connections: peer => libp2p.getConnections(peer),
        peers: () => libp2p.getPeers(),
        log: logger.forComponent('conf-chat:network:liveness')
      })
      const trimmer = this.trimmer = new ConnectionTrimmer({
        connections: () => libp2p.getConnections(),
        tags: async peer => (await libp2p.peerStore.get(peer)).tags,
        log: logger.forComponent('conf-chat:network:connection-trimmer')
      }, this.init.connections)
      libp2p.addEventListener('connection:open', (evt) => { trimmer.onConnectionOpen(evt.detail) })
      // the routing table is a public field of kad-dht's KadDHT class, not of its interface
      const responsibility = new Responsibility(libp2p.peerId, () => (libp2p.services.dht as unknown as { routingTable?: RoutingView }).routingTable)
      const kad = libp2p.services.dht
      const targetsLog = logger.forComponent('conf-chat:network:records:targets')
      this._records = new RecordStore({
        dht: kad,
        datastore: this.datastore,
        logger,
        peerId: libp2p.peerId,
        responsibility,
        findTargets: async (key, options) => await findPutTargets({ self: libp2p.peerId, dht: kad, log: targetsLog }, key, options)
      }, this.init)
      this.datastore.recordGuard = this._records.guard
      this.datastore.recordExpired = this._records.isExpired
      this._records.start()
      this._sets = new SetStore({
        peerId: libp2p.peerId, datastore: this.datastore, dht: libp2p.services.dht, network: libp2p, isDhtServer: peer => servers.has(peer), logger, responsibility,
        routingTable: (libp2p.services.dht as unknown as { routingTable?: RoutingTableEvents }).routingTable
      }, this.init)
      // directory entries and mailbox items from registered users only (unless a test serves its own rules)
      const isOwner = ownerCheck(this._records)
      if (this.init.setNamespaces?.[DIRECTORY_SET_NAMESPACE] == null) this._sets.registerNamespace(DIRECTORY_SET_NAMESPACE, ownedDirectoryRules(isOwner))
      if (this.init.setNamespaces?.[MAILBOX_SET_NAMESPACE] == null) this._sets.registerNamespace(MAILBOX_SET_NAMESPACE, registeredSenderMailboxRules(isOwner))
      await this._sets.start()
      const records = this._records
      const sets = this._sets
      this.budget = new StorageBudget({
        heldBytes: () => this.datastore?.heldBytes,
        sources: [options => records.heldRecords(options), options => sets.heldItems(options)],
        logger
      }, { budgetBytes: this.init.storageBudgetBytes ?? DEFAULT_STORAGE_BUDGET_BYTES })
      this.datastore.onHeldChange = this.budget.onHeldChange
      this.budget.onHeldChange(this.datastore.heldBytes ?? 0)
      this.status = 'started'
      this.joinedOnce = false
      this.bootstrapAbort = new AbortController()
      libp2p.addEventListener('peer:disconnect', () => { this.onDisconnect() })
      // the router's address, as a host beyond it sees this peer: what a hole punch offers
      reach.watch(libp2p)
      let addrs = this.multiaddrs.map(String).join(' ')
      libp2p.addEventListener('self:peer:update', () => {
        const now = this.multiaddrs.map(String)
        if (now.join(' ') === addrs) return
        addrs = now.join(' ')
        this.safeDispatch('network:addresses', { addrs: now })
      })
      this.rejoin()
      return this
    } catch (err) {
      await this.stop().catch(() => {})
      throw err
    }
  }

  async stop (): Promise<void> {
    if (this.status === 'stopped' && this.datastore == null) return
    this.status = 'stopping'
    this.bootstrapAbort?.abort()
    // puts that returned at their write quorum finish on the other holders first (a logout's
    // "offline" among them), for STOP_SETTLE_MS at most
    if (this._records != null) await settledWithin(this._records.settled(), STOP_SETTLE_MS)
    this._records?.stop()
    this.budget?.stop()
    await this.budget?.settled()
    await this._sets?.stop()
    this.dht?.stop()
    this.liveness?.stop()
    this.trimmer?.stop()
    await this._libp2p?.stop()
    await this.datastore?.close()
    this.datastore = undefined
    this.status = 'stopped'
  }

  /** Resolves once the peer has joined the network (at once if it already has). */
  async waitJoined (options: AbortOptions = {}): Promise<void> {
    if (this.joined) return
    await new Promise<void>((resolve, reject) => {
      const done = (): void => { this.removeEventListener('network:joined', done); resolve() }
      this.addEventListener('network:joined', done)
      options.signal?.addEventListener('abort', () => {
        this.removeEventListener('network:joined', done)
        reject(options.signal?.reason ?? new Error('aborted'))
      }, { once: true })
    })
  }

  /**
   * Make sure the peer is connected before work that needs the network: if every
   * connection has closed (a partition, a network change, peers restarting), dial the
   * bootstrap and remembered peers again and wait up to `timeoutMs` for one to answer
   * (less if `options.signal` aborts first). Returns whether the peer is connected.
   */
  async ensureConnected (timeoutMs = 10_000, options: AbortOptions = {}): Promise<boolean> {
    if (this.libp2p.getConnections().length > 0) return true
    this.joined = false
    this.rejoin()
    await this.waitJoined({ signal: timeLimit(timeoutMs, options) }).catch(() => {})
    return this.libp2p.getConnections().length > 0
  }

  /** Start the join loop unless it runs already. */
  private rejoin (): void {
    const signal = this.bootstrapAbort?.signal
    if (this.joining != null || signal == null || signal.aborted) return
    this.joining = this.joinNetwork(signal).finally(() => { this.joining = undefined })
  }

  private onDisconnect (): void {
    if (this.status !== 'started' || !this.joined || this.libp2p.getConnections().length > 0) return
    this.joined = false
    this.log('lost every connection; joining again')
    this.safeDispatch('network:lost', {})
    this.rejoin()
  }

  /** Dial the bootstrap peers and remembered peers until one answers, then look ourselves
   * up in the DHT (the Kademlia join) so our routing table fills. Runs at start and again
   * whenever the peer has lost every connection. */
  private async joinNetwork (signal: AbortSignal): Promise<void> {
    let retryMs = BOOTSTRAP_RETRY_MIN_MS
    while (!signal.aborted) {
      const targets = joinTargets(this.bootstrapAddrs, await rememberedPeers(this.libp2p).catch(() => []), this.libp2p.peerId)
      if (targets.length === 0) return // the first peer of a network: nothing to join
      try {
        const { via, peer } = await Promise.any(targets.map(async ({ addr, timeoutMs }) => {
          const conn = await this.libp2p.dial(addr, { signal: timeLimit(timeoutMs, { signal }) })
          return { via: addr.toString(), peer: conn.remotePeer }
        }))
        if (this.init.reachability === 'auto') {
          const finding = started(this.reach).find(this.libp2p, peer, signal)
          // the first join: before the self lookup, which then makes this peer known as what
          // it is (a server goes into the closest peers' routing tables, a client into none).
          // Joining again, it is what it was until the check says otherwise: the check waits
          // for the servers' dial-backs (up to 5 s), and what waits for the join (the mailbox
          // read of what was sent meanwhile, the friends' notices) need not; nor for a relay
          // reservation (a new one is announced when it comes: network:addresses)
          if (this.joinedOnce) finding.catch(err => { this.log('reachability check: %s', err.message) })
          else await finding
        }
        await this.lookupSelf(signal)
        if (this.reachability === 'private' && !this.joinedOnce) {
          await started(this.reach).firstReservation(() => this.relayedAddrs, check => {
            this.addEventListener('network:addresses', check)
            return () => { this.removeEventListener('network:addresses', check) }
          }, signal)
        }
        this.joined = true
        this.joinedOnce = true
        this.log('joined the network via %s', via)
        this.safeDispatch('network:joined', { via })
        return
      } catch {
        if (signal.aborted) return
        this.safeDispatch('network:unreachable', { tried: targets.map(t => t.addr.toString()), retryInMs: retryMs })
        await delay(retryMs, { signal }).catch(() => {})
        retryMs = Math.min(retryMs * 2, BOOTSTRAP_RETRY_MAX_MS)
      }
    }
  }

  /** Whether other peers can dial this one directly (`private`: only through relays). */
  get reachability (): Reached { return this.reach?.reached ?? 'unknown' }

  /** The relayed addresses at which this peer can be dialled (those of its reservations). */
  get relayedAddrs (): Multiaddr[] { return this.multiaddrs.filter(isRelayed) }

  private async lookupSelf (signal: AbortSignal): Promise<void> {
    try {
      for await (const _ of this.libp2p.services.dht.getClosestPeers(this.libp2p.peerId.toMultihash().bytes,
        { signal: timeLimit(10_000, { signal }) })) { /* fills the routing table */ }
    } catch (err: any) {
      this.log('self lookup: %s', err.message)
    }
  }

  private safeDispatch<K extends keyof ChatPeerEvents> (type: K, detail: ChatPeerEvents[K]['detail']): void {
    try {
      this.dispatchEvent(new CustomEvent(type, { detail }))
    } catch (err) {
      this.log.error('listener for %s failed: %e', type, err)
    }
  }
}

function started<T> (part: T | undefined): T {
  if (part == null) throw new NotStartedError()
  return part
}
