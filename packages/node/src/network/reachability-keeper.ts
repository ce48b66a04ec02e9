/**
 * What a ChatPeer knows of its own reachability, and what it does about it: the dial-back
 * check at join (reachability.ts) with its retries, a port forwarded by the home router
 * when the check fails (upnp.ts), the DHT mode and relay reservations that follow, the
 * wait for a first reservation, and the router's address that a hole punch offers
 * (hole-punch.ts).
 */
import { PeerSet } from '@libp2p/peer-collections'
import type { Libp2p, Logger, PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { KadDHT } from '@libp2p/kad-dht'
import { delay, timeLimit } from '../utils/index.js'
import { RELAY_V2_HOP_CODEC } from '@libp2p/circuit-relay-v2'
import { FIRST_RESERVATION_WAIT_MS, RELAY_RESERVATIONS, isRelayed, relayListenAddrs, type Reachability } from './relay.js'
import type { DialbackService, Reached } from './reachability.js'
import type { PortForwarding } from './upnp.js'

/**
 * A dial-back check with no answer (the answerers busy, restarting, or still counting this
 * peer's last request: a peer restarted within 5 s) is made again in the background, the
 * join going on as a DHT client: twice 5 s apart, then from 30 s apart doubling to 10
 * minutes, until one answers.
 */
const REACHABILITY_RETRY_MS = 5_000
const REACHABILITY_QUICK_RETRIES = 2
const REACHABILITY_BACKGROUND_MIN_MS = 30_000
const REACHABILITY_BACKGROUND_MAX_MS = 10 * 60_000

/** How long to wait before the `retry`th (0-based) background check. */
export function reachabilityRetryMs (retry: number): number {
  if (retry < REACHABILITY_QUICK_RETRIES) return REACHABILITY_RETRY_MS
  return Math.min(REACHABILITY_BACKGROUND_MIN_MS * 2 ** (retry - REACHABILITY_QUICK_RETRIES), REACHABILITY_BACKGROUND_MAX_MS)
}

type KeeperLibp2p = Libp2p<{ dht: KadDHT, reachability: DialbackService, upnp?: PortForwarding }>

export interface ReachabilityKeeperInit {
  setting: Reachability
  /** The address the peer listens on (an observed address equal to it is not the router's). */
  host: string
  /** The DHT mode was given (`--client`): the check does not change it. */
  fixedMode: boolean
  dhtProtocol: string
  /** Whether a connected peer serves the DHT by its own account (dht-servers.ts). */
  isDhtServer: (peer: PeerId) => boolean
  /** Whether the peer still runs (a background check stops when it does not). */
  running: () => boolean
  /** The check found something new. */
  changed: (reached: 'public' | 'private') => void
  /** The check switched the DHT mode (at join or in the background). */
  switched?: (mode: 'server' | 'client') => void
  log: Logger
}

export class ReachabilityKeeper {
  reached: Reached
  /** The router's IPv4 address as DHT servers report it (identify's observed address). */
  observedIp?: string
  private relayListening: boolean
  /** `/p2p-circuit` listeners asked for: one per relay known, up to RELAY_RESERVATIONS. */
  private relayListeners = 0
  /** Connected peers that identify says are relays. */
  private readonly relays = new PeerSet()
  private readonly init: ReachabilityKeeperInit

  constructor (init: ReachabilityKeeperInit) {
    this.init = init
    this.reached = init.setting === 'auto' ? 'unknown' : init.setting
    this.relayListening = init.setting === 'private'
  }

  /**
   * Keep the router's address as DHT servers see this peer (not any peer that connects: it
   * could name another), and the relays it is connected to: a private peer listens on one
   * relay per relay known, up to two (ensureRelayListeners).
   */
  watch (libp2p: KeeperLibp2p): void {
    if (this.init.setting === 'public') return
    // `private` from the start: on a relay at once
    void this.ensureRelayListeners(libp2p)
    libp2p.addEventListener('peer:disconnect', ({ detail }) => { this.relays.delete(detail) })
    libp2p.addEventListener('peer:identify', ({ detail }) => {
      if (detail.protocols.includes(RELAY_V2_HOP_CODEC) && !isRelayed(detail.connection.remoteAddr)) {
        this.relays.add(detail.peerId)
        void this.ensureRelayListeners(libp2p)
      }
      const ip = detail.observedAddr?.getComponents().find(c => c.name === 'ip4')?.value
      if (ip == null || ip === this.init.host || isRelayed(detail.connection.remoteAddr) || !detail.protocols.includes(this.init.dhtProtocol)) return
      this.observedIp = ip
    })
  }

  /**
   * Ask the DHT servers we are connected to to dial us back and act on it: a DHT server if
   * one got through; a DHT client with relay reservations if none did. Without an answer
   * it asks again in the background (reachabilityRetryMs), the join going on meanwhile.
   * Returns the DHT mode it switched to, if it switched.
   */
  async find (libp2p: KeeperLibp2p, joinedThrough: PeerId | undefined, signal: AbortSignal, retry = 0): Promise<'server' | 'client' | undefined> {
    // one check at a time (a rejoin does not wait for its check, so a later loss, or the
    // retry timer, could start another beside it, the older result landing last); a new
    // one replaces a retry that is due
    if (this.finding != null) return await this.finding
    clearTimeout(this.retryTimer)
    this.finding = this.findOnce(libp2p, joinedThrough, signal, retry).finally(() => { this.finding = undefined })
    return await this.finding
  }

  /** The check under way, if any. */
  private finding?: Promise<'server' | 'client' | undefined>
  /** The next check after one without an answer. */
  private retryTimer?: NodeJS.Timeout

  private async findOnce (libp2p: KeeperLibp2p, joinedThrough: PeerId | undefined, signal: AbortSignal, retry: number): Promise<'server' | 'client' | undefined> {
    const port = libp2p.getMultiaddrs().flatMap(ma => isRelayed(ma) ? [] : ma.getComponents().filter(c => c.name === 'tcp')).map(c => Number(c.value))[0]
    // the peer just joined through (a bootstrap or remembered DHT server; identify may not
    // have told us yet), then the other connected servers, found again for each attempt
    const servers = (): PeerId[] => [...new PeerSet([...(joinedThrough != null ? [joinedThrough] : []), ...libp2p.getConnections()
      .filter(c => c.status === 'open' && !isRelayed(c.remoteAddr) && this.init.isDhtServer(c.remotePeer))
      .map(c => c.remotePeer)])]
    let reached: Reached = port == null || signal.aborted ? 'unknown' : await libp2p.services.reachability.check(servers(), port)
    if (reached === 'unknown') {
      const retryMs = reachabilityRetryMs(retry)
      this.init.log('reachability unknown (no DHT server answered): a DHT client; asking again in %d s', retryMs / 1000)
      this.retryTimer = setTimeout(() => {
        if (signal.aborted || !this.init.running()) return
        this.find(libp2p, undefined, signal, retry + 1).catch(err => { this.init.log('reachability check: %s', err.message) })
      }, retryMs)
      this.retryTimer.unref()
      return undefined
    }
    if (reached === 'private' && !signal.aborted) reached = await this.forwardPort(libp2p, servers, port as number, signal)
    // stopped meanwhile (a restart's check is its own)
    if (signal.aborted) return undefined
    const changed = reached !== this.reached
    this.reached = reached
    const mode = reached === 'public' ? 'server' : 'client'
    const switched = !this.init.fixedMode && libp2p.services.dht.getMode() !== mode
    if (switched) {
      await libp2p.services.dht.setMode(mode)
      this.init.switched?.(mode)
    }
    if (reached === 'private' && !this.relayListening) {
      this.relayListening = true
      await this.ensureRelayListeners(libp2p)
    } else if (reached === 'public' && this.relayListening && this.init.setting === 'auto') {
      // reachable after all (a router that forwards now, a new network): no relay in between
      this.relayListening = false
      this.relayListeners = 0
      await libp2p.services.reachability.unlistenRelays().catch(err => { this.init.log.error('cannot end relay reservations: %e', err) })
    }
    if (changed) this.init.changed(reached)
    return switched ? mode : undefined
  }

  /**
   * Listen on one relay per relay known (connected, identified as one), up to two, at
   * least one. libp2p's relay transport looks for as many relays as it has `/p2p-circuit`
   * listeners, and while it has fewer it searches the network without pause (a random walk
   * of DHT lookups): asked for two with one supernode in the network, every peer behind NAT
   * spent about a third of a core, and each DHT server a quarter, forever. A second relay
   * that appears later adds the second listener. (A listener is not taken back when a relay
   * goes: closing one ends every reservation of the transport.)
   */
  private async ensureRelayListeners (libp2p: KeeperLibp2p): Promise<void> {
    if (!this.relayListening) return
    const want = Math.min(RELAY_RESERVATIONS, Math.max(1, this.relays.size))
    while (this.relayListeners < want) {
      this.relayListeners++
      await libp2p.services.reachability.listen(relayListenAddrs(1)).catch(err => { this.init.log.error('cannot ask relays for reservations: %e', err) })
    }
  }

  /**
   * Not reachable: ask the home router to forward a port (UPnP, upnp.ts) and the servers to
   * dial back at it. `public` if they get through (the router's address at that port is
   * announced), else the forwarding is removed and the peer stays `private`.
   */
  private async forwardPort (libp2p: KeeperLibp2p, servers: () => PeerId[], port: number, signal: AbortSignal): Promise<'public' | 'private'> {
    const upnp = libp2p.services.upnp
    if (upnp == null) return 'private'
    const forwarded = await upnp.open(port, signal)
    if (forwarded == null) return 'private'
    // an answerer takes one request from a peer every few seconds
    await delay(REACHABILITY_RETRY_MS, { signal }).catch(() => {})
    const ip = this.observedIp
    if (ip != null && !signal.aborted && await libp2p.services.reachability.check(servers(), forwarded.externalPort) === 'public') {
      upnp.announce(ip)
      this.init.log('reachable through the router\'s forwarded port: %s:%d', ip, forwarded.externalPort)
      return 'public'
    }
    this.init.log('the router forwards port %d, but no DHT server got through it', forwarded.externalPort)
    await upnp.close()
    return 'private'
  }

  /**
   * Wait (a while, at most) until a relay holds a reservation for this peer: until then
   * nobody can dial it. `relayed()` gives its relayed addresses now; `onChange` calls back
   * when its addresses change and returns how to stop.
   */
  async firstReservation (relayed: () => Multiaddr[], onChange: (check: () => void) => () => void, signal: AbortSignal): Promise<void> {
    if (relayed().length > 0) return
    await new Promise<void>(resolve => {
      const limit = timeLimit(FIRST_RESERVATION_WAIT_MS, { signal })
      let stop = (): void => {}
      const done = (): void => { stop(); resolve() }
      stop = onChange(() => { if (relayed().length > 0) done() })
      limit.addEventListener('abort', () => {
        if (relayed().length === 0 && !signal.aborted) this.init.log('no relay reservation after %d ms; going on without', FIRST_RESERVATION_WAIT_MS)
        done()
      }, { once: true })
    })
  }
}
