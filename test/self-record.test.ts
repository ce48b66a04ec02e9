/**
 * A peer's signed peer record on real libp2p nodes (loopback TCP, one process): identify
 * answers with the record the peer keeps (self-record.ts), so a peer met again sends the
 * record the other side already stores, and that side's peer-store entry does not change.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { RecordEnvelope, PeerRecord } from '@libp2p/peer-record'
import type { IdentifyResult, PeerUpdate } from '@libp2p/interface'
import { equals as uint8ArrayEquals } from 'uint8arrays'
import type { ChatPeer } from '@conf-chat/node/network'
import { startNetwork, type TestNetwork } from './helpers/network.js'

describe("a peer's signed peer record", () => {
  let net: TestNetwork | undefined
  let a: ChatPeer
  let b: ChatPeer

  beforeAll(async () => {
    net = await startNetwork(1)
    a = net.supernode
    b = net.peers[0]!
  }, 60_000)
  afterAll(async () => { await net?.cleanup() }, 60_000)

  /** Close every connection between b and a, dial again, and wait for b's identify of a on it. */
  async function meetAgain (): Promise<IdentifyResult> {
    await b.libp2p.hangUp(a.peerId)
    const identified = new Promise<IdentifyResult>(resolve => {
      const on = ({ detail }: CustomEvent<IdentifyResult>): void => {
        if (!detail.peerId.equals(a.peerId)) return
        b.libp2p.removeEventListener('peer:identify', on)
        resolve(detail)
      }
      b.libp2p.addEventListener('peer:identify', on)
    })
    await b.libp2p.dial(a.peerId)
    return await identified
  }

  it('is sealed once for its addresses and sent unchanged to a peer that meets it again', async () => {
    const own = (await a.libp2p.peerStore.get(a.peerId)).peerRecordEnvelope
    expect(own).toBeDefined()
    const record = PeerRecord.createFromProtobuf((await RecordEnvelope.openAndCertify(own!, PeerRecord.DOMAIN)).payload)
    expect(record.multiaddrs.map(String).sort()).toEqual(a.libp2p.getMultiaddrs().map(ma => ma.decapsulateCode(421).toString()).sort())

    const first = await meetAgain()
    const stored = (await b.libp2p.peerStore.get(a.peerId)).peerRecordEnvelope
    expect(stored).toEqual(own)
    // each identify used to seal a new record (a new sequence number): b stored each one
    const newRecords: unknown[] = []
    const onUpdate = ({ detail }: CustomEvent<PeerUpdate>): void => {
      if (!detail.peer.id.equals(a.peerId)) return
      const before = detail.previous?.peerRecordEnvelope
      const after = detail.peer.peerRecordEnvelope
      if (before == null || after == null || !uint8ArrayEquals(before, after)) newRecords.push(after)
    }
    b.libp2p.addEventListener('peer:update', onUpdate)
    try {
      const second = await meetAgain()
      expect(second.signedPeerRecord?.seq).toBe(first.signedPeerRecord?.seq)
      expect((await b.libp2p.peerStore.get(a.peerId)).peerRecordEnvelope).toEqual(own)
      expect(newRecords).toEqual([])
    } finally {
      b.libp2p.removeEventListener('peer:update', onUpdate)
    }
  }, 60_000)
})
