/**
 * What a peer dials to join the network: its bootstrap peers, and peers it met before
 * (persisted in the peer store) that speak the project's DHT protocol.
 */
import { peerIdFromString } from '@libp2p/peer-id'
import type { Libp2p, PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { DHT_PROTOCOL, KNOWN_PEERS_TO_DIAL, BOOTSTRAP_DIAL_TIMEOUT_MS, REMEMBERED_DIAL_TIMEOUT_MS } from '../constants.js'

/** One address a join dials, with its own time limit. */
export interface JoinTarget { addr: Multiaddr, timeoutMs: number }

/**
 * What a join dials, all at once: the bootstrap addresses with the full dial limit, the
 * remembered peers with a short one (their addresses may be long dead and hang), never
 * this peer itself, and a remembered peer only once even if it is also a bootstrap peer.
 */
export function joinTargets (bootstrap: Multiaddr[], remembered: Multiaddr[], self: PeerId): JoinTarget[] {
  const idOf = (ma: Multiaddr): string | undefined => ma.getComponents().find(c => c.name === 'p2p')?.value
  const bootstrapIds = new Set(bootstrap.map(idOf))
  const notSelf = (ma: Multiaddr): boolean => { const id = idOf(ma); return id == null || !peerIdFromString(id).equals(self) }
  return [
    ...bootstrap.filter(notSelf).map(addr => ({ addr, timeoutMs: BOOTSTRAP_DIAL_TIMEOUT_MS })),
    ...remembered.filter(ma => notSelf(ma) && !bootstrapIds.has(idOf(ma) ?? '')).map(addr => ({ addr, timeoutMs: REMEMBERED_DIAL_TIMEOUT_MS }))
  ]
}

/** Peers `libp2p` met before (persisted in its peer store) that speak our DHT protocol, at most KNOWN_PEERS_TO_DIAL. */
export async function rememberedPeers (libp2p: Pick<Libp2p, 'peerStore' | 'peerId'>): Promise<Multiaddr[]> {
  const peers = await libp2p.peerStore.all({
    filters: [p => p.protocols.includes(DHT_PROTOCOL) && p.addresses.length > 0 && !p.id.equals(libp2p.peerId)]
  })
  return peers.slice(0, KNOWN_PEERS_TO_DIAL).flatMap(p => {
    const addr = p.addresses[0]?.multiaddr
    return addr == null ? [] : [addr.encapsulate(`/p2p/${p.id.toString()}`)]
  })
}
