/**
 * The conference view over two sessions of one account, each a PrivateStateStore on an
 * in-memory record store with the holders' update rule (the owner's seq must rise): when
 * one session's write loses to the other's and is replayed on the newer state, an entry
 * built from an older conference record never replaces one built from a newer record.
 */
import { describe, it, expect } from 'vitest'
import { defaultLogger } from '@libp2p/logger'
import { generateAccountKeys, keyIdOf, stateKey, openForOwner, privateStateSchema, conferenceIdOf, type ConferenceEntry, type SealedPayload, type VerifiedRecord } from '@conf-chat/protocol'
import { PrivateStateStore, type PrivateStateComponents } from '../../../src/account/private-state.js'
import { ConferenceStateView } from '../../../src/chat/conferences/state-view.js'
import { MemoryRecords } from '../fixtures/memory-records.js'

const keys = generateAccountKeys()
const owner = { keyId: keyIdOf(keys.signPublic), keys }
const ref = { owner: owner.keyId, local: '0123456789abcdef' }
const id = conferenceIdOf(ref.owner, ref.local)
const member = (username: string, joinedAt: number): ConferenceEntry['members'][number] => ({ username, keyId: keyIdOf(generateAccountKeys().signPublic), joinedAt })
const ann = member('ann', 1)
const bob = member('bob', 2)
const cat = member('cat', 3)

const entry = (seq: number, members: ConferenceEntry['members'], left: ConferenceEntry['left'] = []): ConferenceEntry =>
  ({ id, ref, name: 'team', owner: 'ann', seq, members, left, createdAt: 1 })

function session (records: MemoryRecords): { store: PrivateStateStore, view: ConferenceStateView } {
  const store = new PrivateStateStore({ records: records as unknown as PrivateStateComponents['records'], owner, logger: defaultLogger() }, { stateRetryMs: 5 })
  return { store, view: new ConferenceStateView({ state: store, log: defaultLogger().forComponent('test') }) }
}

function stored (records: MemoryRecords): ConferenceEntry[] {
  const r = records.stored.get(stateKey(owner.keyId)) as VerifiedRecord<SealedPayload>
  return openForOwner(r.payload.sealed, keys, privateStateSchema).conferences as ConferenceEntry[]
}

describe('ConferenceStateView across two sessions', () => {
  it('a replayed save of an older record keeps the newer entry another session wrote, with the leaves of both', async () => {
    const records = new MemoryRecords()
    const a = session(records)
    const b = session(records)
    await a.store.load()
    await b.store.load()
    // session b applies the conference's record 3 (cat joined) and writes first
    b.view.save(entry(3, [ann, bob, cat]))
    expect(await b.store.flush(5_000)).toBe(true)
    // session a applies the older record 2, with a leave it heard of; its write is refused and replayed on b's state
    const bobLeft = { username: 'bob', keyId: bob.keyId, leftAt: 5 }
    a.view.save(entry(2, [ann, bob], [bobLeft]))
    expect(await a.store.flush(5_000)).toBe(true)
    const [kept] = stored(records)
    expect(kept?.seq).toBe(3)
    expect(kept?.members.map(m => m.username)).toEqual(['ann', 'bob', 'cat'])
    expect(kept?.left).toEqual([bobLeft])
    expect(a.view.entry(id)?.seq).toBe(3)
    a.store.close()
    b.store.close()
  })

  it('a newer record replaces the entry', async () => {
    const records = new MemoryRecords()
    const a = session(records)
    await a.store.load()
    a.view.save(entry(1, [ann]))
    a.view.save(entry(2, [ann, bob]))
    expect(await a.store.flush(5_000)).toBe(true)
    expect(stored(records).map(e => e.seq)).toEqual([2])
    a.store.close()
  })
})
