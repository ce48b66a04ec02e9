/**
 * Outbox over stubs: an in-memory local store, a messenger and a mailbox that answer as
 * each test says, a presence lookup, and an injected clock for backoff and ages. The
 * outbox decides on refusal codes: final drops and fails, anything else keeps.
 */
import { describe, it, expect, afterEach } from 'vitest'
import * as cborg from 'cborg'
import { defaultLogger } from '@libp2p/logger'
import { createEnvelope, generateAccountKeys, keyIdOf, refusal, type Envelope, type RefusalCode } from '@conf-chat/protocol'
import type { AbortOptions } from '@libp2p/interface'
import {
  Outbox, DEFAULT_OUTBOX_RETRY_MS, type Delivery, type DeliveryResult, type OutboxComponents, type OutboxInit, type PeerLocation, type StoreOptions
} from '../../../src/delivery/index.js'

const alice = { username: 'alice', keys: generateAccountKeys() }
const bobKeys = generateAccountKeys()
const bob = { username: 'bob', keyId: keyIdOf(bobKeys.signPublic), boxPublic: bobKeys.boxPublic }
const dm = (text = 'hi'): Envelope => createEnvelope('dm', { text }, alice, bob)

/** LocalStore's part the outbox uses, in memory, values through CBOR as on disk. */
class MemoryLocal {
  readonly data = new Map<string, Uint8Array>()
  /** Batches written, each one LevelDB write. */
  batches = 0
  /** As LevelDB's batch: puts, then deletes, all at once; an aborted write writes nothing. */
  async writeMany (puts: Array<[string, unknown]>, deletes: string[], options: AbortOptions = {}): Promise<void> {
    options.signal?.throwIfAborted()
    this.batches++
    for (const [key, value] of puts) this.data.set(key, cborg.encode(value))
    for (const key of deletes) this.data.delete(key)
  }
  /** As LevelDB's iterator: what was there when it began (a snapshot), in key order. */
  async * entries<T = unknown> (prefix: string): AsyncGenerator<{ key: string, value: T }> {
    const snapshot = [...this.data].filter(([k]) => k.startsWith(prefix)).sort(([a], [b]) => a < b ? -1 : 1)
    for (const [key, bytes] of snapshot) yield { key, value: cborg.decode(bytes) as T }
  }
  async get<T = unknown> (key: string): Promise<T | undefined> {
    const bytes = this.data.get(key)
    return bytes == null ? undefined : cborg.decode(bytes) as T
  }
}

interface Fixture {
  outbox: Outbox
  local: MemoryLocal
  /** Every live send: to which peer. */
  sends: string[]
  stores: string[]
  /** How each store was asked to seal (Mailbox.store's `seal`), in order. */
  seals: unknown[]
  lookups: number
  background: Delivery[]
  clock: { t: number }
  /** What the recipient's peer answers. */
  live: (peerId: string) => DeliveryResult
  /** What the mailbox does with an envelope (throw to fail; a promise: the store waits for it). */
  mailbox: (env: Envelope) => void | Promise<void>
  /** Where presence says the recipient is. */
  presence: PeerLocation | undefined
}

const BOB_PEER: PeerLocation = { online: true, peerId: 'bob-peer', addrs: ['/ip4/10.0.0.2/tcp/4001'] }

const fixtures: Fixture[] = []
afterEach(async () => { await Promise.all(fixtures.splice(0).map(async f => { await f.outbox.stop() })) })

function fixture (init: OutboxInit = {}): Fixture {
  const f: Fixture = {
    local: new MemoryLocal(),
    sends: [],
    stores: [],
    seals: [],
    lookups: 0,
    background: [],
    clock: { t: 1_700_000_000_000 },
    live: () => ({ delivered: true }),
    mailbox: () => {},
    presence: BOB_PEER
  } as unknown as Fixture
  const components: OutboxComponents = {
    local: f.local as unknown as OutboxComponents['local'],
    messenger: {
      send: async (peerId: string, _addrs: string[], _env: Envelope, options?: AbortOptions) => {
        // as the messenger: a caller who gave up gets no delivery
        if (options?.signal?.aborted === true) return { delivered: false, reason: 'aborted' }
        f.sends.push(peerId)
        return f.live(peerId)
      }
    },
    mailbox: {
      store: async (env: Envelope, options?: StoreOptions) => {
        options?.signal?.throwIfAborted()
        f.stores.push(env.id)
        f.seals.push(options?.seal)
        await f.mailbox(env)
        return { holders: 3, copies: 3 }
      }
    },
    locate: async () => { f.lookups++; return f.presence },
    senderBoxKeys: env => env.from === 'alice' ? alice.keys : undefined,
    logger: defaultLogger(),
    now: () => f.clock.t
  }
  f.outbox = new Outbox(components, { outboxRetryMs: DEFAULT_OUTBOX_RETRY_MS, ...init }, (_env, delivery) => { f.background.push(delivery) })
  f.outbox.start()
  fixtures.push(f)
  return f
}

const refused = (code: RefusalCode, reason: string): DeliveryResult => ({ delivered: false, ...refusal(code, reason) })
const unreachable = (): never => { throw Object.assign(new Error('no holder of the mailbox answered'), { name: 'SetWriteError' }) }

describe('Outbox', { timeout: 5_000 }, () => {
  it('delivers live to the peer presence names, and keeps nothing', async () => {
    const f = fixture()
    const env = dm()
    expect(await f.outbox.send(env)).toEqual({ id: env.id, status: 'delivered', where: 'live' })
    expect(f.sends).toEqual(['bob-peer'])
    expect(f.stores).toEqual([])
    expect(await f.outbox.queued()).toEqual([])
  })

  it('seals into the mailbox with the box key (and writer seed) it was given, kept for the retries; without a box key, as it is', async () => {
    const f = fixture()
    f.presence = undefined
    const seed = new Uint8Array(32).fill(7)
    const sealed = dm('sealed')
    expect(await f.outbox.send(sealed, { recipientBoxPublic: bob.boxPublic, mailboxWriter: seed })).toMatchObject({ status: 'queued', where: 'mailbox' })
    expect(f.seals).toEqual([{ keys: alice.keys, recipientBoxPublic: bob.boxPublic, writer: seed }])
    // a retry takes the box key from the outbox entry on disk
    f.mailbox = unreachable
    const kept = dm('kept')
    expect(await f.outbox.send(kept, { recipientBoxPublic: bob.boxPublic })).toMatchObject({ status: 'queued', where: 'outbox' })
    f.mailbox = () => {}
    f.clock.t += DEFAULT_OUTBOX_RETRY_MS * 2
    await f.outbox.retry({ force: true })
    expect(f.seals.at(-1)).toEqual({ keys: alice.keys, recipientBoxPublic: bob.boxPublic })
    await f.outbox.send(dm('open'))
    expect(f.seals.at(-1)).toBeUndefined()
  })

  it('envelopes sent at once share LevelDB batches; each is on disk before its attempt and gone after its ack', async () => {
    const f = fixture()
    const envelopes = Array.from({ length: 20 }, (_, i) => dm(`m${i}`))
    const keptAtAttempt: boolean[] = []
    f.live = () => {
      keptAtAttempt.push(envelopes.every(e => f.local.data.has(`/outbox/${e.id}`)))
      return { delivered: true }
    }
    const results = await Promise.all(envelopes.map(async e => await f.outbox.send(e)))
    expect(results.every(r => r.status === 'delivered')).toBe(true)
    expect(keptAtAttempt).toHaveLength(20)
    expect(keptAtAttempt.every(Boolean)).toBe(true)
    expect(f.local.data.size).toBe(0)
    // 20 puts and 20 deletes one at a time would be 40 writes
    expect(f.local.batches).toBeLessThanOrEqual(4)
  })

  it('when presence cannot be read, tries the peer last seen online once, then the mailbox', async () => {
    const f = fixture()
    expect((await f.outbox.send(dm('m1'))).status).toBe('delivered')
    f.clock.t += 60 * 60 * 1000 // the location is old: presence is read again
    f.presence = undefined // no record, or a read that could not tell (as Presence.read says both)
    expect(await f.outbox.send(dm('m2'))).toMatchObject({ status: 'delivered', where: 'live' })
    expect(f.sends).toEqual(['bob-peer', 'bob-peer'])
    f.clock.t += 60 * 60 * 1000
    f.live = () => ({ delivered: false, reason: 'no ack' })
    expect(await f.outbox.send(dm('m3'))).toMatchObject({ status: 'queued', where: 'mailbox' })
    // one live attempt, not two: the fallback is not looked up again
    expect(f.sends).toEqual(['bob-peer', 'bob-peer', 'bob-peer'])
    expect(f.stores).toHaveLength(1)
  })

  it('falls back to the mailbox when the recipient is offline', async () => {
    const f = fixture()
    f.presence = { ...BOB_PEER, online: false }
    const env = dm()
    expect(await f.outbox.send(env)).toEqual({ id: env.id, status: 'queued', where: 'mailbox', reason: 'recipient offline' })
    expect(f.sends).toEqual([])
    expect(f.stores).toEqual([env.id])
    expect(await f.outbox.queued()).toEqual([])
  })

  it('a final refusal drops the envelope and reports it failed, with its code', async () => {
    const f = fixture()
    f.live = () => refused('not-a-friend', 'not a friend: alice')
    const env = dm()
    expect(await f.outbox.send(env)).toEqual({ id: env.id, status: 'failed', reason: 'not a friend: alice', code: 'not-a-friend' })
    expect(f.stores).toEqual([])
    expect(await f.outbox.queued()).toEqual([])
    // and it is not tried again
    f.clock.t += 60 * 60_000
    await f.outbox.retry({ force: true })
    expect(f.sends).toEqual(['bob-peer'])
  })

  it('a refusal that is not final keeps the envelope: to the mailbox, or here and retried when due', async () => {
    const f = fixture()
    f.live = () => refused('not-logged-in', 'no user logged in here')
    const toMailbox = dm('one')
    expect(await f.outbox.send(toMailbox)).toMatchObject({ status: 'queued', where: 'mailbox', reason: 'no user logged in here' })

    f.mailbox = unreachable
    const kept = dm('two')
    expect(await f.outbox.send(kept)).toMatchObject({ status: 'queued', where: 'outbox' })
    expect(await f.outbox.queued()).toEqual([expect.objectContaining({ id: kept.id, attempts: 1, lastError: 'no holder of the mailbox answered' })])

    // not due yet: nothing is sent
    const sendsBefore = f.sends.length
    f.clock.t += DEFAULT_OUTBOX_RETRY_MS - 1
    await f.outbox.retry()
    expect(f.sends.length).toBe(sendsBefore)

    // due: tried again, and now the recipient takes it
    f.live = () => ({ delivered: true })
    f.clock.t += 1
    await f.outbox.retry()
    expect(f.background).toEqual([{ id: kept.id, status: 'delivered', where: 'live' }])
    expect(await f.outbox.queued()).toEqual([])
  })

  it('a retry round does not send again what its first send delivered while the round was under way', async () => {
    const f = fixture()
    f.live = () => refused('not-logged-in', 'no user logged in here')
    f.mailbox = unreachable
    // the round walks the outbox in id order: the kept envelope first, then the slow one
    const [kept, slow] = [dm('kept'), dm('slow')].sort((a, b) => a.id < b.id ? -1 : 1) as [Envelope, Envelope]
    await f.outbox.send(kept)
    // a second send is under way (its mailbox store slow, as at 200 peers on two cores) when the round begins
    const stores = new Map<string, PromiseWithResolvers<void>>()
    const gate = (env: Envelope): PromiseWithResolvers<void> => { if (!stores.has(env.id)) stores.set(env.id, Promise.withResolvers<void>()); return stores.get(env.id)! }
    f.mailbox = async env => { await gate(env).promise }
    const sent = f.outbox.send(slow)
    await expect.poll(() => f.stores.includes(slow.id)).toBe(true)
    f.clock.t += DEFAULT_OUTBOX_RETRY_MS
    const round = f.outbox.retry()
    // the round is at the kept envelope; meanwhile the slow send ends, and then the round's
    await expect.poll(() => f.stores.filter(id => id === kept.id).length).toBe(2)
    gate(slow).resolve()
    expect(await sent).toMatchObject({ status: 'queued', where: 'mailbox' })
    gate(kept).resolve()
    await round
    expect(f.stores.filter(id => id === slow.id)).toHaveLength(1)
    expect(f.background).toEqual([expect.objectContaining({ id: kept.id, status: 'queued', where: 'mailbox' })])
    expect(await f.outbox.queued()).toEqual([])
  })

  it('waits twice as long after each failed try', async () => {
    const f = fixture()
    f.presence = undefined
    f.mailbox = unreachable
    const env = dm()
    await f.outbox.send(env)
    f.clock.t += DEFAULT_OUTBOX_RETRY_MS
    await f.outbox.retry()
    expect(f.stores).toHaveLength(2)
    // the second wait is 2 x retryMs
    f.clock.t += 2 * DEFAULT_OUTBOX_RETRY_MS - 1
    await f.outbox.retry()
    expect(f.stores).toHaveLength(2)
    f.clock.t += 1
    await f.outbox.retry()
    expect(f.stores).toHaveLength(3)
    expect(await f.outbox.queued()).toEqual([expect.objectContaining({ id: env.id, attempts: 3 })])
  })

  it('keeps the envelope when its sender gives up on the send: the change it goes with is made, so it must go out', async () => {
    const f = fixture()
    const env = dm()
    const gaveUp = new AbortController()
    gaveUp.abort(new Error('the user gave up'))
    await f.outbox.send(env, { signal: gaveUp.signal }).catch(() => {})
    expect((await f.outbox.queued()).map(q => q.id)).toEqual([env.id])
    await f.outbox.retry({ force: true })
    expect(f.sends).toEqual([BOB_PEER.peerId])
    expect(await f.outbox.queued()).toEqual([])
  })

  it('not-for-recipient means the peer now hosts someone else: the mailbox, not a failure', async () => {
    const f = fixture()
    f.live = () => refused('not-for-recipient', 'not for the user logged in here')
    const env = dm()
    expect(await f.outbox.send(env)).toMatchObject({ status: 'queued', where: 'mailbox' })
    expect(f.stores).toEqual([env.id])
  })

  it('stops at once when the holders already had it and its recipient removed it', async () => {
    // the set store's refusals with the holders' codes (their words are for the log only)
    const answers: Array<(id: string) => object> = [
      id => ({ refusals: { [id]: [refusal('already-delivered', 'removed'), refusal('already-delivered', 'removed')] } }),
      id => ({ refusals: { [id]: [refusal('already-delivered', 'a tombstone'), refusal('already-delivered', 'gone')] } })
    ]
    for (const answer of answers) {
      const f = fixture()
      f.presence = undefined
      const env = dm()
      f.mailbox = () => { throw Object.assign(new Error('no holder stored it'), { name: 'SetWriteError', ...answer(env.id) }) }
      expect(await f.outbox.send(env)).toEqual({ id: env.id, status: 'queued', where: 'mailbox' })
      expect(await f.outbox.queued()).toEqual([])
      f.clock.t += 60 * 60_000
      await f.outbox.retry({ force: true })
      expect(f.stores).toEqual([env.id])
    }
  })

  it('keeps what some holder refused only for now', async () => {
    const f = fixture()
    f.presence = undefined
    const env = dm()
    f.mailbox = () => {
      throw Object.assign(new Error('no holder stored it'), { name: 'SetWriteError', refusals: { [env.id]: [refusal('already-delivered', 'removed'), refusal('full', 'set full')] } })
    }
    expect(await f.outbox.send(env)).toMatchObject({ status: 'queued', where: 'outbox' })
    expect(await f.outbox.queued()).toHaveLength(1)
  })

  it('fails what every holder refused for good', async () => {
    const f = fixture()
    f.presence = undefined
    const env = dm()
    f.mailbox = () => {
      throw Object.assign(new Error('no holder stored it'), { name: 'SetWriteError', refusals: { [env.id]: [refusal('malformed', 'bad item'), refusal('malformed', 'bad item')] } })
    }
    expect(await f.outbox.send(env)).toMatchObject({ status: 'failed', code: 'malformed' })
    expect(await f.outbox.queued()).toEqual([])
  })

  it('reads presence again once when a remembered peer fails to answer, not after a final refusal', async () => {
    const f = fixture()
    f.outbox.noteLocation(bob.keyId, { online: true, peerId: 'old-peer', addrs: [] })
    f.presence = { ...BOB_PEER, peerId: 'new-peer' }
    f.live = peerId => peerId === 'old-peer' ? { delivered: false, reason: 'no acknowledgement in time' } : { delivered: true }
    expect(await f.outbox.send(dm())).toMatchObject({ status: 'delivered', where: 'live' })
    expect(f.sends).toEqual(['old-peer', 'new-peer'])

    const g = fixture()
    g.outbox.noteLocation(bob.keyId, { online: true, peerId: 'old-peer', addrs: [] })
    g.live = () => refused('bad-signature', 'forged sender: alice does not own the signing key')
    expect(await g.outbox.send(dm())).toMatchObject({ status: 'failed', code: 'bad-signature' })
    expect(g.sends).toEqual(['old-peer'])
    expect(g.lookups).toBe(0)
  })

  it('a live already-delivered answer counts as delivered', async () => {
    const f = fixture()
    f.live = () => refused('already-delivered', 'seen')
    expect(await f.outbox.send(dm())).toMatchObject({ status: 'delivered', where: 'live' })
    expect(f.stores).toEqual([])
  })

  it('reports failed what could not be sent within its maximum age', async () => {
    const f = fixture({ outboxMaxAgeMs: 60 * 60_000 })
    f.presence = undefined
    f.mailbox = unreachable
    const env = dm()
    await f.outbox.send(env)
    f.clock.t += 60 * 60_000 + 1
    await f.outbox.retry()
    expect(f.background).toEqual([expect.objectContaining({ id: env.id, status: 'failed' })])
    expect(await f.outbox.queued()).toEqual([])
  })
})
