/** A holder's check that an item's writer is registered (ownerCheck), over a stand-in record store. */
import { describe, it, expect } from 'vitest'
import { generateAccountKeys, type AccountKeys } from '@conf-chat/protocol'
import { ownerCheck } from '../../../src/network/set-rules.js'

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
