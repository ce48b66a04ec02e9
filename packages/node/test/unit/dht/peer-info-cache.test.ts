/** The peer-info cache in front of kad-dht's peer-store reads: hits, invalidation on update, age, bounds. */
import { describe, it, expect } from 'vitest'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { TypedEventEmitter, type Libp2pEvents, type PeerId, type PeerInfo } from '@libp2p/interface'
import { PeerInfoCache } from '../../../src/network/dht/index.js'

async function peer (): Promise<PeerId> {
  return peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
}

/** A peer store that counts reads; `port` is the address it answers with. */
function fakeStore (): { getInfo: (id: PeerId) => Promise<PeerInfo>, reads: number, port: number } {
  const store = {
    reads: 0,
    port: 1000,
    async getInfo (id: PeerId): Promise<PeerInfo> {
      store.reads++
      return { id, multiaddrs: [multiaddr(`/ip4/127.0.0.1/tcp/${store.port}`)] }
    }
  }
  return store
}

describe('PeerInfoCache', () => {
  it('reads the store once for repeated reads of an unchanged peer', async () => {
    const store = fakeStore()
    const cache = new PeerInfoCache({ peerStore: store, events: new TypedEventEmitter<Libp2pEvents>() })
    const a = await peer()
    for (let i = 0; i < 5; i++) expect((await cache.getInfo(a)).multiaddrs[0]!.toString()).toBe('/ip4/127.0.0.1/tcp/1000')
    expect(store.reads).toBe(1)
    expect(cache.counts).toEqual({ hits: 4, misses: 1 })
  })

  it('reads again after libp2p reports the peer updated', async () => {
    const store = fakeStore()
    const events = new TypedEventEmitter<Libp2pEvents>()
    const cache = new PeerInfoCache({ peerStore: store, events })
    const a = await peer()
    await cache.getInfo(a)
    store.port = 2000
    events.safeDispatchEvent('peer:update', { detail: { peer: { id: a } as any, previous: undefined } })
    expect((await cache.getInfo(a)).multiaddrs[0]!.toString()).toBe('/ip4/127.0.0.1/tcp/2000')
    expect(store.reads).toBe(2)
  })

  it('reads again once an entry is ttlMs old, and keeps at most maxPeers', async () => {
    let now = 0
    const store = fakeStore()
    const cache = new PeerInfoCache({ peerStore: store, events: new TypedEventEmitter<Libp2pEvents>() }, { ttlMs: 100, maxPeers: 1, now: () => now })
    const [a, b] = [await peer(), await peer()]
    await cache.getInfo(a)
    now = 100
    await cache.getInfo(a)
    expect(store.reads).toBe(2)
    await cache.getInfo(b)
    await cache.getInfo(a)
    expect(store.reads).toBe(4)
  })

  it('does not keep a failed read', async () => {
    let fail = true
    const events = new TypedEventEmitter<Libp2pEvents>()
    const cache = new PeerInfoCache({
      peerStore: { getInfo: async (id: PeerId) => { if (fail) throw Object.assign(new Error('not found'), { name: 'NotFoundError' }); return { id, multiaddrs: [] } } },
      events
    })
    const a = await peer()
    await expect(cache.getInfo(a)).rejects.toThrow('not found')
    fail = false
    await expect(cache.getInfo(a)).resolves.toMatchObject({ multiaddrs: [] })
  })
})
