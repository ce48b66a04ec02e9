/** The filter on kad-dht's closer peers: news passes, repeats are dropped, memory is bounded. */
import { describe, it, expect } from 'vitest'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import type { PeerId, PeerInfo } from '@libp2p/interface'
import { DiscoveryFilter } from '../../../src/network/dht/index.js'

async function peer (): Promise<PeerId> {
  return peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
}
const info = (id: PeerId, ...ports: number[]): PeerInfo => ({ id, multiaddrs: ports.map(p => multiaddr(`/ip4/127.0.0.1/tcp/${p}`)) })

describe('DiscoveryFilter', () => {
  it('lets a new peer through once, then drops the same addresses', async () => {
    const filter = new DiscoveryFilter()
    const a = await peer()
    expect(filter.admit(info(a, 1000))).toBe(true)
    expect(filter.admit(info(a, 1000))).toBe(false)
    expect(filter.admit(info(a))).toBe(false)
    expect(filter.counts).toEqual({ passed: 1, dropped: 2 })
  })

  it('lets a known peer through when it brings an address not seen with it', async () => {
    const filter = new DiscoveryFilter()
    const a = await peer()
    expect(filter.admit(info(a, 1000))).toBe(true)
    expect(filter.admit(info(a, 1000, 2000))).toBe(true)
    // both known now, in any order or subset
    expect(filter.admit(info(a, 2000))).toBe(false)
    expect(filter.admit(info(a, 2000, 1000))).toBe(false)
  })

  it('tells peers apart', async () => {
    const filter = new DiscoveryFilter()
    const [a, b] = [await peer(), await peer()]
    expect(filter.admit(info(a, 1000))).toBe(true)
    expect(filter.admit(info(b, 1000))).toBe(true)
  })

  it('lets a peer through again after repeatAfterMs', async () => {
    let now = 0
    const filter = new DiscoveryFilter({ repeatAfterMs: 1000, now: () => now })
    const a = await peer()
    expect(filter.admit(info(a, 1000))).toBe(true)
    now = 999
    expect(filter.admit(info(a, 1000))).toBe(false)
    now = 1000
    expect(filter.admit(info(a, 1000))).toBe(true)
    expect(filter.admit(info(a, 1000))).toBe(false)
  })

  it('remembers at most maxPeers, forgetting the least recently let through', async () => {
    const filter = new DiscoveryFilter({ maxPeers: 2 })
    const [a, b, c] = [await peer(), await peer(), await peer()]
    filter.admit(info(a, 1))
    filter.admit(info(b, 1))
    filter.admit(info(c, 1))
    expect(filter.admit(info(b, 1))).toBe(false)
    expect(filter.admit(info(c, 1))).toBe(false)
    expect(filter.admit(info(a, 1))).toBe(true)
  })
})
