/**
 * SessionKeeper over stubs: a presence store in memory and hooks that record what they
 * were asked. A login or logout cut short (an abort, a failed write) never leaves a
 * half-started or half-ended session behind.
 */
import { describe, it, expect, afterEach } from 'vitest'
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
    ended: (s, reason) => { f.calls.push(`ended ${s.account.username} ${reason}`) },
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

  it('refuses a second login while one is current, and a logout without one', async () => {
    const f = fixture()
    await expect(f.keeper.logout()).rejects.toMatchObject({ name: 'NotLoggedInError' })
    await f.keeper.begin(account)
    expect(() => { f.keeper.assertLoggedOut() }).toThrow(expect.objectContaining({ name: 'AlreadyLoggedInError' }))
  })
})
