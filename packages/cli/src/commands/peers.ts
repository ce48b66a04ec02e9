import { UsageError } from '../errors.js'
import type { Command } from './types.js'

export const peers: Command = {
  usage: 'peers',
  summary: 'the peers this one is connected to: direct or through a relay, whether in its DHT routing table (a DHT server), their addresses',
  async run (args, ctx) {
    if (args.length > 0) throw new UsageError()
    const libp2p = ctx.app.peer.libp2p
    const connected = libp2p.getPeers()
    ctx.print(`${connected.length} connected peer${connected.length === 1 ? '' : 's'}`)
    for (const id of connected) {
      // listen addresses (learned by identify) are the ones others can dial, not a connection's ephemeral port
      const known = await libp2p.peerStore.get(id, { signal: ctx.signal }).catch(() => undefined)
      let addrs = known?.addresses.map(a => a.multiaddr.toString()) ?? []
      if (addrs.length === 0) addrs = libp2p.getConnections(id).map(c => c.remoteAddr.toString())
      const relayed = libp2p.getConnections(id).every(c => c.remoteAddr.toString().includes('/p2p-circuit'))
      // a peer is put in the routing table once identify says it serves the DHT (a client does not)
      const tabled = await ctx.app.peer.inRoutingTable(id)
      ctx.print(`${id.toString()} ${relayed ? 'relayed' : 'direct'}${tabled ? ' in-table' : ''} ${addrs.join(' ')}`)
    }
  }
}
