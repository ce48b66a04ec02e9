import { UsageError } from '../errors.js'
import type { Command } from './types.js'

export const whoami: Command = {
  usage: 'whoami',
  summary: 'who is logged in here, and this peer: id, addresses, data directory, network state',
  run (args, ctx) {
    if (args.length > 0) throw new UsageError()
    const { node, peer, dataDir, joinedVia, bootstrap } = ctx.app
    if (node.session != null) {
      const me = node.whoami()
      ctx.print(`user: ${me.username} (${me.fullName})`)
      ctx.print(`logged in since: ${new Date(me.since).toLocaleString()}`)
    } else {
      ctx.print('user: not logged in')
    }
    ctx.print(`peer id: ${peer.peerId.toString()}`)
    for (const addr of peer.multiaddrs) ctx.print(`address: ${addr.toString()}`)
    ctx.print(`data directory: ${dataDir}`)
    ctx.print(`dht mode: ${peer.isDhtServer() ? 'server' : 'client'}`)
    const relays = peer.relayedAddrs.length
    const how = peer.reachability === 'private'
      ? ` (dialled through ${relays} relay address${relays === 1 ? '' : 'es'})`
      : peer.reachability === 'unknown' ? ' (no DHT server has dialled it back yet: a DHT client until one does)' : ''
    ctx.print(`reachability: ${peer.reachability}${how}`)
    if (joinedVia != null) ctx.print(`network: joined via ${joinedVia}`)
    else if (bootstrap.addrs.length === 0) ctx.print('network: not joined (no bootstrap address)')
    else ctx.print('network: not joined yet (retrying the bootstrap peers)')
  }
}
