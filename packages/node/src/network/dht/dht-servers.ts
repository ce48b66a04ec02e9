/**
 * Which connected peers serve the DHT, by their own account: the protocols identify
 * reported for them. The peer store is not a witness: libp2p adds a protocol to a peer's
 * record whenever that peer opens a stream of it (connection.js, "the peer store should
 * ensure that the peer is registered with that protocol"), so a DHT client that queries
 * us (a peer behind NAT) looks like a DHT server there, and would be picked to hold
 * records and mailboxes it cannot be reached for.
 */
import { PeerSet } from '@libp2p/peer-collections'
import type { Libp2pEvents, PeerId, TypedEventTarget } from '@libp2p/interface'

export class DhtServers {
  private readonly servers = new PeerSet()

  constructor (events: TypedEventTarget<Libp2pEvents>, protocol: string) {
    events.addEventListener('peer:identify', ({ detail }) => {
      if (detail.protocols.includes(protocol)) this.servers.add(detail.peerId)
      else this.servers.delete(detail.peerId)
    })
    events.addEventListener('peer:disconnect', ({ detail }) => { this.servers.delete(detail) })
  }

  /** Whether `peer`, connected now, said it serves the DHT when it was last identified. */
  has (peer: PeerId): boolean { return this.servers.has(peer) }

  get size (): number { return this.servers.size }
}
