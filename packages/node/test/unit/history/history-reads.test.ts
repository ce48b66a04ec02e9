/**
 * History pages read from the DHT when the network cannot tell: a page the record store
 * could not read (UnknownRecordError) is missing for now, never "no page", and is read
 * again on the next list. A real LocalStore (LevelDB in a temp dir) and a stand-in for
 * the record store.
 */
import { describe, it, expect, afterEach } from 'vitest'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  generateAccountKeys, keyIdOf, emptyPrivateState, newEnvelopeId,
  type PrivateState, type VerifiedRecord
} from '@conf-chat/protocol'
import { defaultLogger } from '@libp2p/logger'
import { History, IncompleteHistoryError, HISTORY_READ_ROUNDS, type HistoryComponents } from '../../../src/chat/history.js'
import { LocalStore } from '../../../src/storage/index.js'
import { UnknownRecordError } from '../../../src/network/records/index.js'
import { MemoryRecords } from '../fixtures/memory-records.js'

/** The private state's part history uses: the page counts, shared by the sessions of one account. */
class MemoryState {
  state: PrivateState = emptyPrivateState()
  async update (mutate: (s: PrivateState) => void): Promise<boolean> { mutate(this.state); return true }
}

const owner = generateAccountKeys()
const other = keyIdOf(generateAccountKeys().signPublic)
const dirs: string[] = []
const stores: LocalStore[] = []

async function session (records: MemoryRecords, state: MemoryState): Promise<History> {
  const dir = await mkdtemp(join(tmpdir(), 'conf-chat-history-'))
  dirs.push(dir)
  const local = new LocalStore(dir)
  await local.open()
  stores.push(local)
  const components = { records, local, state, logger: defaultLogger() } as unknown as HistoryComponents
  return new History(components, { keyId: keyIdOf(owner.signPublic), keys: owner })
}

afterEach(async () => {
  await Promise.allSettled(stores.splice(0).map(async s => await s.close()))
  await Promise.allSettled(dirs.splice(0).map(async d => await rm(d, { recursive: true, force: true })))
})

describe('history pages when the network cannot tell', () => {
  it('a page that could not be read is read again on the next list, not taken for an empty conversation', async () => {
    const records = new MemoryRecords()
    const state = new MemoryState()
    const writer = await session(records, state)
    const texts = ['one', 'two', 'three']
    for (const [i, text] of texts.entries()) {
      await writer.append(other, { id: newEnvelopeId(1_000 + i), from: 'alice', to: 'bob', text, sentAt: 1_000 + i }, true)
    }
    expect(await writer.flush()).toBe(true)
    expect(state.state.history[writer.conversationOf(other)]?.pages).toBe(1)

    // another peer of the account, while the DHT cannot tell: the page is read again
    // (HISTORY_READ_ROUNDS reads in all), then the list says what it could not read
    const reader = await session(records, state)
    records.down = true
    const incomplete = await reader.list(other).catch(err => err)
    expect(incomplete).toBeInstanceOf(IncompleteHistoryError)
    expect(incomplete.entries).toEqual([])
    expect(incomplete.unreadPages).toBe(1)
    expect([...records.readsOf.values()]).toEqual([HISTORY_READ_ROUNDS])
    // the network answers again: the same call now shows the conversation
    records.down = false
    expect((await reader.list(other)).map(e => e.text)).toEqual(texts)
  })

  it('a page that could not be read at first is read again within the same list', async () => {
    const records = new MemoryRecords()
    const state = new MemoryState()
    const writer = await session(records, state)
    await writer.append(other, { id: newEnvelopeId(2_000), from: 'alice', to: 'bob', text: 'kept', sentAt: 2_000 }, true)
    expect(await writer.flush()).toBe(true)

    // the first read hits a time limit, the second is answered
    const reader = await session(records, state)
    const get = records.get.bind(records)
    let failures = 1
    records.get = async <P>(key: string): Promise<VerifiedRecord<P> | undefined> => {
      if (failures-- > 0) throw new UnknownRecordError(key, 'time limit')
      return await get<P>(key)
    }
    expect((await reader.list(other)).map(e => e.text)).toEqual(['kept'])
  })
  it('many look-ups at once (a mailbox read) share one read of each page', async () => {
    // the pages are not there: each is looked for, and each look-up waits on the network
    const gate = Promise.withResolvers<void>()
    class SlowRecords extends MemoryRecords {
      override async get<P> (key: string): Promise<VerifiedRecord<P> | undefined> {
        const read = super.get<P>(key)
        await gate.promise
        return await read
      }
    }
    const records = new SlowRecords()
    const state = new MemoryState()
    const local = { has: async () => false }
    const history = new History({ records, local, state, logger: defaultLogger() } as unknown as HistoryComponents, { keyId: keyIdOf(owner.signPublic), keys: owner })
    state.state.history[history.conversationOf(other)] = { pages: 3 }
    const lookups = Array.from({ length: 20 }, async (_, i) => await history.has(other, `id-${i}`))
    await new Promise(resolve => setImmediate(resolve))
    gate.resolve()
    expect(await Promise.all(lookups)).toEqual(Array(20).fill(false))
    // the last page (2) once for the tail; absent, so the tail is a new page 3, and page 2
    // is read once more for the ids before it: twice in all, not 20 or 40 times
    expect([...records.readsOf.values()]).toEqual([2])
  })
})

describe('messages kept but not shown yet', () => {
  it('a mailbox read\'s messages kept as unshown are there for the next session on this peer until marked shown, and reach the DHT pages only then', async () => {
    const records = new MemoryRecords()
    const state = new MemoryState()
    const dir = await mkdtemp(join(tmpdir(), 'conf-chat-history-'))
    dirs.push(dir)
    const open = async (): Promise<{ local: LocalStore, history: History }> => {
      const local = new LocalStore(dir)
      await local.open()
      stores.push(local)
      const components = { records, local, state, logger: defaultLogger() } as unknown as HistoryComponents
      return { local, history: new History(components, { keyId: keyIdOf(owner.signPublic), keys: owner }) }
    }
    const first = await open()
    const dm = { id: newEnvelopeId(1_000), from: 'carol', to: 'alice', text: 'while you were away', sentAt: 1_000 }
    const conf = { id: newEnvelopeId(1_001), from: 'dave', to: 'alice', text: 'to the team', sentAt: 1_001 }
    const live = { id: newEnvelopeId(1_002), from: 'carol', to: 'alice', text: 'shown at once', sentAt: 1_002 }
    await first.history.append(other, dm, true, {})
    await first.history.append('conf/team', conf, true, { conference: { id: 'conf-1', name: 'team' } })
    await first.history.append(other, live, true)
    expect(await first.history.flush()).toBe(true)
    // the pages tell the account's other peers what was shown: not what waits to be shown
    expect((await (await session(records, state)).list(other)).map(e => e.text)).toEqual(['shown at once'])

    // the process is killed before the read shows them: the next session on this peer finds them
    await first.local.close()
    const second = await open()
    const kept = await second.history.unshown()
    expect(kept.sort((a, b) => a.entry.sentAt - b.entry.sentAt)).toEqual([{ entry: dm }, { entry: conf, conference: { id: 'conf-1', name: 'team' } }])
    expect((await second.history.list(other)).map(e => e.text)).toEqual(['while you were away', 'shown at once'])
    await second.history.shown([dm.id, conf.id])
    expect(await second.history.unshown()).toEqual([])
    expect(await second.history.flush()).toBe(true)
    expect((await (await session(records, state)).list(other)).map(e => e.text)).toEqual(['while you were away', 'shown at once'])
  })

  it('keeps nothing for the pages once the session is closing: the caller must not show what it appends then', async () => {
    const records = new MemoryRecords()
    const state = new MemoryState()
    const history = await session(records, state)
    const before = { id: newEnvelopeId(1_000), from: 'carol', to: 'alice', text: 'before the takeover', sentAt: 1_000 }
    expect(await history.append(other, before, true)).toBe(true)
    // a takeover: the session's close begins while messages are still being handled
    const closing = history.close(10_000)
    const during = { id: newEnvelopeId(1_001), from: 'carol', to: 'alice', text: 'during it', sentAt: 1_001 }
    const fromMailbox = { id: newEnvelopeId(1_002), from: 'carol', to: 'alice', text: 'from the mailbox', sentAt: 1_002 }
    expect(await history.append(other, during, true)).toBe(false)
    expect(await history.append(other, fromMailbox, true, {})).toBe(false)
    expect(await closing).toBe(true)
    // the account's next peer: what was kept is in the pages, the rest goes to it
    expect((await (await session(records, state)).list(other)).map(e => e.text)).toEqual(['before the takeover'])
    expect(await history.unshown()).toEqual([])
  })

  it('a received message whose local write was under way when the close began is refused and not known here: the next read shows it', async () => {
    const history = await session(new MemoryRecords(), new MemoryState())
    const message = { id: newEnvelopeId(1_000), from: 'carol', to: 'alice', text: 'handled as the logout began', sentAt: 1_000 }
    // the mailbox read hands it over, and the close begins before its local write ends
    const appended = history.append(other, message, true, {})
    const closing = history.close(10_000)
    expect(await appended).toBe(false)
    await closing
    // (it was refused, so it stays in the mailbox: the next read must not take it for known)
    expect(await history.has(other, message.id)).toBe(false)
  })
})
