/**
 * A holder's check that an item's writer is registered (ownerCheck), over a stand-in
 * record store, and of a stranger's sealed item's work (registeredSenderMailboxRules).
 */
import { describe, it, expect } from 'vitest'
import {
  generateAccountKeys, createEnvelope, sealStrangerEnvelope, mailboxSetKey, keyIdOf, FRIEND_REQUEST_KIND, type AccountKeys
} from '@conf-chat/protocol'
import { ownerCheck, registeredSenderMailboxRules } from '../../../src/network/set-rules.js'

/** A record store that knows `owners` (username -> keys) and counts its reads. */
function recordsOf (owners: Record<string, AccountKeys>): { get: (key: string) => Promise<any>, reads: string[] } {
  const reads: string[] = []
  return {
    reads,
    get: async (key: string) => {
      reads.push(key)
      const keys = owners[key.split('/')[2] ?? '']
      return keys == null ? undefined : { record: { pub: keys.signPublic }, payload: { type: 'account' } }
    }
  }
}

describe('ownerCheck', () => {
  it('limits the record reads each remote peer causes; cached answers and this peer\'s own checks are not limited', async () => {
    const alice = generateAccountKeys()
    const records = recordsOf({ alice })
    const check = ownerCheck(records, { readsPerPeer: 3 })
    const stranger = (i: number): Promise<void> => check(`nobody${i}`, generateAccountKeys().signPublic, { from: 'peer-a' })
    for (let i = 0; i < 3; i++) await expect(stranger(i)).rejects.toThrow('is not registered')
    // the fourth read peer-a would cause is refused before it is made
    await expect(stranger(3)).rejects.toMatchObject({ name: 'RateLimitError' })
    expect(records.reads).toHaveLength(3)
    // another peer, and this peer itself, still get their checks
    await check('alice', alice.signPublic, { from: 'peer-b' })
    await expect(check('nobody9', generateAccountKeys().signPublic, {})).rejects.toThrow('is not registered')
    // a confirmed pair is answered from memory, whoever asks
    await check('alice', alice.signPublic, { from: 'peer-a' })
    expect(records.reads).toHaveLength(5)
  })
})

describe('registeredSenderMailboxRules', () => {
  const owner = generateAccountKeys()
  const setKey = mailboxSetKey(keyIdOf(owner.signPublic))
  const request = async (work: { bits: number }): Promise<any> => {
    const sender = generateAccountKeys()
    const envelope = createEnvelope(FRIEND_REQUEST_KIND, {}, { username: 'sam', keys: sender }, { username: 'owner', keyId: keyIdOf(owner.signPublic), boxPublic: owner.boxPublic })
    return await sealStrangerEnvelope(envelope, sender, owner.boxPublic, work)
  }
  const noOwnerReads = async (): Promise<void> => { throw new Error('a sealed item is nobody\'s account: no read') }

  it('checks a stranger\'s sealed item\'s work, without reading who sent it, and limits the checks each remote peer causes', async () => {
    const rules = registeredSenderMailboxRules(noOwnerReads, { workBits: 4, workChecksPerPeer: 2 })
    const worked = await request({ bits: 4 })
    await expect(rules.authorizeItem!(setKey, worked, { from: 'peer-a' })).resolves.toBeUndefined()
    // work found for fewer bits than the holder asks is (almost always: 1 in 2^16 passes) refused as invalid
    const strict = registeredSenderMailboxRules(noOwnerReads, { workBits: 16 })
    await expect(strict.authorizeItem!(setKey, await request({ bits: 0 }), { from: 'peer-a' })).rejects.toMatchObject({ name: 'InvalidSetItemError', message: /not enough work/ })
    // peer-a's third check in the minute is refused before it is made; another peer's is not
    await expect(rules.authorizeItem!(setKey, await request({ bits: 4 }), { from: 'peer-a' })).resolves.toBeUndefined()
    await expect(rules.authorizeItem!(setKey, await request({ bits: 4 }), { from: 'peer-a' })).rejects.toMatchObject({ name: 'RateLimitError' })
    await expect(rules.authorizeItem!(setKey, await request({ bits: 4 }), { from: 'peer-b' })).resolves.toBeUndefined()
    // work found valid once is not checked again: the same key's next items cost no check
    await expect(rules.authorizeItem!(setKey, worked, { from: 'peer-a' })).resolves.toBeUndefined()
  })

  it('checks at most so many strangers\' work a minute from all peers together', async () => {
    const rules = registeredSenderMailboxRules(noOwnerReads, { workBits: 0, workChecksPerMinute: 2 })
    await expect(rules.authorizeItem!(setKey, await request({ bits: 0 }), { from: 'peer-a' })).resolves.toBeUndefined()
    await expect(rules.authorizeItem!(setKey, await request({ bits: 0 }), { from: 'peer-b' })).resolves.toBeUndefined()
    await expect(rules.authorizeItem!(setKey, await request({ bits: 0 }), { from: 'peer-c' })).rejects.toMatchObject({ name: 'RateLimitError' })
    // this peer's own write is checked still
    await expect(rules.authorizeItem!(setKey, await request({ bits: 0 }), {})).resolves.toBeUndefined()
  })
})
