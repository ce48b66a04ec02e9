import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import type { AbortOptions, PrivateKey } from '@libp2p/interface'

/** The identity key's file name under the data directory. */
export const PEER_KEY_FILE = 'peer-key'

/**
 * The peer's libp2p identity, kept in `<dataDir>/peer-key` so that its peer id (and so
 * its multiaddr on a fixed port) stays the same across restarts.
 */
export async function loadOrCreatePeerKey (dataDir: string, options: AbortOptions = {}): Promise<PrivateKey> {
  const file = join(dataDir, PEER_KEY_FILE)
  try {
    return privateKeyFromProtobuf(await readFile(file, { signal: options.signal }))
  } catch (err: any) {
    if (err.name === 'AbortError') throw err
    if (err.code !== 'ENOENT') throw new Error(`cannot read the peer key ${file}: ${err.message}`)
  }
  const key = await generateKeyPair('Ed25519')
  await mkdir(dataDir, { recursive: true })
  await writeFile(file, privateKeyToProtobuf(key), { mode: 0o600, flag: 'wx', signal: options.signal })
  return key
}
