/** The per-peer (and per-host) work limit of the dial-back and the hole punch, on an injected clock. */
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

  it('counts a piece of work under every key it is given: a key used in the interval holds back work under any other', async () => {
    const limit = new PeerWorkLimit({ intervalMs: 1_000, concurrent: 10 })
    const [a, b, c] = [await newPeerId(), await newPeerId(), await newPeerId()]
    expect(limit.begin([a, '203.0.113.9'], 0)).toBe(true)
    // a new peer id from the same host
    expect(limit.begin([b, '203.0.113.9'], 1)).toBe(false)
    // the same peer from another host
    expect(limit.begin([a, '203.0.113.10'], 2)).toBe(false)
    // a refusal records nothing: b and the other host are free
    expect(limit.begin([b, '203.0.113.10'], 3)).toBe(true)
    expect(limit.begin([c, '203.0.113.9'], 1_000)).toBe(true)
    expect(limit.active).toBe(3)
  })

  it('forgets the oldest peer past its memory: it may ask again', async () => {
    const limit = new PeerWorkLimit({ intervalMs: 1_000, concurrent: 10, remembered: 2 })
    const [a, b, c] = [await newPeerId(), await newPeerId(), await newPeerId()]
    for (const p of [a, b, c]) { expect(limit.begin(p, 0)).toBe(true); limit.end() }
    expect(limit.begin(b, 1)).toBe(false)
    expect(limit.begin(a, 1)).toBe(true)
  })
})
