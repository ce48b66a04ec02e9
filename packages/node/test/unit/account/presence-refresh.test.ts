/**
 * The presence refresh of a logged-in peer, over a record store in memory that applies
 * the holders' write guard (checkUpdate) and counts every read: a refresh only writes,
 * the sequence numbers put a later login above every write of an earlier session, and a
 * session whose refresh is refused learns of the later login by one read. Timers and the
 * records' clock are vitest's fake clock.
 */
import { describe, it, expect, beforeEach, afterEach, vi } from 'vitest'
import { defaultLogger } from '@libp2p/logger'
import * as cborg from 'cborg'
import { createEnvelope, generateAccountKeys, keyIdOf, type PresencePayload } from '@conf-chat/protocol'
import { MemoryRecords } from '../fixtures/memory-records.js'
import { SessionKeeper, TAKEOVER_ACK_MS, type Account, type Session, type SessionEndReason } from '../../../src/account/index.js'
import { Presence, PRESENCE_WRITES_PER_SESSION } from '../../../src/account/presence.js'
import { DEFAULT_PRESENCE_REFRESH_MS, DEFAULT_PRESENCE_TTL_MS } from '../../../src/constants.js'

const keys = generateAccountKeys()
const account = {
  username: 'ann',
  keyId: keyIdOf(keys.signPublic),
  signPublic: keys.signPublic,
  keys,
  record: { payload: { username: 'ann', fullName: 'Ann', boxPublic: keys.boxPublic }, record: { pub: keys.signPublic } }
} as unknown as Account

/** One holder's copy of each record, the write guard of a real store, and a count of reads. */
class Records extends MemoryRecords {
  payload (): PresencePayload { return [...this.stored.values()][0]!.payload as PresencePayload }
  seq (): number { return [...this.stored.values()][0]!.record.seq }
}

function peerKeeper (records: Records, peerId: string): { keeper: SessionKeeper, presence: Presence, ended: SessionEndReason[] } {
  const presence = new Presence({ records: records as any, logger: defaultLogger(), now: () => Date.now() })
  const ended: SessionEndReason[] = []
  const keeper = new SessionKeeper({
    presence,
    peerInfo: () => ({ peerId, addrs: [] }),
    notify: async () => { throw new Error('the other peer is unreachable') },
    hooks: { starting: async () => {}, started: () => {}, ending: async () => {}, ended: async (_s: Session, reason) => { ended.push(reason) }, abandoned: () => {} },
    logger: defaultLogger()
  })
  return { keeper, presence, ended }
}

beforeEach(() => { vi.useFakeTimers({ now: new Date('2026-12-04T12:00:00Z') }) })
afterEach(() => { vi.useRealTimers() })

describe('presence refresh', () => {
  it('is rare (a third of a 10-minute TTL) and only writes: no read in an hour of refreshes', async () => {
    const records = new Records()
    const { keeper, presence } = peerKeeper(records, 'peer-1')
    expect(presence.ttlMs).toBe(DEFAULT_PRESENCE_TTL_MS)
    expect(presence.refreshMs).toBe(DEFAULT_PRESENCE_REFRESH_MS)
    expect(presence.refreshMs * 3).toBeLessThanOrEqual(presence.ttlMs)
    await keeper.begin(account)
    // the login reads once (is another peer of the account online?)
    expect(records.reads).toBe(1)
    expect(records.puts).toBe(1)
    let seq = records.seq()
    for (let i = 1; i <= 18; i++) {
      await vi.advanceTimersByTimeAsync(presence.refreshMs)
      expect(records.puts).toBe(1 + i)
      expect(records.seq()).toBeGreaterThan(seq)
      seq = records.seq()
      expect(records.payload()).toMatchObject({ status: 'online', expiresAt: Date.now() + presence.ttlMs })
    }
    expect(records.reads).toBe(1)
    await keeper.logout()
    expect(records.payload().status).toBe('offline')
    expect(records.seq()).toBeGreaterThan(seq)
    expect(records.reads).toBe(1)
  })

  it('a later login writes above every write of the earlier session; the earlier one learns it from the refusal', async () => {
    const records = new Records()
    const first = peerKeeper(records, 'peer-1')
    const second = peerKeeper(records, 'peer-2')
    await first.keeper.begin(account)
    // an hour of the first session's refreshes, then a login elsewhere whose notice is lost
    await vi.advanceTimersByTimeAsync(18 * first.presence.refreshMs)
    const firstSeq = records.seq()
    await vi.advanceTimersByTimeAsync(1_000)
    await second.keeper.begin(account)
    expect(records.seq()).toBeGreaterThan(firstSeq)
    expect(records.payload().peerId).toBe('peer-2')
    const reads = records.reads
    // the first peer's next refresh is refused by the holder; one read tells it why
    await vi.advanceTimersByTimeAsync(first.presence.refreshMs)
    expect(first.ended).toEqual(['takeover'])
    expect(first.keeper.current).toBeUndefined()
    expect(records.payload().peerId).toBe('peer-2')
    expect(records.reads).toBeGreaterThan(reads)
    expect(second.keeper.current?.account.username).toBe('ann')
    await second.keeper.logout()
  })

  it('a takeover hands over: the new login reads its mailbox only once the old session has finished', async () => {
    const records = new Records()
    const first = peerKeeper(records, 'peer-1')
    // the old session's end: its mailbox read and writes, finished when the test says
    const finish = Promise.withResolvers<void>()
    let firstEnded = 0
    const old = new SessionKeeper({
      presence: first.presence,
      peerInfo: () => ({ peerId: 'peer-1', addrs: [] }),
      notify: async () => {},
      hooks: { starting: async () => {}, started: () => {}, ending: async () => {}, ended: async () => { firstEnded++; await finish.promise }, abandoned: () => {} },
      logger: defaultLogger()
    })
    await old.begin(account)
    const oldSession = old.require()
    await vi.advanceTimersByTimeAsync(1_000)
    // the new login's notice reaches the old peer's handler; its ack is the handler's end
    let ackWait = 0
    let handedOver: Promise<void> | undefined
    const second = new SessionKeeper({
      presence: new Presence({ records: records as any, logger: defaultLogger(), now: () => Date.now() }),
      peerInfo: () => ({ peerId: 'peer-2', addrs: [] }),
      notify: async (session, kind, content, to, _where, ackTimeoutMs) => {
        ackWait = ackTimeoutMs
        const env = createEnvelope(kind, content, { username: session.account.username, keys: session.account.keys }, { username: to.username, keyId: account.keyId, boxPublic: keys.boxPublic })
        await old.onTakeover(env, { session: oldSession, live: true } as any)
      },
      hooks: { starting: async () => {}, started: (_s, h) => { handedOver = h }, ending: async () => {}, ended: async () => {}, abandoned: () => {} },
      logger: defaultLogger()
    })
    await second.begin(account)
    expect(ackWait).toBe(TAKEOVER_ACK_MS)
    let settled = false
    handedOver?.then(() => { settled = true }).catch(() => {})
    await vi.advanceTimersByTimeAsync(1_000)
    // the old session ended at once (its user is told), but has not finished: no mailbox read yet
    expect(old.current).toBeUndefined()
    expect(firstEnded).toBe(1)
    expect(settled).toBe(false)
    finish.resolve()
    await vi.advanceTimersByTimeAsync(0)
    expect(settled).toBe(true)
    await second.logout()
  })

  // 2^11 signed writes: the seq is read from the encoding (no signature check) to stay fast on a loaded machine
  it('a session longer than its block of sequence numbers goes on rising', { timeout: 60_000 }, async () => {
    const seqs: number[] = []
    const records = { put: async (_key: string, value: Uint8Array) => { seqs.push(cborg.decode(value).seq); return { replicas: 1, refused: 0 } } }
    const presence = new Presence({ records: records as any, logger: defaultLogger() })
    const owner = { username: 'ann', keyId: account.keyId, keys, since: Date.now() }
    const peer = { peerId: 'peer-1', addrs: [] }
    for (let i = 0; i < PRESENCE_WRITES_PER_SESSION + 3; i++) {
      await presence.publish(owner, 'online', peer)
      vi.advanceTimersByTime(1)
    }
    expect(seqs).toHaveLength(PRESENCE_WRITES_PER_SESSION + 3)
    for (let i = 1; i < seqs.length; i++) expect(seqs[i]).toBeGreaterThan(seqs[i - 1]!)
    expect(seqs.every(s => Number.isSafeInteger(s))).toBe(true)
  })
})
