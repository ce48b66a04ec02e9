/** The peer's own signed peer record: sealed once per set of addresses, again when they change, never after a stop. */
import { describe, it, expect, vi } from 'vitest'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { defaultLogger } from '@libp2p/logger'
import { PeerRecord, RecordEnvelope } from '@libp2p/peer-record'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { TypedEventEmitter, type Libp2pEvents, type PeerId } from '@libp2p/interface'
import { SelfRecord } from '../../../src/network/self-record.js'

async function setup (listening = true): Promise<{ record: SelfRecord, events: TypedEventEmitter<Libp2pEvents>, patches: Uint8Array[], addrs: Multiaddr[], self: PeerId }> {
  const privateKey = await generateKeyPair('Ed25519')
  const self = peerIdFromPrivateKey(privateKey)
  const events = new TypedEventEmitter<Libp2pEvents>()
  const patches: Uint8Array[] = []
  const addrs = listening ? [multiaddr(`/ip4/127.0.0.1/tcp/4001/p2p/${self.toString()}`)] : []
  const record = new SelfRecord({
    peerId: self,
    privateKey,
    peerStore: {
      patch: async (id, data) => {
        expect(id.equals(self)).toBe(true)
        patches.push(data.peerRecordEnvelope!)
        // the peer store reports its update of the peer itself, as libp2p's does
        events.safeDispatchEvent('self:peer:update', { detail: {} as any })
        return {} as any
      }
    },
    addressManager: { getAddresses: () => addrs },
    events,
    logger: defaultLogger()
  })
  return { record, events, patches, addrs, self }
}

async function addressesOf (envelope: Uint8Array): Promise<string[]> {
  const opened = await RecordEnvelope.openAndCertify(envelope, PeerRecord.DOMAIN)
  return PeerRecord.createFromProtobuf(opened.payload).multiaddrs.map(String)
}

describe('SelfRecord', () => {
  it('has the first record stored before libp2p has started: it waits for a transport to listen', async () => {
    const { record, events, patches, addrs, self } = await setup(false)
    vi.useFakeTimers()
    record.start()
    let started = false
    const starting = record.afterStart().then(() => { started = true })
    await vi.advanceTimersByTimeAsync(1_000)
    expect(started).toBe(false)
    vi.useRealTimers()
    addrs.push(multiaddr(`/ip4/127.0.0.1/tcp/4002/p2p/${self.toString()}`))
    events.safeDispatchEvent('transport:listening', { detail: {} as any })
    await starting
    expect(patches).toHaveLength(1)
    expect(await addressesOf(patches[0]!)).toEqual(['/ip4/127.0.0.1/tcp/4002'])
    record.stop()
  })

  it('seals the record of the addresses once, whatever the updates that leave them as they are', async () => {
    const { record, events, patches } = await setup()
    record.start()
    await record.afterStart()
    events.safeDispatchEvent('self:peer:update', { detail: {} as any })
    events.safeDispatchEvent('self:peer:update', { detail: {} as any })
    await record.settled()
    expect(patches).toHaveLength(1)
    expect(await addressesOf(patches[0]!)).toEqual(['/ip4/127.0.0.1/tcp/4001'])
    record.stop()
  })

  it('seals a new record when the addresses change, and none after a stop', async () => {
    const { record, events, patches, addrs, self } = await setup()
    record.start()
    await record.afterStart()
    addrs.push(multiaddr(`/ip4/10.0.0.5/tcp/4001/p2p/${self.toString()}`))
    events.safeDispatchEvent('self:peer:update', { detail: {} as any })
    await record.settled()
    expect(patches).toHaveLength(2)
    expect(await addressesOf(patches[1]!)).toEqual(['/ip4/127.0.0.1/tcp/4001', '/ip4/10.0.0.5/tcp/4001'])
    record.stop()
    addrs.pop()
    events.safeDispatchEvent('self:peer:update', { detail: {} as any })
    await record.settled()
    expect(patches).toHaveLength(2)
  })
})
