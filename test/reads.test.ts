/**
 * Reads on real libp2p nodes (loopback TCP): a read stops at its namespace's quorum and
 * returns the newest record even when a holder has an older one, that holder is
 * corrected in the background, and a record nobody holds reads as absent.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { generateAccountKeys, keyIdOf, createSignedRecord, encodeSignedRecord, presenceKey, type PresencePayload } from '@conf-chat/protocol'
import { kadCorrect, READ_QUORUMS, type ChatPeer } from '@conf-chat/node/network'
import { startNetwork, type TestNetwork } from './helpers/network.js'
import { eventually } from './helpers/chat.js'

const presence = (seq: number): PresencePayload =>
  ({ username: 'alice', status: 'online', peerId: '12D3KooWtest', addrs: [], expiresAt: Date.parse('2100-01-01'), updatedAt: seq })

describe('reads at a quorum on a supernode and 6 peers', () => {
  let net: TestNetwork
  let reader: ChatPeer

  beforeAll(async () => {
    net = await startNetwork(5)
    reader = await net.addPeer()
  }, 90_000)

  afterAll(async () => {
    await net?.cleanup()
  }, 60_000)

  /** PUT_VALUE of `value` straight to one store (through kad-dht's own RPC client); true if it stored it. */
  async function sendTo (store: ChatPeer, key: string, value: Uint8Array): Promise<boolean> {
    const send = kadCorrect(net.supernode.libp2p.services.dht)
    if (send == null) throw new Error('kad-dht has no RPC client to send with')
    return await send(store.peerId, key, value, { signal: AbortSignal.timeout(20_000) })
  }

  it('returns the newest record when one of the holders has an older one, and corrects that holder', async () => {
    const alice = generateAccountKeys()
    const key = presenceKey(keyIdOf(alice.signPublic))
    const v1 = encodeSignedRecord(createSignedRecord(key, 1, presence(1), alice))
    const v2 = encodeSignedRecord(createSignedRecord(key, 2, presence(2), alice))
    const [stale, fresh1, fresh2] = net.peers as [ChatPeer, ChatPeer, ChatPeer]
    // exactly a quorum of holders: the read stops at the last of them, so it hears the stale one
    expect(READ_QUORUMS['cc-presence']).toBe(3)
    expect(await sendTo(stale, key, v1)).toBe(true)
    expect(await sendTo(fresh1, key, v2)).toBe(true)
    expect(await sendTo(fresh2, key, v2)).toBe(true)
    expect((await stale.records.getLocal(key))?.record.seq).toBe(1)

    const got = await reader.records.read<PresencePayload>(key)
    expect(got.status).toBe('found')
    expect(got.all.map(r => r.record.seq).sort()).toEqual([1, 2, 2])
    expect(got.best?.record.seq).toBe(2)
    expect(Buffer.compare(got.best!.value, v2)).toBe(0)

    // the stale holder now has the newest, sent by the reader (byte for byte, still signed by alice)
    await eventually(async () => (await stale.records.getLocal(key))?.record.seq === 2)
    expect(Buffer.compare((await stale.records.storedValue(key))!, v2)).toBe(0)
    expect(reader.records.correctionCounts).toMatchObject({ sent: 1, stored: 1, failed: 0 })
    // the reader did not become a holder
    expect(await reader.records.getLocal(key)).toBeUndefined()
  })

  it('a record no store holds reads as absent, not unknown', async () => {
    const key = presenceKey(keyIdOf(generateAccountKeys().signPublic))
    const got = await reader.records.read(key)
    expect(got).toMatchObject({ status: 'absent', best: undefined, all: [] })
    expect(got.answers.none).toBeGreaterThanOrEqual(3)
    expect(await reader.records.get(key)).toBeUndefined()
  })
})
