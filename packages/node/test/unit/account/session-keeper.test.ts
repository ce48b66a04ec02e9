/**
 * SessionKeeper over stubs: a presence store in memory and hooks that record what they
 * were asked. A login or logout cut short (an abort, a failed write) never leaves a
 * half-started or half-ended session behind.
 */
import { describe, it, expect, afterEach, vi } from 'vitest'
import { defaultLogger } from '@libp2p/logger'
import type { AbortOptions } from '@libp2p/interface'
import { SessionKeeper, type Account, type PresenceInfo, type Session, type SessionHooks } from '../../../src/account/index.js'

const account = { username: 'ann', keyId: 'k-ann', keys: {}, record: {} } as unknown as Account

interface Fixture {
  keeper: SessionKeeper
  calls: string[]
  published: Array<'online' | 'offline'>
  failStarting?: Error
  failPublish?: Error
}

const keepers: SessionKeeper[] = []
afterEach(async () => {
  // end what a test left logged in (its refresh timer)
  for (const k of keepers.splice(0)) if (k.current != null) await k.logout('stopped').catch(() => {})
})

function fixture (): Fixture {
  const f = { calls: [], published: [] } as unknown as Fixture
  const hooks: SessionHooks = {
    starting: async (s: Session, options: AbortOptions) => {
      f.calls.push(`starting ${s.account.username}`)
      options.signal?.throwIfAborted()
      if (f.failStarting != null) throw f.failStarting
    },
    started: s => { f.calls.push(`started ${s.account.username}`) },
    ending: async (s: Session, options: AbortOptions) => {
      f.calls.push(`ending ${s.account.username}`)
      options.signal?.throwIfAborted()
    },
    ended: async (s, reason) => { f.calls.push(`ended ${s.account.username} ${reason}`) },
    abandoned: s => { f.calls.push(`abandoned ${s.account.username}`) }
  }
  f.keeper = new SessionKeeper({
    presence: {
      refreshMs: 60_000,
      read: async (): Promise<PresenceInfo | undefined> => undefined,
      publish: async (_owner, status, _peer, options: AbortOptions = {}) => {
        options.signal?.throwIfAborted()
        if (f.failPublish != null) throw f.failPublish
        f.published.push(status)
        return { replicas: 1, refused: 0 }
      }
    },
    peerInfo: () => ({ peerId: 'peer-1', addrs: [] }),
    notify: async () => {},
    hooks,
    logger: defaultLogger()
  })
  keepers.push(f.keeper)
  return f
}

const aborted = (): AbortSignal => { const c = new AbortController(); c.abort(new Error('the user gave up')); return c.signal }

describe('SessionKeeper', () => {
  it('begins a session: state read, presence online, then started', async () => {
    const f = fixture()
    await f.keeper.begin(account)
    expect(f.keeper.current?.account.username).toBe('ann')
    expect(f.calls).toEqual(['starting ann', 'started ann'])
    expect(f.published).toEqual(['online'])
  })

  it('a login cancelled while it starts leaves no session, and the next login works', async () => {
    const f = fixture()
    await expect(f.keeper.begin(account, { signal: aborted() })).rejects.toThrow('the user gave up')
    expect(f.keeper.current).toBeUndefined()
    expect(f.calls).toEqual(['starting ann', 'abandoned ann'])
    expect(() => { f.keeper.assertLoggedOut() }).not.toThrow()
    await f.keeper.begin(account)
    expect(f.keeper.current?.account.username).toBe('ann')
  })

  it('a login whose presence cannot be written leaves no session either', async () => {
    const f = fixture()
    f.failPublish = new Error('no DHT server answered')
    await expect(f.keeper.begin(account)).rejects.toThrow('no DHT server answered')
    expect(f.keeper.current).toBeUndefined()
    expect(f.calls).toEqual(['starting ann', 'abandoned ann'])
  })

  it('a logout cancelled half-way still ends the session', async () => {
    const f = fixture()
    await f.keeper.begin(account)
    await expect(f.keeper.logout('logout', { signal: aborted() })).rejects.toThrow('the user gave up')
    expect(f.keeper.current).toBeUndefined()
    expect(f.calls).toEqual(['starting ann', 'started ann', 'ending ann', 'ended ann logout'])
    await f.keeper.begin(account)
    expect(f.keeper.current?.account.username).toBe('ann')
  })

  it('a logout while the login writes its presence ends it: the login fails, nothing starts, no refresh writes "online" later', async () => {
    vi.useFakeTimers()
    try {
      const f = fixture()
      const writing = Promise.withResolvers<void>()
      const publish = f.keeper['c'].presence.publish
      let held = true
      f.keeper['c'].presence.publish = async (...args) => {
        if (held) { held = false; await writing.promise }
        return await publish(...args)
      }
      const login = f.keeper.begin(account)
      await vi.waitFor(() => { expect(held).toBe(false) })
      await f.keeper.logout('logout')
      writing.resolve()
      await expect(login).rejects.toMatchObject({ name: 'SessionEndedError', code: 'session-ended', message: expect.stringContaining('logout') })
      expect(f.keeper.current).toBeUndefined()
      expect(f.calls).toEqual(['starting ann', 'ending ann', 'ended ann logout'])
      await vi.advanceTimersByTimeAsync(5 * 60_000)
      // the logout's "offline", then the login's own write that was under way; no refresh after
      expect(f.published).toEqual(['offline', 'online'])
    } finally {
      vi.useRealTimers()
    }
  })

  it('a logout while the login reads the private state ends it before any "online" is written', async () => {
    const f = fixture()
    const reading = Promise.withResolvers<void>()
    const starting = f.keeper['c'].hooks.starting
    f.keeper['c'].hooks.starting = async (s, o) => { await starting(s, o); await reading.promise }
    const login = f.keeper.begin(account)
    await vi.waitFor(() => { expect(f.calls).toEqual(['starting ann']) })
    await f.keeper.logout('logout')
    reading.resolve()
    await expect(login).rejects.toMatchObject({ name: 'SessionEndedError', message: expect.stringContaining('logout') })
    expect(f.published).toEqual(['offline'])
    expect(f.keeper.current).toBeUndefined()
  })

  it('a login whose private state comes in while a logout is telling friends fails, and writes no "online"', async () => {
    const f = fixture()
    const reading = Promise.withResolvers<void>()
    const telling = Promise.withResolvers<void>()
    const { starting, ending } = f.keeper['c'].hooks
    f.keeper['c'].hooks.starting = async (s, o) => { await starting(s, o); await reading.promise }
    f.keeper['c'].hooks.ending = async (s, o) => { await ending(s, o); await telling.promise }
    const login = f.keeper.begin(account)
    await vi.waitFor(() => { expect(f.calls).toEqual(['starting ann']) })
    const logout = f.keeper.logout('logout')
    await vi.waitFor(() => { expect(f.calls).toEqual(['starting ann', 'ending ann']) })
    // the state is read while the logout is still under way
    reading.resolve()
    await expect(login).rejects.toMatchObject({ name: 'SessionEndedError' })
    telling.resolve()
    await logout
    expect(f.calls).not.toContain('started ann')
    expect(f.published).toEqual(['offline'])
  })

  it('refuses a login that begins while another is still beginning', async () => {
    const f = fixture()
    const reading = Promise.withResolvers<void>()
    const starting = f.keeper['c'].hooks.starting
    f.keeper['c'].hooks.starting = async (s, o) => { await starting(s, o); await reading.promise }
    const first = f.keeper.begin(account)
    await expect(f.keeper.begin({ ...account, username: 'bob' } as Account)).rejects.toMatchObject({ name: 'AlreadyLoggedInError' })
    reading.resolve()
    expect((await first).account.username).toBe('ann')
    expect(f.keeper.current?.account.username).toBe('ann')
  })

  it('refuses a second login while one is current, and a logout without one', async () => {
    const f = fixture()
    await expect(f.keeper.logout()).rejects.toMatchObject({ name: 'NotLoggedInError' })
    await f.keeper.begin(account)
    expect(() => { f.keeper.assertLoggedOut() }).toThrow(expect.objectContaining({ name: 'AlreadyLoggedInError' }))
  })
  it('reads the last presence while the session starts, and before its own record replaces it', async () => {
    const events: string[] = []
    const read = Promise.withResolvers<PresenceInfo | undefined>()
    const notified: string[] = []
    const keeper = new SessionKeeper({
      presence: {
        refreshMs: 60_000,
        read: async () => { events.push('read asked'); const p = await read.promise; events.push('read done'); return p },
        publish: async (_owner, status) => { events.push(`publish ${status}`); return { replicas: 1, refused: 0 } }
      },
      peerInfo: () => ({ peerId: 'peer-1', addrs: [] }),
      notify: async (_session, kind, _content, _to, where) => { notified.push(`${kind} ${where.peerId}`) },
      hooks: {
        starting: async () => { events.push('starting'); read.resolve({ online: true, peerId: 'peer-0', addrs: [] } as unknown as PresenceInfo) },
        started: () => { events.push('started') },
        ending: async () => {},
        ended: async () => {},
        abandoned: () => {}
      },
      logger: defaultLogger()
    })
    keepers.push(keeper)
    const pub = new Uint8Array(32).fill(1)
    await keeper.begin({ ...account, record: { payload: { username: 'ann', fullName: 'Ann', boxPublic: new Uint8Array(32) }, record: { pub } } } as unknown as Account)
    // the start did not wait for the read; the record was written only after the read
    expect(events.indexOf('starting')).toBeLessThan(events.indexOf('read done'))
    expect(events.indexOf('read done')).toBeLessThan(events.indexOf('publish online'))
    // the login elsewhere is told it was taken over
    expect(notified).toHaveLength(1)
    expect(notified[0]).toMatch(/peer-0$/)
  })
})

describe('SessionKeeper after this process stood still', () => {
  it('checkNow ends the session at once when a later login elsewhere took the account, and keeps it otherwise', async () => {
    const calls: string[] = []
    let later: PresenceInfo | undefined
    const keeper = new SessionKeeper({
      presence: {
        // the regular refresh is far off: only checkNow can tell now
        refreshMs: 600_000,
        read: async () => later,
        // holders refuse our record once a later login wrote above it
        publish: async (_owner, status) => { calls.push(`publish ${status}`); return { replicas: 1, refused: later != null && status === 'online' ? 1 : 0 } }
      },
      peerInfo: () => ({ peerId: 'peer-1', addrs: [] }),
      notify: async () => {},
      hooks: {
        starting: async () => {},
        started: () => {},
        ending: async () => {},
        ended: async (s, reason) => { calls.push(`ended ${s.account.username} ${reason}`) },
        abandoned: () => {}
      },
      logger: defaultLogger()
    })
    keepers.push(keeper)
    const session = await keeper.begin(account)
    await keeper.checkNow()
    expect(keeper.current).toBe(session)
    expect(calls).toEqual(['publish online', 'publish online'])

    // while this process stood still, ann logged in on peer-2
    later = { online: true, peerId: 'peer-2', addrs: [], since: session.since + 1_000 } as unknown as PresenceInfo
    await keeper.checkNow()
    expect(keeper.current).toBeUndefined()
    expect(calls.slice(2)).toEqual(['publish online', 'ended ann takeover'])
  })
})
