/**
 * The relay server's reservations (libp2p's circuit-relay-v2 server as relay.ts configures
 * it, its reservation store driven directly): a renewed reservation lasts its full
 * lifetime from its last renewal, however often it was renewed (libp2p alone deleted a
 * reservation renewed twice one lifetime after its first renewal); one not renewed ends.
 */
import { describe, it, expect } from 'vitest'
import { defaultLogger } from '@libp2p/logger'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import type { PeerId } from '@libp2p/interface'
import { relayServer } from '../../../src/network/relay.js'

const TTL_MS = 400

interface Store { reserve: (peer: PeerId, addr: unknown) => { status: unknown }, get: (peer: PeerId) => unknown }

async function wait (ms: number): Promise<void> {
  await new Promise(resolve => setTimeout(resolve, ms))
}

/** The server's reservation store, and a moment when `peer`'s reservation is gone. */
function store (): Store {
  const service = relayServer({ reservationTtlMs: TTL_MS })({ logger: defaultLogger() } as any)
  return (service as any).reservationStore as Store
}

/** Resolves with the ms since `t0` at which `peer` no longer has a reservation in `s` (checked every 10 ms). */
async function goneAfter (s: Store, peer: PeerId, t0: number): Promise<number> {
  while (s.get(peer) != null) await wait(10)
  return Date.now() - t0
}

describe('relay reservations', () => {
  it('renewed twice, a reservation lasts its lifetime from the last renewal', async () => {
    const s = store()
    const peer = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    const addr = multiaddr('/ip4/198.51.100.7/tcp/4301')
    const t0 = Date.now()
    s.reserve(peer, addr)
    await wait(TTL_MS / 2)
    s.reserve(peer, addr) // first renewal: ends at 1.5 x TTL
    await wait(TTL_MS / 2)
    s.reserve(peer, addr) // second renewal: ends at 2 x TTL
    const gone = await goneAfter(s, peer, t0)
    expect(gone).toBeGreaterThanOrEqual(2 * TTL_MS - 20)
    expect(gone).toBeLessThan(3 * TTL_MS)
  })

  it('not renewed, a reservation ends after its lifetime', async () => {
    const s = store()
    const peer = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    const t0 = Date.now()
    s.reserve(peer, multiaddr('/ip4/198.51.100.7/tcp/4301'))
    const gone = await goneAfter(s, peer, t0)
    expect(gone).toBeGreaterThanOrEqual(TTL_MS - 20)
    expect(gone).toBeLessThan(2 * TTL_MS)
  })
})
