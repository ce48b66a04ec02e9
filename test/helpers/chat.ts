import { rm } from 'node:fs/promises'
import { createChatNode, type ChatNode, type ChatNodeInit } from '@conf-chat/node'
import { ChatPeer } from '@conf-chat/node/network'
import { PWHASH_BOUNDS } from '@conf-chat/protocol'
import { tempDir, addrOf } from './network.js'

/** Fast settings for tests: cheap bcrypt and Argon2id (the least a record may ask), short presence. */
export const FAST: Partial<ChatNodeInit> = {
  bcryptCost: 4,
  pwhash: { opsLimit: 1, memLimit: PWHASH_BOUNDS.memMin },
  presenceTtlMs: 4_000,
  presenceRefreshMs: 1_000,
  queryTimeoutMs: 10_000
}

export interface ChatNetwork {
  supernode: ChatPeer
  nodes: ChatNode[]
  /** Start one more ChatNode that bootstraps from the supernode (or `via`). */
  addNode: (init?: Partial<ChatNodeInit>, via?: string) => Promise<ChatNode>
  cleanup: () => Promise<void>
}

/** A supernode plus `n` ChatNodes on loopback, each in its own temp data dir. */
export async function startChatNetwork (n: number, init: Partial<ChatNodeInit> = {}): Promise<ChatNetwork> {
  const dirs: string[] = []
  const stoppables: Array<{ stop: () => Promise<void> }> = []
  const supernodeDir = await tempDir()
  dirs.push(supernodeDir)
  const supernode = new ChatPeer({ dataDir: supernodeDir, host: '127.0.0.1', port: 0, ...init })
  stoppables.push(supernode)
  const net: ChatNetwork = {
    supernode,
    nodes: [],
    addNode: async (extra = {}, via) => {
      const dataDir = await tempDir()
      dirs.push(dataDir)
      const node = createChatNode({ dataDir, host: '127.0.0.1', port: 0, bootstrap: [via ?? addrOf(supernode)], ...FAST, ...init, ...extra })
      stoppables.push(node)
      await node.start()
      await node.peer.waitJoined({ signal: AbortSignal.timeout(60_000) })
      net.nodes.push(node)
      return node
    },
    cleanup: async () => {
      await Promise.allSettled(stoppables.map(async s => { await s.stop() }))
      await Promise.allSettled(dirs.map(async d => { await rm(d, { recursive: true, force: true }) }))
    }
  }
  try {
    await supernode.start()
    for (let i = 0; i < n; i++) await net.addNode()
  } catch (err) {
    await net.cleanup()
    throw err
  }
  return net
}

/** Poll until `check` returns a truthy value (or throw after `timeoutMs`). */
export async function eventually<T> (check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 20_000, intervalMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  while (Date.now() < deadline) {
    try {
      const v = await check()
      if (v) return v
    } catch (err) { last = err }
    await new Promise(resolve => setTimeout(resolve, intervalMs))
  }
  throw new Error(`condition not met in ${timeoutMs} ms${last != null ? `: ${String(last)}` : ''}`)
}
