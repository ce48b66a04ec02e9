import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ChatPeer, type ChatPeerInit } from '@conf-chat/node/network'

/** A temporary directory removed by `cleanup()`. */
export async function tempDir (prefix = 'conf-chat-test-'): Promise<string> {
  return await mkdtemp(join(tmpdir(), prefix))
}

export interface TestNetwork {
  supernode: ChatPeer
  peers: ChatPeer[]
  dirs: string[]
  /** Start one more peer that bootstraps from `via` (default: the supernode). */
  addPeer: (init?: Partial<ChatPeerInit>, via?: ChatPeer) => Promise<ChatPeer>
  /**
   * Wait until every running DHT server has every other one in its routing table. A peer
   * that has just joined is added to the others' tables through kad-dht's update queue, a
   * little later under load (seen: the last of 8 peers missing from 6 tables), and tests
   * that compare what different peers find start from a settled network, as a network
   * that has run for a while is. `startNetwork` waits for it; after `addPeer`, call it again.
   */
  settled: (options?: { deadlineMs?: number }) => Promise<void>
  cleanup: () => Promise<void>
}

export function addrOf (peer: ChatPeer): string {
  return peer.multiaddrs[0]!.toString()
}

/** A supernode plus `n` peers on loopback, each in its own temp data dir, all joined, every DHT server in every other's routing table. */
export async function startNetwork (n: number, init: Partial<ChatPeerInit> = {}): Promise<TestNetwork> {
  const dirs: string[] = []
  const all: ChatPeer[] = []
  const make = async (extra: Partial<ChatPeerInit>): Promise<ChatPeer> => {
    const dataDir = await tempDir()
    dirs.push(dataDir)
    const peer = new ChatPeer({ dataDir, host: '127.0.0.1', port: 0, ...init, ...extra })
    all.push(peer)
    await peer.start()
    return peer
  }
  const net: TestNetwork = {
    supernode: undefined as unknown as ChatPeer,
    peers: [],
    dirs,
    addPeer: async (extra = {}, via) => {
      const peer = await make({ bootstrap: [addrOf(via ?? net.supernode)], ...extra })
      await peer.waitJoined({ signal: AbortSignal.timeout(20_000) })
      net.peers.push(peer)
      return peer
    },
    settled: async ({ deadlineMs = 20_000 } = {}) => {
      const servers = (): ChatPeer[] => all.filter(p => p.status === 'started' && p.libp2p.services.dht.getMode() === 'server')
      const end = Date.now() + deadlineMs
      while (servers().some(p => p.libp2p.services.dht.routingTable.size < servers().length - 1)) {
        if (Date.now() > end) throw new Error('routing tables did not settle')
        await new Promise(resolve => setTimeout(resolve, 50))
      }
    },
    cleanup: async () => {
      await Promise.allSettled(all.map(async p => await p.stop()))
      await Promise.allSettled(dirs.map(async d => await rm(d, { recursive: true, force: true })))
    }
  }
  try {
    net.supernode = await make({})
    for (let i = 0; i < n; i++) await net.addPeer()
    await net.settled()
  } catch (err) {
    await net.cleanup()
    throw err
  }
  return net
}
