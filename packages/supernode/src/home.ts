/**
 * Where the supernode keeps its state: `CONF_CHAT_HOME` or `~/.conf-chat`. It writes its
 * addresses to `<home>/supernode.json`, where `npm run node` on the same machine reads them
 * (the reader is packages/cli/src/home.ts: keep the two in step).
 */
import { rename, writeFile, mkdir } from 'node:fs/promises'
import { homedir } from 'node:os'
import { dirname, join, resolve } from 'node:path'

export const SUPERNODE_FILE = 'supernode.json'

export function dataRoot (env: NodeJS.ProcessEnv = process.env): string {
  const home = env.CONF_CHAT_HOME
  return home != null && home !== '' ? resolve(home) : join(homedir(), '.conf-chat')
}

export function supernodeFile (root: string): string {
  return join(root, SUPERNODE_FILE)
}

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
