/**
 * Finding a set's holders: the R DHT servers closest to the set's key (kad-dht hashes
 * the key bytes, so the target is sha256(setKey)), this peer included when it is a
 * server and among them. The closest-peers lookup stops once the 2R closest peers named
 * (as many as a reader asks) have answered (dht/converged-lookup.ts). Concurrent lookups of one key on one peer share one DHT query,
 * and a caller that can do with an older answer (`maxAgeMs`: a periodic read) reuses
 * the last lookup of the key instead of making another.
 */
import { fromString as bytesFromString } from 'uint8arrays'
import { xor } from 'uint8arrays/xor'
import { compare } from 'uint8arrays/compare'
import { parseSetKey, sha256 } from '@conf-chat/protocol'
import { LRUCache } from 'lru-cache'
import { timeLimit } from '../../utils/index.js'
import { convergedLookup } from '../dht/converged-lookup.js'
import type { KadDHT } from '@libp2p/kad-dht'
import type { AbortOptions, ComponentLogger, Libp2p, Logger, PeerId } from '@libp2p/interface'

export interface HolderLookupComponents {
  peerId: PeerId
  dht: Pick<KadDHT, 'getClosestPeers' | 'getMode'>
  network: Pick<Libp2p, 'getConnections'>
  /** The DHT's protocol: peers that announce it (identify) are DHT servers. */
  /** Whether a connected peer serves the DHT by its own account (dht-servers.ts). */
  isDhtServer: (peer: PeerId) => boolean
  logger: ComponentLogger
  /** Aborts when the store stops: a shared lookup ends then (callers' own signals end only their wait). */
  shutdown: () => AbortSignal
  /** The clock (ms). @default Date.now */
  now?: () => number
}

export interface HolderLookupInit {
  /** How many holders a set has (R). */
  replicas: number
  /** Limit for one DHT query (ms). */
  queryTimeoutMs: number
}

export interface FindHoldersOptions extends AbortOptions {
  /** How many of the closest peers. @default the replica count */
  count?: number
  /**
   * Reuse this peer's last lookup of the key if it is at most this old (ms) and found
   * anyone, instead of a new DHT query. @default 0 (always a new lookup)
   */
  maxAgeMs?: number
}

/** Keys whose last lookup is kept for reuse (a peer reads few sets periodically: its own mailbox). */
const RECENT_LOOKUPS = 64

export class HolderLookup {
  private readonly components: HolderLookupComponents
  private readonly log: Logger
  private readonly replicas: number
  private readonly queryTimeoutMs: number
  private readonly lookups = new Map<string, Promise<PeerId[]>>()
  /** the last lookup of a key: when it ended and what it found */
  private readonly recent = new LRUCache<string, { at: number, peers: PeerId[] }>({ max: RECENT_LOOKUPS })
  private readonly now: () => number

  constructor (components: HolderLookupComponents, init: HolderLookupInit) {
    this.components = components
    this.log = components.logger.forComponent('conf-chat:network:sets:lookup')
    this.replicas = init.replicas
    this.queryTimeoutMs = init.queryTimeoutMs
    this.now = components.now ?? Date.now
  }

  /** The `count` peers closest to the set's key, closest first. */
  async findHolders (setKey: string, options: FindHoldersOptions = {}): Promise<PeerId[]> {
    const count = options.count ?? this.replicas
    parseSetKey(setKey)
    options.signal?.throwIfAborted()
    const last = this.recent.get(setKey)
    if (last != null && last.peers.length > 0 && (options.maxAgeMs ?? 0) > 0 && this.now() - last.at <= (options.maxAgeMs ?? 0)) {
      return last.peers.slice(0, count)
    }
    // concurrent writers on one peer share one lookup: a burst of adds costs one DHT query
    let lookup = this.lookups.get(setKey)
    if (lookup == null) {
      lookup = this.lookup(setKey).then(peers => {
        this.recent.set(setKey, { at: this.now(), peers })
        return peers
      }).finally(() => this.lookups.delete(setKey))
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

  private async lookup (setKey: string): Promise<PeerId[]> {
    const keyBytes = bytesFromString(setKey)
    const target = sha256(keyBytes)
    const found = new Map<string, PeerId>()
    const signal = timeLimit(this.queryTimeoutMs, { signal: this.components.shutdown() })
    const started = this.now()
    // readers ask the 2R closest: the lookup may stop once those have answered
    let converged = false
    try {
      const result = await convergedLookup(this.components.peerId, this.components.dht, keyBytes, 2 * this.replicas, { signal })
      for (const { peer, state } of result.peers) if (state === 'answered') found.set(peer.toString(), peer)
      converged = result.converged
    } catch (err: any) {
      this.log('closest peers to %s: %s', setKey, err.message)
    }
    this.log('closest peers to %s: %d in %d ms%s', setKey, found.size, this.now() - started, converged ? ' (converged)' : '')
    // a query cut short by load finds too few peers, and writers and readers would then
    // disagree on the holders: every connected DHT server is a candidate too
    for (const conn of this.components.network.getConnections()) {
      if (conn.status === 'open' && !found.has(conn.remotePeer.toString()) && this.components.isDhtServer(conn.remotePeer)) {
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
}
