/** What a join dials: bootstrap and remembered peers together, each with its own time limit. */
import { describe, it, expect } from 'vitest'
import { multiaddr } from '@multiformats/multiaddr'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { joinTargets } from '../../../src/network/join-targets.js'
import { BOOTSTRAP_DIAL_TIMEOUT_MS, REMEMBERED_DIAL_TIMEOUT_MS } from '../../../src/constants.js'

const newId = async (): Promise<ReturnType<typeof peerIdFromPrivateKey>> => peerIdFromPrivateKey(await generateKeyPair('Ed25519'))

describe('joinTargets', () => {
  it('dials the bootstrap peers with the full limit and remembered peers with a short one, never itself, each peer once', async () => {
    const [self, supernode, friend, other] = await Promise.all([newId(), newId(), newId(), newId()])
    const targets = joinTargets(
      [multiaddr('/dns4/supernode/tcp/4300'), multiaddr(`/ip4/10.0.0.1/tcp/4300/p2p/${supernode.toString()}`)],
      [
        multiaddr(`/ip4/172.18.0.3/tcp/4301/p2p/${friend.toString()}`), // the address of its last run
        multiaddr(`/ip4/172.18.0.2/tcp/4300/p2p/${supernode.toString()}`), // a bootstrap peer already
        multiaddr(`/ip4/127.0.0.1/tcp/4301/p2p/${self.toString()}`),
        multiaddr(`/ip4/172.18.0.4/tcp/4301/p2p/${other.toString()}`)
      ],
      self)
    expect(targets.map(t => [t.addr.toString(), t.timeoutMs])).toEqual([
      ['/dns4/supernode/tcp/4300', BOOTSTRAP_DIAL_TIMEOUT_MS],
      [`/ip4/10.0.0.1/tcp/4300/p2p/${supernode.toString()}`, BOOTSTRAP_DIAL_TIMEOUT_MS],
      [`/ip4/172.18.0.3/tcp/4301/p2p/${friend.toString()}`, REMEMBERED_DIAL_TIMEOUT_MS],
      [`/ip4/172.18.0.4/tcp/4301/p2p/${other.toString()}`, REMEMBERED_DIAL_TIMEOUT_MS]
    ])
    expect(REMEMBERED_DIAL_TIMEOUT_MS).toBeLessThan(BOOTSTRAP_DIAL_TIMEOUT_MS)
  })
})
