/**
 * Where the programs keep their state: `CONF_CHAT_HOME` or `~/.conf-chat`, holding the
 * supernode's data dir, its address file `supernode.json` and the peers' data dirs. The
 * supernode writes the address file on start; the node program on the same machine reads it.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { homedir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import type { Logger } from '@libp2p/logger'

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
  /** Full multiaddrs, `/ip4/.../tcp/<port>/p2p/<peerId>`. */
  multiaddrs: string[]
  pid: number
  startedAt: string
}

/** Replace the address file in one step, so a peer starting meanwhile never reads half of it. */
export async function writeSupernodeFile (file: string, info: SupernodeInfo): Promise<void> {
  await mkdir(dirname(file), { recursive: true })
  const tmp = `${file}.${process.pid}.tmp`
  await writeFile(tmp, JSON.stringify(info, null, 2) + '\n')
  await rename(tmp, file)
}

export interface ReadSupernodeAddrsOptions {
  /** Told about an address file that is not JSON (the file is then ignored). */
  log?: Pick<Logger, 'error'>
}

/** The supernode's addresses from its address file; undefined if there is none. */
export async function readSupernodeAddrs (root: string, options: ReadSupernodeAddrsOptions = {}): Promise<string[] | undefined> {
  const file = supernodeFile(root)
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch (err: any) {
    if (err.code === 'ENOENT') return undefined
    throw err
  }
  try {
    const info = JSON.parse(text) as Partial<SupernodeInfo>
    const addrs = Array.isArray(info.multiaddrs) ? info.multiaddrs.filter(a => typeof a === 'string') : []
    return addrs.length > 0 ? addrs : undefined
  } catch (err: any) {
    options.log?.error('ignoring %s: %s', file, err.message)
    return undefined
  }
}
