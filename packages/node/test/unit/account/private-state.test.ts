/**
 * PrivateStateStore alone, over an in-memory stand-in for the record store that applies
 * the same update rule as every storing peer (checkUpdate: the owner's seq must rise).
 */
import { describe, it, expect } from 'vitest'
import {
  generateAccountKeys, keyIdOf, verifyRecordValue, checkUpdate, stateKey, openForOwner, privateStateSchema,
  type VerifiedRecord, type SealedPayload, type FriendEntry
} from '@conf-chat/protocol'
import { defaultLogger } from '@libp2p/logger'
import { PrivateStateStore, type PrivateStateComponents } from '../../../src/account/private-state.js'

class MemoryRecords {
  readonly stored = new Map<string, VerifiedRecord>()
  down = false
  async put (key: string, value: Uint8Array): Promise<{ replicas: number, refused: number }> {
    if (this.down) return { replicas: 0, refused: 0 }
    const incoming = verifyRecordValue(key, value)
    try {
      checkUpdate(this.stored.get(key), incoming)
    } catch {
      return { replicas: 0, refused: 1 }
    }
    this.stored.set(key, incoming)
    return { replicas: 1, refused: 0 }
  }

  async get<P> (key: string): Promise<VerifiedRecord<P> | undefined> {
    return this.down ? undefined : this.stored.get(key) as VerifiedRecord<P> | undefined
  }
}

const keys = generateAccountKeys()
const owner = { keyId: keyIdOf(keys.signPublic), keys }
const friend = (username: string): FriendEntry => ({ username, keyId: keyIdOf(generateAccountKeys().signPublic), signPublic: new Uint8Array(32), boxPublic: new Uint8Array(32), since: 1 })
const addFriend = (f: FriendEntry) => (s: { friends: FriendEntry[] }) => { if (!s.friends.some(x => x.username === f.username)) s.friends.push(f) }

function stateOf (records: MemoryRecords): PrivateStateComponents {
  return { records: records as unknown as PrivateStateComponents['records'], owner, logger: defaultLogger() }
}

function storedState (records: MemoryRecords): { seq: number, friends: string[] } {
  const r = records.stored.get(stateKey(owner.keyId)) as VerifiedRecord<SealedPayload>
  return { seq: r.record.seq, friends: openForOwner(r.payload.sealed, keys, privateStateSchema).friends.map(f => f.username).sort() }
}

describe('private state', () => {
  it('starts empty, writes each change with a rising seq, and is read back by another session', async () => {
    const records = new MemoryRecords()
    const a = new PrivateStateStore(stateOf(records))
    await a.load()
    expect(a.state.friends).toEqual([])
    expect(await a.update(addFriend(friend('bob')))).toBe(true)
    expect(await a.update(addFriend(friend('carol')))).toBe(true)
    expect(storedState(records)).toEqual({ seq: 2, friends: ['bob', 'carol'] })
    const b = new PrivateStateStore(stateOf(records))
    await b.load()
    expect(b.state.friends.map(f => f.username)).toEqual(['bob', 'carol'])
    a.close()
    b.close()
  })

  it('loses no change when another session wrote first: takes the newer state and replays its own', async () => {
    const records = new MemoryRecords()
    const a = new PrivateStateStore(stateOf(records))
    const b = new PrivateStateStore(stateOf(records))
    await a.load()
    await b.load()
    expect(await b.update(addFriend(friend('bob')))).toBe(true)
    // a's write (seq 1 again) is refused by the store; a reloads b's and applies its change on top
    expect(await a.update(addFriend(friend('dave')))).toBe(true)
    expect(storedState(records)).toEqual({ seq: 2, friends: ['bob', 'dave'] })
    expect(a.state.friends.map(f => f.username).sort()).toEqual(['bob', 'dave'])
    a.close()
    b.close()
  })

  it('keeps a change made while the network is down in memory and writes it when it is back', async () => {
    const records = new MemoryRecords()
    const a = new PrivateStateStore(stateOf(records), { stateRetryMs: 20 })
    await a.load()
    records.down = true
    expect(await a.update(addFriend(friend('erin')))).toBe(false)
    expect(a.state.friends.map(f => f.username)).toEqual(['erin'])
    expect(await a.flush(100)).toBe(false)
    records.down = false
    expect(await a.flush(5_000)).toBe(true)
    expect(storedState(records)).toEqual({ seq: expect.any(Number), friends: ['erin'] })
    a.close()
  })
})
