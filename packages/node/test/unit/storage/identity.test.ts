/** The peer's identity key on disk. */
import { describe, it, expect, beforeEach, afterEach } from 'vitest'
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { loadOrCreatePeerKey, PEER_KEY_FILE } from '../../../src/storage/index.js'

let dir: string
beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'conf-chat-unit-identity-')) })
afterEach(async () => { await rm(dir, { recursive: true, force: true }) })

describe('loadOrCreatePeerKey', () => {
  it('creates an Ed25519 key readable only by its owner, and returns the same key after', async () => {
    const dataDir = join(dir, 'data')
    const key = await loadOrCreatePeerKey(dataDir)
    expect(key.type).toBe('Ed25519')
    expect((await stat(join(dataDir, PEER_KEY_FILE))).mode & 0o777).toBe(0o600)
    const again = await loadOrCreatePeerKey(dataDir)
    expect(peerIdFromPrivateKey(again).equals(peerIdFromPrivateKey(key))).toBe(true)
  })

  it('refuses a key file it cannot read rather than replacing the identity', async () => {
    await writeFile(join(dir, PEER_KEY_FILE), 'not a key')
    await expect(loadOrCreatePeerKey(dir)).rejects.toThrow(/cannot read the peer key/)
  })

  it('stops at an aborted signal', async () => {
    await expect(loadOrCreatePeerKey(dir, { signal: AbortSignal.abort() })).rejects.toMatchObject({ name: 'AbortError' })
  })
})
