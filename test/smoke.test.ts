import { describe, it, expect, afterAll } from 'vitest'
import { generateAccountKeys, keyIdOf, createSignedRecord, encodeSignedRecord, presenceKey } from '@conf-chat/protocol'
import { startNetwork, type TestNetwork } from './helpers/network.js'

describe('smoke', () => {
  let net: TestNetwork
  afterAll(async () => { await net?.cleanup() })
  it('put and get', async () => {
    net = await startNetwork(4)
    const keys = generateAccountKeys()
    const key = presenceKey(keyIdOf(keys.signPublic))
    const rec = createSignedRecord(key, 1, { username: 'alice', status: 'online', peerId: 'x', addrs: [], expiresAt: 1, updatedAt: 1 }, keys)
    const t = Date.now()
    const res = await net.peers[0]!.records.put(key, encodeSignedRecord(rec))
    console.log('put', res, Date.now() - t)
    const t2 = Date.now()
    const got = await net.peers[3]!.records.getAll(key)
    console.log('get', got.all.length, Date.now() - t2)
    expect(got.best?.record.seq).toBe(1)
  })
})
