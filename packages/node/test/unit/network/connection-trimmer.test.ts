/**
 * ConnectionTrimmer with stub connections, stub peer tags and an injected clock: over the
 * high water mark it closes connections down to the low water mark, never one that is
 * young, carries a stream the peer needs, or leads to a keep-alive peer; the least
 * valuable go first; while still over the mark it looks again (when young connections
 * come of age, or after a while for connections in use).
 */
import { describe, it, expect, vi, afterEach } from 'vitest'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { defaultLogger } from '@libp2p/logger'
import { KEEP_ALIVE, type Connection, type PeerId, type Tag } from '@libp2p/interface'
import { ConnectionTrimmer } from '../../../src/network/connection-trimmer.js'
import { PUNCHED_TAG, PUNCHED_TAG_VALUE } from '../../../src/network/hole-punch.js'

const log = defaultLogger().forComponent('test:connection-trimmer')

class StubConnection {
  status: 'open' | 'closed' = 'open'
  streams: Array<{ protocol?: string }> = []
  readonly timeline: { open: number }
  constructor (readonly remotePeer: PeerId, opened: number, readonly direction: 'inbound' | 'outbound' = 'inbound') {
    this.timeline = { open: opened }
  }

  async close (): Promise<void> { this.status = 'closed' }
  abort (): void { this.status = 'closed' }
}

async function peers (n: number): Promise<PeerId[]> {
  return await Promise.all(Array.from({ length: n }, async () => peerIdFromPrivateKey(await generateKeyPair('Ed25519'))))
}

interface Setup {
  trimmer: ConnectionTrimmer
  conns: StubConnection[]
  tags: Map<string, Map<string, Tag>>
  open: (c: StubConnection) => void
  clock: { now: number }
}

function setup (init: { lowWater: number, highWater: number, gracePeriodMs: number, recheckMs?: number, redialWindowMs?: number, wantedForMs?: number }): Setup {
  const conns: StubConnection[] = []
  const tags = new Map<string, Map<string, Tag>>()
  const clock = { now: 1_000_000 }
  const trimmer = new ConnectionTrimmer({
    connections: () => conns.filter(c => c.status === 'open') as unknown as Connection[],
    tags: async peer => tags.get(peer.toString()) ?? new Map(),
    log
  }, { ...init, now: () => clock.now })
  return { trimmer, conns, tags, clock, open: c => { conns.push(c); trimmer.onConnectionOpen(c as unknown as Connection) } }
}

const openCount = (conns: StubConnection[]): number => conns.filter(c => c.status === 'open').length

afterEach(() => { vi.useRealTimers() })

describe('ConnectionTrimmer', () => {
  it('leaves the connections alone up to the high water mark, then closes down to the low water mark', async () => {
    const s = setup({ lowWater: 3, highWater: 5, gracePeriodMs: 1000 })
    const ids = await peers(6)
    for (const id of ids.slice(0, 5)) s.open(new StubConnection(id, s.clock.now - 5000))
    await s.trimmer.idle()
    expect(openCount(s.conns)).toBe(5)
    expect(s.trimmer.counts.trims).toBe(0)
    s.open(new StubConnection(ids[5]!, s.clock.now - 5000))
    await s.trimmer.idle()
    expect(openCount(s.conns)).toBe(3)
    expect(s.trimmer.counts).toEqual({ trims: 1, closed: 3, redialed: 0 })
  })

  it('never closes a young connection, one with a stream in use, or one to a keep-alive peer', async () => {
    const s = setup({ lowWater: 0, highWater: 2, gracePeriodMs: 1000 })
    const [young, chat, negotiating, kept, idleWithPing, plain] = await peers(6)
    const conns = {
      young: new StubConnection(young!, s.clock.now - 10),
      chat: new StubConnection(chat!, s.clock.now - 5000),
      negotiating: new StubConnection(negotiating!, s.clock.now - 5000),
      kept: new StubConnection(kept!, s.clock.now - 5000),
      idleWithPing: new StubConnection(idleWithPing!, s.clock.now - 5000),
      plain: new StubConnection(plain!, s.clock.now - 5000)
    }
    conns.chat.streams.push({ protocol: '/conf-chat/chat/1.0.0' })
    conns.negotiating.streams.push({})
    conns.idleWithPing.streams.push({ protocol: '/ipfs/ping/1.0.0' }, { protocol: '/ipfs/id/1.0.0' })
    s.tags.set(kept!.toString(), new Map([[KEEP_ALIVE, { value: 1 }], ['kad-close', { value: 50 }]]))
    for (const c of Object.values(conns)) s.open(c)
    await s.trimmer.idle()
    expect(Object.fromEntries(Object.entries(conns).map(([k, c]) => [k, c.status]))).toEqual({
      young: 'open', chat: 'open', negotiating: 'open', kept: 'open', idleWithPing: 'closed', plain: 'closed'
    })
  })

  it('closes the least valuable first: lowest tag value, then fewer streams, inbound before outbound, newest first', async () => {
    const s = setup({ lowWater: 2, highWater: 3, gracePeriodMs: 1000 })
    const [tagged, outboundOld, inboundOld, inboundNew] = await peers(4)
    s.tags.set(tagged!.toString(), new Map([['kad-peer', { value: 1 }]]))
    const conns = {
      tagged: new StubConnection(tagged!, s.clock.now - 9000),
      outboundOld: new StubConnection(outboundOld!, s.clock.now - 9000, 'outbound'),
      inboundOld: new StubConnection(inboundOld!, s.clock.now - 9000),
      inboundNew: new StubConnection(inboundNew!, s.clock.now - 2000)
    }
    for (const c of Object.values(conns)) s.open(c)
    await s.trimmer.idle()
    expect(Object.entries(conns).filter(([, c]) => c.status === 'open').map(([k]) => k)).toEqual(['tagged', 'outboundOld'])
  })

  it('keeps a direct connection to a peer punched through to, accepted as the responder (inbound), over outbound ones', async () => {
    const s = setup({ lowWater: 2, highWater: 2, gracePeriodMs: 1000 })
    const [punched, outboundA, outboundB] = await peers(3)
    s.tags.set(punched!.toString(), new Map([[PUNCHED_TAG, { value: PUNCHED_TAG_VALUE }]]))
    const conns = {
      punched: new StubConnection(punched!, s.clock.now - 2000, 'inbound'),
      outboundA: new StubConnection(outboundA!, s.clock.now - 9000, 'outbound'),
      outboundB: new StubConnection(outboundB!, s.clock.now - 5000, 'outbound')
    }
    for (const c of Object.values(conns)) s.open(c)
    await s.trimmer.idle()
    expect(Object.entries(conns).filter(([, c]) => c.status === 'open').map(([k]) => k)).toEqual(['punched', 'outboundA'])
  })

  it('trims again when the young connections that kept it over the high water mark come of age', async () => {
    vi.useFakeTimers()
    const s = setup({ lowWater: 1, highWater: 2, gracePeriodMs: 1000 })
    const ids = await peers(4)
    for (const id of ids) s.open(new StubConnection(id, s.clock.now - 400))
    await s.trimmer.idle()
    expect(openCount(s.conns)).toBe(4)
    s.clock.now += 590
    await vi.advanceTimersByTimeAsync(590)
    await s.trimmer.idle()
    expect(openCount(s.conns)).toBe(4) // still young
    s.clock.now += 20
    await vi.advanceTimersByTimeAsync(20)
    await s.trimmer.idle()
    expect(openCount(s.conns)).toBe(1)
  })

  it('looks again while over the high water mark, and closes a connection once its stream has ended', async () => {
    vi.useFakeTimers()
    const s = setup({ lowWater: 1, highWater: 1, gracePeriodMs: 100, recheckMs: 1000 })
    const [a, b] = await peers(2)
    const busy = new StubConnection(a!, s.clock.now - 5000)
    busy.streams.push({ protocol: '/conf-chat/kad/1.0.0' })
    const other = new StubConnection(b!, s.clock.now - 5000, 'outbound')
    other.streams.push({ protocol: '/conf-chat/chat/1.0.0' })
    s.open(busy)
    s.open(other)
    await s.trimmer.idle()
    expect(openCount(s.conns)).toBe(2)
    busy.streams = [] // the pooled DHT stream closed when idle
    await vi.advanceTimersByTimeAsync(999)
    expect(busy.status).toBe('open')
    await vi.advanceTimersByTimeAsync(2)
    await s.trimmer.idle()
    expect(busy.status).toBe('closed')
    expect(other.status).toBe('open')
  })

  it('keeps a peer that dials again right after its connection was closed, for a while', async () => {
    const s = setup({ lowWater: 1, highWater: 1, gracePeriodMs: 0, redialWindowMs: 1000, wantedForMs: 60_000 })
    const [keeper, other, late] = await peers(3)
    s.open(new StubConnection(keeper!, s.clock.now - 5000))
    s.open(new StubConnection(other!, s.clock.now - 6000))
    await s.trimmer.idle()
    expect(openCount(s.conns)).toBe(1)
    // the closed peer (newest first: keeper) dials again at once: it wants the connection
    const closed = s.conns.find(c => c.status === 'closed')!
    expect(closed.remotePeer).toBe(keeper)
    s.clock.now += 500
    const back = new StubConnection(keeper!, s.clock.now)
    s.open(back)
    await s.trimmer.idle()
    expect(back.status).toBe('open')
    expect(s.trimmer.counts.redialed).toBe(1)
    // a peer that comes back later than the window is not protected
    s.open(new StubConnection(late!, s.clock.now - 10_000))
    await s.trimmer.idle()
    expect(back.status).toBe('open')
    // once the protection has run out, the peer can be trimmed again (an older connection
    // opens, so the newest-first order picks the keeper's)
    s.clock.now += 60_001
    s.open(new StubConnection((await peers(1))[0]!, s.clock.now - 100_000))
    await s.trimmer.idle()
    expect(back.status).toBe('closed')
  })

  it('does nothing after stop', async () => {
    const s = setup({ lowWater: 0, highWater: 0, gracePeriodMs: 0 })
    s.trimmer.stop()
    const [id] = await peers(1)
    s.open(new StubConnection(id!, s.clock.now - 5000))
    await s.trimmer.idle()
    expect(openCount(s.conns)).toBe(1)
  })

  it('refuses a low water mark above the high water mark', () => {
    expect(() => new ConnectionTrimmer({ connections: () => [], tags: async () => new Map(), log }, { lowWater: 5, highWater: 4 })).toThrow(RangeError)
  })
})
