/**
 * A login's "online" notices to friends: one that failed on the way (a dial or a stream
 * that failed) is sent again after a pause while the session lasts; one the friend's peer
 * refused, or one of a session that ended meanwhile, is not.
 */
import { describe, it, expect, beforeEach, afterEach, vi } from 'vitest'
import { defaultLogger } from '@libp2p/logger'
import { createEnvelope, generateAccountKeys, keyIdOf, PRESENCE_KIND, type FriendEntry } from '@conf-chat/protocol'
import { PresenceNotices, ONLINE_NOTICE_RETRY_MS } from '../../../src/chat/presence-notices.js'
import type { DeliveryResult } from '../../../src/delivery/index.js'
import type { LoggedIn } from '../../../src/chat/logged-in.js'

const bob: FriendEntry = { username: 'bob', keyId: 'b'.repeat(40), signPublic: new Uint8Array(32), boxPublic: new Uint8Array(32), since: 1 }
const BOB_PEER = { peerId: '12D3KooWBob', addrs: ['/ip4/127.0.0.1/tcp/4001'] }

/** Notices whose messenger answers each send with the next of `results` (the last one from then on). */
function setUp (results: DeliveryResult[], presenceOf: () => Promise<unknown> = async () => ({ online: true, ...BOB_PEER })): { notices: PresenceNotices, sent: string[], active: LoggedIn & { ended: boolean } } {
  const sent: string[] = []
  const notices = new PresenceNotices({
    presence: { read: presenceOf as any, readOrThrow: presenceOf as any },
    messenger: {
      send: async (peerId: string) => {
        sent.push(peerId)
        return results[Math.min(sent.length, results.length) - 1] as DeliveryResult
      }
    },
    outbox: { noteLocation: () => {}, kick: () => {} },
    whereAmI: () => ({ peerId: '12D3KooWMe', addrs: [] }),
    emit: () => {},
    logger: defaultLogger()
  })
  const active = {
    ended: false,
    ready: Promise.resolve(),
    state: { state: { friends: [bob] } },
    online: new Map(),
    friends: { profileOf: () => ({}), friend: () => bob },
    seal: () => ({ id: 'notice' })
  } as unknown as LoggedIn & { ended: boolean }
  return { notices, sent, active }
}

/** Longer than every retry's pause together. */
const PAST_ALL_PAUSES_MS = 2 * ONLINE_NOTICE_RETRY_MS.reduce((a, b) => a + b, 0)

const FAILED: DeliveryResult = { delivered: false, reason: 'unreachable: All multiaddr dials failed' }
const DELIVERED: DeliveryResult = { delivered: true } as DeliveryResult

describe('online notices', () => {
  beforeEach(() => { vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] }) })
  afterEach(() => { vi.useRealTimers() })

  it('sends a notice that failed on the way again after each pause, until one is delivered', async () => {
    const { notices, sent, active } = setUp([FAILED, FAILED, DELIVERED])
    await notices.announce(active, 'online')
    expect(sent).toEqual([BOB_PEER.peerId])
    await vi.advanceTimersByTimeAsync(ONLINE_NOTICE_RETRY_MS[0]!)
    expect(sent).toHaveLength(2)
    await vi.advanceTimersByTimeAsync(ONLINE_NOTICE_RETRY_MS[1]!)
    expect(sent).toHaveLength(3)
    // delivered: no more
    await vi.advanceTimersByTimeAsync(10 * ONLINE_NOTICE_RETRY_MS.at(-1)!)
    expect(sent).toHaveLength(3)
  })

  it('tries as many times as there are pauses, then leaves it to the friend\'s presence reads', async () => {
    const { notices, sent, active } = setUp([FAILED])
    await notices.announce(active, 'online')
    await vi.advanceTimersByTimeAsync(PAST_ALL_PAUSES_MS)
    expect(sent).toHaveLength(1 + ONLINE_NOTICE_RETRY_MS.length)
  })

  it('tries again a friend whose presence could not be read', async () => {
    let reads = 0
    const { notices, sent, active } = setUp([DELIVERED], async () => {
      if (++reads === 1) throw new Error('no holder answered')
      return { online: true, ...BOB_PEER }
    })
    await notices.announce(active, 'online')
    expect(sent).toEqual([])
    await vi.advanceTimersByTimeAsync(ONLINE_NOTICE_RETRY_MS[0]!)
    expect(sent).toEqual([BOB_PEER.peerId])
  })

  it('keeps one retry per friend: a notice sent meanwhile (a rejoin, new addresses) replaces the pending one', async () => {
    const { notices, sent, active } = setUp([FAILED])
    await notices.announce(active, 'online')
    await vi.advanceTimersByTimeAsync(ONLINE_NOTICE_RETRY_MS[0]! / 2)
    await notices.announce(active, 'online')
    await vi.advanceTimersByTimeAsync(PAST_ALL_PAUSES_MS)
    // two notices, then one chain of retries (two chains would be 2 + 2 x 3)
    expect(sent).toHaveLength(2 + ONLINE_NOTICE_RETRY_MS.length)
  })

  it('does not try again for a friend who has no presence record', async () => {
    let reads = 0
    const { notices, sent, active } = setUp([DELIVERED], async () => { reads++; return undefined })
    await notices.announce(active, 'online')
    await vi.advanceTimersByTimeAsync(PAST_ALL_PAUSES_MS)
    expect({ reads, sent: sent.length }).toEqual({ reads: 1, sent: 0 })
  })

  it('does not send again a notice the friend\'s peer refused, nor one of a session that ended', async () => {
    const refused = setUp([{ delivered: false, code: 'not-logged-in', reason: 'no user logged in here' }])
    await refused.notices.announce(refused.active, 'online')
    const ended = setUp([FAILED])
    await ended.notices.announce(ended.active, 'online')
    ended.active.ended = true
    await vi.advanceTimersByTimeAsync(PAST_ALL_PAUSES_MS)
    expect(refused.sent).toHaveLength(1)
    expect(ended.sent).toHaveLength(1)
  })

  it('drops the pending retries of a session that ended, so that no timer outlives it', async () => {
    const { notices, sent, active } = setUp([FAILED])
    await notices.announce(active, 'online')
    expect(vi.getTimerCount()).toBe(1)
    active.ended = true
    notices.forget(active)
    expect(vi.getTimerCount()).toBe(0)
    await vi.advanceTimersByTimeAsync(PAST_ALL_PAUSES_MS)
    expect(sent).toHaveLength(1)
  })
})

describe('presence notices received', () => {
  it('applies a friend\'s notices in the order they were sent: one that was overtaken (a retried "online" after the logout\'s "offline") is refused as stale', async () => {
    const aliceKeys = generateAccountKeys()
    const bobKeys = generateAccountKeys()
    const friend: FriendEntry = { username: 'bob', keyId: keyIdOf(bobKeys.signPublic), signPublic: bobKeys.signPublic, boxPublic: bobKeys.boxPublic, since: 1 }
    const alice = { username: 'alice', keyId: keyIdOf(aliceKeys.signPublic), boxPublic: aliceKeys.boxPublic }
    const notice = (status: 'online' | 'offline', at: number) =>
      createEnvelope(PRESENCE_KIND, { status, ...BOB_PEER }, { username: 'bob', keys: bobKeys }, alice, at)
    const shown: Array<{ username: string, online: boolean }> = []
    const notices = new PresenceNotices({
      presence: { read: async () => undefined, readOrThrow: async () => undefined },
      messenger: { send: async () => DELIVERED },
      outbox: { noteLocation: () => {}, kick: () => {} },
      whereAmI: () => ({ peerId: '12D3KooWMe', addrs: [] }),
      emit: ((name: string, detail: { username: string, online: boolean }) => { if (name === 'presence') shown.push(detail) }) as any,
      logger: defaultLogger()
    })
    const active = {
      ended: false,
      session: { account: { keys: aliceKeys } },
      online: new Map(),
      gone: new Map(),
      lastNotice: new Map(),
      friends: { friend: () => friend }
    } as unknown as LoggedIn
    const ctx = { live: true } as any
    const online = notice('online', 1_000)
    const offline = notice('offline', 2_000)
    notices.receive(active, online, ctx)
    notices.receive(active, offline, ctx)
    expect(() => { notices.receive(active, online, ctx) }).toThrow(expect.objectContaining({ code: 'stale' }))
    expect(shown).toEqual([{ username: 'bob', online: true }, { username: 'bob', online: false }])
    expect(active.online.has('bob')).toBe(false)
    // his login on another peer, whose clock is behind: applied
    notices.receive(active, createEnvelope(PRESENCE_KIND, { status: 'online', peerId: '12D3KooWBobsLaptop', addrs: [] }, { username: 'bob', keys: bobKeys }, alice, 1_500), ctx)
    expect(shown.at(-1)).toEqual({ username: 'bob', online: true })
    expect(active.online.get('bob')?.peerId).toBe('12D3KooWBobsLaptop')
  })
})
