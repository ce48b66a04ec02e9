/**
 * When history entries go to the DHT pages: once the conversation has been quiet for the
 * flush delay, at the latest the longest wait after the first entry, and, for entries a
 * session never wrote (its process killed), at the account's next login on the peer. A
 * real LocalStore (LevelDB in a temp dir), a record store in memory and a fake clock.
 */
import { describe, it, expect, afterEach, vi } from 'vitest'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateAccountKeys, keyIdOf, emptyPrivateState, newEnvelopeId, historyKey, openForOwner, historyPageSchema, type PrivateState, type SealedPayload } from '@conf-chat/protocol'
import { defaultLogger } from '@libp2p/logger'
import { History, DEFAULT_HISTORY_FLUSH_MS, HISTORY_FLUSH_MAX_WAIT_MS, type HistoryComponents } from '../../../src/chat/history.js'
import { LocalStore } from '../../../src/storage/index.js'
import { MemoryRecords } from '../fixtures/memory-records.js'

class MemoryState {
  state: PrivateState = emptyPrivateState()
  async update (mutate: (s: PrivateState) => void): Promise<boolean> { mutate(this.state); return true }
}

const owner = generateAccountKeys()
const ownerId = keyIdOf(owner.signPublic)
const other = keyIdOf(generateAccountKeys().signPublic)
const dirs: string[] = []
const stores: LocalStore[] = []

async function peerStore (): Promise<LocalStore> {
  const dir = await mkdtemp(join(tmpdir(), 'conf-chat-history-'))
  dirs.push(dir)
  const local = new LocalStore(dir)
  await local.open()
  stores.push(local)
  return local
}

function session (records: MemoryRecords, state: MemoryState, local: LocalStore): History {
  const components = { records, local, state, logger: defaultLogger() } as unknown as HistoryComponents
  return new History(components, { keyId: ownerId, keys: owner })
}

/** The texts in the conversation's first DHT page. */
function pageTexts (records: MemoryRecords, h: History): string[] {
  const found = records.stored.get(historyKey(ownerId, h.conversationOf(other), 0))
  if (found == null) return []
  return openForOwner((found.payload as SealedPayload).sealed, owner, historyPageSchema).entries.map(e => e.text)
}

let n = 0
const entry = (text: string): Parameters<History['append']>[1] => {
  const sentAt = 1_000 + n++
  return { id: newEnvelopeId(sentAt), from: 'alice', to: 'bob', text, sentAt }
}

afterEach(async () => {
  vi.useRealTimers()
  await Promise.allSettled(stores.splice(0).map(async s => await s.close()))
  await Promise.allSettled(dirs.splice(0).map(async d => await rm(d, { recursive: true, force: true })))
})

describe('history writes', () => {
  it('a conversation going on is written once it is quiet, all its new entries in one put', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] })
    const records = new MemoryRecords()
    const h = session(records, new MemoryState(), await peerStore())
    // a message a second for 10 s: no write while it goes on
    for (let i = 0; i < 10; i++) {
      await h.append(other, entry(`m${i}`), true)
      await vi.advanceTimersByTimeAsync(1_000)
    }
    expect(records.puts).toBe(0)
    await vi.advanceTimersByTimeAsync(DEFAULT_HISTORY_FLUSH_MS)
    await vi.waitFor(() => { expect(records.puts).toBe(1) })
    expect(pageTexts(records, h)).toEqual(Array.from({ length: 10 }, (_, i) => `m${i}`))
  })

  it('a conversation that never pauses is written at the latest the longest wait after its first new entry', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] })
    const records = new MemoryRecords()
    const h = session(records, new MemoryState(), await peerStore())
    const start = Date.now()
    let firstWriteAt: number | undefined
    for (let i = 0; Date.now() - start < HISTORY_FLUSH_MAX_WAIT_MS + 10_000; i++) {
      await h.append(other, entry(`m${i}`), true)
      await vi.advanceTimersByTimeAsync(1_000)
      if (firstWriteAt == null && records.puts > 0) firstWriteAt = Date.now() - start
    }
    expect(firstWriteAt).toBeDefined()
    expect(firstWriteAt).toBeGreaterThanOrEqual(HISTORY_FLUSH_MAX_WAIT_MS)
    expect(firstWriteAt).toBeLessThanOrEqual(HISTORY_FLUSH_MAX_WAIT_MS + 1_000)
    expect(records.puts).toBe(1)
  })

  it('entries a killed session never wrote are written at the next login on the peer, and only once', async () => {
    const records = new MemoryRecords()
    const state = new MemoryState()
    const local = await peerStore()
    const killed = session(records, state, local)
    await killed.append(other, entry('before the kill'), true)
    await killed.append(other, entry('just before'), true)
    expect(records.puts).toBe(0)
    // (the process dies: no flush, no close)

    const next = session(records, state, local)
    expect(await next.resumeWrites()).toBe(2)
    expect(await next.flush()).toBe(true)
    expect(pageTexts(records, next)).toEqual(['before the kill', 'just before'])
    // written: the login after finds nothing to write
    expect(await session(records, state, local).resumeWrites()).toBe(0)
  })

  it('entries read from the DHT pages (another peer of the account) are not written again at the next login', async () => {
    const records = new MemoryRecords()
    const state = new MemoryState()
    const writer = session(records, state, await peerStore())
    await writer.append(other, entry('written elsewhere'), true)
    expect(await writer.flush()).toBe(true)
    const local = await peerStore()
    const reader = session(records, state, local)
    expect((await reader.list(other)).map(e => e.text)).toEqual(['written elsewhere'])
    const puts = records.puts
    expect(await session(records, state, local).resumeWrites()).toBe(0)
    expect(records.puts).toBe(puts)
  })

  it('entries a logout could not write (the DHT unreachable) are written at the next login on the peer', async () => {
    const records = new MemoryRecords()
    const state = new MemoryState()
    const local = await peerStore()
    const first = session(records, state, local)
    await first.append(other, entry('unwritten'), true)
    records.down = true
    expect(await first.close(1_000)).toBe(false)
    records.down = false

    const next = session(records, state, local)
    expect(await next.resumeWrites()).toBe(1)
    expect(await next.flush()).toBe(true)
    expect(pageTexts(records, next)).toEqual(['unwritten'])
  })
})
