/**
 * Where the programs keep their state: `CONF_CHAT_HOME` or `~/.conf-chat`, holding the
 * supernode's data dir and address file and the peers' data dirs.
 * The supernode package writes `supernode.json` with the same layout (packages/supernode/src/home.ts).
 */
import { readFile } from 'node:fs/promises'
import { homedir } from 'node:os'
import { join, resolve } from 'node:path'
import { logger } from '@libp2p/logger'
import { DEFAULT_HOST, DEFAULT_SUPERNODE_PORT } from '@conf-chat/node'

const log = logger('conf-chat:cli:home')

export const SUPERNODE_FILE = 'supernode.json'

export function dataRoot (env: NodeJS.ProcessEnv = process.env): string {
  const home = env.CONF_CHAT_HOME
  return home != null && home !== '' ? resolve(home) : join(homedir(), '.conf-chat')
}

export function supernodeFile (root: string): string {
  return join(root, SUPERNODE_FILE)
}

/** What the supernode writes to `<root>/supernode.json` on start. */
export interface SupernodeInfo {
  peerId: string
  multiaddrs: string[]
  pid?: number
  startedAt?: string
}

/** The supernode's addresses from its address file; undefined if there is none. */
export async function readSupernodeAddrs (root: string): Promise<string[] | undefined> {
  const file = supernodeFile(root)
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err: any) {
    if (err.code === 'ENOENT') return undefined
    throw err
  }
  try {
    const info = JSON.parse(text) as SupernodeInfo
    const addrs = Array.isArray(info.multiaddrs) ? info.multiaddrs.filter(a => typeof a === 'string') : []
    return addrs.length > 0 ? addrs : undefined
  } catch (err: any) {
    log.error('ignoring %s: %s', file, err.message)
    return undefined
  }
}

/** The supernode's default address on this machine, for when it has not written its file yet. */
export function defaultSupernodeAddr (): string {
  return `/ip4/${DEFAULT_HOST}/tcp/${DEFAULT_SUPERNODE_PORT}`
}
