/**
 * How a peer's libp2p node is put together: transport, encryption, muxer, connection
 * limits, and services, each where it departs from libp2p's defaults with the reason
 * (README's "libp2p and kad-dht defaults that cost us" has the measurements). ChatPeer
 * (peer.ts) builds one with `createChatLibp2p` and runs it.
 */
import '../polyfill.js'
import { createLibp2p, type Libp2p } from 'libp2p'
import { noise } from '@chainsafe/libp2p-noise'
import { identify, identifyPush, type Identify } from '@libp2p/identify'
import { ping, type Ping } from '@libp2p/ping'
import { passthroughMapper, type KadDHT, type KadDHTInit } from '@libp2p/kad-dht'
import type { ComponentLogger, PrivateKey } from '@libp2p/interface'
import type { Datastore } from 'interface-datastore'
import { corkedTcp } from './corked-tcp.js'
import { fastNoiseCrypto } from './noise-crypto.js'
import { halfWindowYamux } from './half-window-yamux.js'
import { recordSelectors, recordValidators } from './records/index.js'
import type { DhtService } from './dht/index.js'
import { INBOUND_GATE, INBOUND_UPGRADE_TIMEOUT_MS, type InboundGate } from './inbound-gate.js'
import { listenAddr } from './addresses.js'
import { holePunch, type HolePuncher } from './hole-punch.js'
import { relayServer, relayTransport, type RelayLimits, type Reachability, type CircuitRelayService } from './relay.js'
import { reachability as reachabilityService, type DialbackService } from './reachability.js'
import { portForwarding, type PortForwarding } from './upnp.js'
import { selfRecord, type SelfRecord } from './self-record.js'
import { ListenError } from '../errors.js'
import {
  DHT_PROTOCOL, DHT_MAX_INBOUND_STREAMS, DHT_RPC_MAX_TIMEOUT_MS, DHT_ALPHA, DHT_DISJOINT_PATHS, DHT_SELF_LOOKUP_INTERVAL_MS
} from '../constants.js'

export type ChatLibp2p = Libp2p<{ dht: KadDHT, identify: Identify, selfRecord: SelfRecord, ping: Ping, reachability: DialbackService, relay?: CircuitRelayService, punch?: HolePuncher, upnp?: PortForwarding }>

/**
 * The connection manager's cap. In libp2p 3 `maxConnections` is not a target to prune
 * down to: at the cap every inbound connection is refused (connection-manager
 * acceptIncomingConnection), and pruning only runs when outbound dials push the count
 * over it. A low cap would make the bootstrap peer refuse joiners once it holds that many
 * (every joiner dials it) and DHT servers refuse queriers. So the cap stays above the
 * network sizes measured here (300 peers on one machine); the number of connections is
 * kept near a target by the trimmer (connection-trimmer.ts, low and high water marks),
 * an idle connection's work is kept small by the quiet connection (no connection
 * monitor, no muxer keep-alive, pooled DHT streams that close when idle), and one that
 * carries nothing closes after the inactivity limit below.
 */
const MAX_CONNECTIONS = 500
/**
 * libp2p's connection monitor is off. It opens a ping stream on every connection every
 * 10 s by default (a new stream, protocol negotiation and a peer-store merge on both
 * ends), so an idle peer's work grew with its connections (13 at 10 peers, 67 at 100); at
 * one ping a minute it was still a fifth of an idle logged-in peer's CPU (bench:idle, 10
 * users: 0.74 -> 0.60 % of a core without it). A crashed peer's connections close by
 * themselves (FIN/RST); a silently vanished host is found when a connection is used (a
 * DHT RPC with no answer, see liveness.ts; an unacknowledged chat message falls back to
 * the mailbox), and a connection that carries nothing closes after
 * TCP_INACTIVITY_TIMEOUT_MS, which also bounds the connections an idle peer keeps to the
 * peers it worked with lately.
 */
const CONNECTION_MONITOR_ENABLED = false
/** A TCP connection with no byte either way for this long is closed (@libp2p/tcp's default is 2 min:
 * long enough that a refresh or a mailbox read finds its connections open, not a re-dial each time). */
const TCP_INACTIVITY_TIMEOUT_MS = 10 * 60_000

/** kad-dht's options: the project's protocol, record rules, and the lookup and timing choices of constants.ts. */
export function kadOptions (clientMode: boolean, logger: ComponentLogger): KadDHTInit & { protocol: string } {
  return {
    protocol: DHT_PROTOCOL,
    clientMode,
    // keep loopback and LAN addresses: the default mapper drops them
    peerInfoMapper: passthroughMapper,
    validators: recordValidators({ logger }),
    selectors: recordSelectors(),
    initialQuerySelfInterval: 0,
    querySelfInterval: DHT_SELF_LOOKUP_INTERVAL_MS,
    maxInboundStreams: DHT_MAX_INBOUND_STREAMS,
    networkDialTimeout: { maxTimeout: DHT_RPC_MAX_TIMEOUT_MS },
    alpha: DHT_ALPHA,
    disjointPaths: DHT_DISJOINT_PATHS
  }
}

export interface ChatLibp2pParts {
  privateKey: PrivateKey
  logger: ComponentLogger
  datastore: Datastore
  host: string
  port: number
  reachability: Reachability
  /** kad-dht, with the peer's wrappers (dht/service.ts). */
  dht: DhtService
  /** Limits inbound connections before and after their upgrade (inbound-gate.ts). */
  gate: InboundGate
  /** Serve as a circuit relay with these limits. */
  relay?: Partial<RelayLimits>
  /** With `reachability: 'auto'`, ask the home router to forward a port (upnp.ts). */
  upnp?: boolean
  /** This peer's address as a host beyond its router sees it (what a hole punch offers). */
  publicIp: () => string | undefined
  /** Whether this peer answers other peers' dial-back requests now (while a DHT server). */
  serving: () => boolean
}

/** The peer's libp2p node, not started. Throws ListenError when it cannot listen on host:port. */
export async function createChatLibp2p (parts: ChatLibp2pParts): Promise<ChatLibp2p> {
  const { gate, reachability } = parts
  return await createLibp2p({
    privateKey: parts.privateKey,
    logger: parts.logger,
    datastore: parts.datastore,
    // a private peer listens on one relay at start, on a second once it knows a second (reachability-keeper.ts)
    addresses: { listen: [listenAddr(parts.host, parts.port)] },
    transports: [
      corkedTcp({ inboundSocketInactivityTimeout: TCP_INACTIVITY_TIMEOUT_MS, outboundSocketInactivityTimeout: TCP_INACTIVITY_TIMEOUT_MS }),
      // every peer can dial a relayed address; a private one also keeps its reservations
      relayTransport()
    ],
    // X25519 through JWK keys instead of DER ones: a handshake costs a fifth (noise-crypto.ts)
    connectionEncrypters: [noise({ crypto: fastNoiseCrypto })],
    // yamux pings every connection every 30 s and ignores a missing answer (its own
    // TODO): chatter that finds nothing; a connection is checked when used (liveness.ts).
    // Its window updates wait until half the window is used (half-window-yamux.ts)
    streamMuxers: [halfWindowYamux({ enableKeepAlive: false })],
    connectionManager: {
      // every peer on one machine shares one remote IP; the default (5/s) resets them
      inboundConnectionThreshold: 1000,
      maxConnections: MAX_CONNECTIONS,
      // libp2p's own count (which refuses) stays above the gate's, so that it never decides
      maxIncomingPendingConnections: 2 * INBOUND_GATE.total,
      inboundUpgradeTimeout: INBOUND_UPGRADE_TIMEOUT_MS
    },
    connectionGater: {
      denyInboundConnection: maConn => gate.admit(maConn),
      denyInboundUpgradedConnection: (_peer, maConn) => gate.upgraded(maConn)
    },
    connectionMonitor: { enabled: CONNECTION_MONITOR_ENABLED },
    services: {
      identify: identify(),
      // tells connected peers when this peer's protocols or addresses change: a DHT mode
      // found by the dial-back, a relay reservation (else they keep the first identify's)
      identifyPush: identifyPush(),
      // this peer's signed record, sealed once per set of addresses (identify seals one per request)
      selfRecord: selfRecord(),
      // kad-dht's routing table, liveness probes and friends' reachability checks all ping;
      // with the default of one outbound ping stream per peer a second ping is refused
      ping: ping({ maxOutboundStreams: 4, maxInboundStreams: 8 }),
      dht: parts.dht.factory(),
      ...(parts.relay != null ? { relay: relayServer(parts.relay) } : {}),
      // a direct connection after a relayed one, when both routers allow it (hole-punch.ts)
      ...(reachability !== 'public' ? { punch: holePunch({ publicIp: parts.publicIp }) } : {}),
      // answers other peers' dial-back requests while a DHT server; asks them when `auto`
      reachability: reachabilityService({ serving: parts.serving }),
      ...(reachability === 'auto' && parts.upnp === true ? { upnp: portForwarding() } : {})
    }
  }).catch((err: any) => {
    if (err.code === 'EADDRINUSE' || /EADDRINUSE|EADDRNOTAVAIL|EACCES/.test(String(err.message))) {
      throw new ListenError(`cannot listen on ${parts.host}:${parts.port}: ${err.code ?? err.message}`)
    }
    throw err
  })
}
