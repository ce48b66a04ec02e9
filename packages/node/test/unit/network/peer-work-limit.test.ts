/** The per-peer work limit of the dial-back and the hole punch, on an injected clock. */
import { describe, it, expect } from 'vitest'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { PeerId } from '@libp2p/interface'
import { PeerWorkLimit } from '../../../src/network/peer-work-limit.js'

async function newPeerId (): Promise<PeerId> { return peerIdFromPrivateKey(await generateKeyPair('Ed25519')) }

describe('PeerWorkLimit', () => {
  it('lets a peer start one piece of work per interval', async () => {
    const limit = new PeerWorkLimit({ intervalMs: 1_000, concurrent: 10 })
    const a = await newPeerId()
    expect(limit.begin(a, 0)).toBe(true)
    limit.end()
    expect(limit.begin(a, 999)).toBe(false)
    expect(limit.begin(a, 1_000)).toBe(true)
  })

  it('caps the work under way from all peers, and frees a place at end()', async () => {
    const limit = new PeerWorkLimit({ intervalMs: 1_000, concurrent: 2 })
    const [a, b, c] = [await newPeerId(), await newPeerId(), await newPeerId()]
    expect(limit.begin(a, 0)).toBe(true)
    expect(limit.begin(b, 0)).toBe(true)
    expect(limit.begin(c, 0)).toBe(false)
    expect(limit.active).toBe(2)
    limit.end()
    expect(limit.begin(c, 0)).toBe(true)
  })

  it('forgets the oldest peer past its memory: it may ask again', async () => {
    const limit = new PeerWorkLimit({ intervalMs: 1_000, concurrent: 10, remembered: 2 })
    const [a, b, c] = [await newPeerId(), await newPeerId(), await newPeerId()]
    for (const p of [a, b, c]) { expect(limit.begin(p, 0)).toBe(true); limit.end() }
    expect(limit.begin(b, 1)).toBe(false)
    expect(limit.begin(a, 1)).toBe(true)
  })
})
