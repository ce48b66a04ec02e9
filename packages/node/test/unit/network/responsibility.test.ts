/** Responsibility for a key, over a stand-in routing table. */
import { describe, it, expect } from 'vitest'
import { createHash } from 'node:crypto'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { PeerId } from '@libp2p/interface'
import { Responsibility } from '../../../src/network/dht/responsibility.js'

const kadId = (bytes: Uint8Array): Buffer => createHash('sha256').update(bytes).digest()
const distance = (peer: PeerId, key: Uint8Array): Buffer => {
  const target = kadId(key)
  return Buffer.from(kadId(peer.toMultihash().bytes).map((b, i) => b ^ target[i]!))
}

/** A routing table that knows `peers` and answers as kad-dht's does: the closest first. */
const tableOf = (peers: PeerId[]) => ({
  closestPeers: (target: Uint8Array, options?: { count?: number }): PeerId[] => {
    const d = (p: PeerId): Buffer => Buffer.from(kadId(p.toMultihash().bytes).map((b, i) => b ^ target[i]!))
    return [...peers].sort((a, b) => Buffer.compare(d(a), d(b))).slice(0, options?.count ?? 20)
  }
})

describe('Responsibility', () => {
  it('takes a key while fewer than `rank` known peers are closer to it, whatever the key', async () => {
    const peers = await Promise.all(Array.from({ length: 10 }, async () => peerIdFromPrivateKey(await generateKeyPair('Ed25519'))))
    const [self, ...others] = peers as [PeerId, ...PeerId[]]
    const check = new Responsibility(self, () => tableOf(others))
    for (let k = 0; k < 50; k++) {
      const key = new TextEncoder().encode(`/cc-test/key-${k}`)
      const closer = others.filter(p => Buffer.compare(distance(p, key), distance(self, key)) < 0).length
      expect(check.closerPeers(key, 20)).toBe(closer)
      expect(check.isResponsible(key, 3)).toBe(closer < 3)
    }
  })

  it('takes every key while it knows no routing table', async () => {
    const self = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    expect(new Responsibility(self, () => undefined).isResponsible(new Uint8Array([1]), 1)).toBe(true)
  })
})
