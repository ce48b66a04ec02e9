/**
 * The holder side of /conf-chat/set/1.0.0, driven through its stream handler over
 * in-memory stream pairs: append-only items, the per-set limit, owner-signed removals
 * and their tombstones, listing, and refusals of malformed input with their codes.
 */
import { describe, it, expect, beforeEach, afterEach } from 'vitest'
import * as cborg from 'cborg'
import { streamPair, lpStream } from '@libp2p/utils'
import {
  MAX_SET_ITEM_BYTES, MAX_SET_FRAME_BYTES, createRemoveAuth, createSetItem, generateAccountKeys, InvalidSetItemError,
  type SetItem, type SetResponse
} from '@conf-chat/protocol'
import { TestNet, rawRequest, testSetKey, textItem, textOf, testRules, TEST_NAMESPACE, type TestPeer } from './fixtures.js'
import type { Connection } from '@libp2p/interface'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'

const owner = generateAccountKeys()
const intruder = generateAccountKeys()
const key = testSetKey(owner)
const intruderPeer = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
const otherPeer = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))

const added = (res: SetResponse): { accepted: string[], rejected: Array<{ id: string, code: string, reason: string }> } => {
  if (res.type !== 'added') throw new Error(`expected added, got ${JSON.stringify(res)}`)
  return res
}

describe('set holder', () => {
  let net: TestNet
  let holder: TestPeer

  beforeEach(async () => {
    net = new TestNet()
    holder = await net.peer({ init: { maxItemsPerSet: 3, setRequestTimeoutMs: 200 } })
  })
  afterEach(async () => { await net.stop() })

  it('appends items and never replaces one it holds: the same id is acknowledged, the first data stays', async () => {
    const first = textItem(net.clock, 'first')
    expect(await rawRequest(holder, { type: 'add', setKey: key, items: [first] })).toEqual({ type: 'added', accepted: [first.id], rejected: [] })
    const clash = textItem(net.clock, 'overwrite attempt', first.id)
    expect(added(await rawRequest(holder, { type: 'add', setKey: key, items: [clash] })).accepted).toEqual([first.id])
    const held = await holder.store.localItems(key)
    expect(held.map(textOf)).toEqual(['first'])
    expect(await holder.store.heldSets()).toEqual([key])
  })

  it('refuses items beyond the per-set limit with "set full", keeping those it has', async () => {
    const items = ['a', 'b', 'c', 'd', 'e'].map(t => textItem(net.clock, t))
    const res = added(await rawRequest(holder, { type: 'add', setKey: key, items }))
    expect(res.accepted).toEqual(items.slice(0, 3).map(i => i.id))
    expect(res.rejected).toEqual(items.slice(3).map(i => ({ id: i.id, code: 'full', reason: 'set full' })))
    expect(await holder.store.localItems(key)).toHaveLength(3)
    // an item it already holds is still acknowledged when the set is full
    expect(added(await rawRequest(holder, { type: 'add', setKey: key, items: [items[0]!] })).accepted).toEqual([items[0]!.id])
  })

  it('keeps each writer to its share of a set (rate-limited) and the set to its bytes (full); a removal frees the share', async () => {
    // the writer of a test item: what its text has before ':'
    const writers = await net.peer({
      init: {
        maxItemsPerSet: 100,
        maxBytesPerSet: 40,
        setNamespaces: { [TEST_NAMESPACE]: { ...testRules, writerOf: item => textOf(item).split(':')[0], writerLimits: { items: 2, bytes: 1000 } } }
      }
    })
    const mine = ['a:1', 'a:2', 'a:3', 'b:1'].map(t => textItem(net.clock, t))
    const res = added(await rawRequest(writers, { type: 'add', setKey: key, items: mine }))
    expect(res.accepted).toEqual([mine[0]!.id, mine[1]!.id, mine[3]!.id])
    expect(res.rejected).toEqual([{ id: mine[2]!.id, code: 'rate-limited', reason: 'too much from this writer' }])
    // 9 of 40 bytes held: 32 more do not fit, whoever writes them
    const big = textItem(net.clock, 'c:' + 'x'.repeat(30))
    expect(added(await rawRequest(writers, { type: 'add', setKey: key, items: [big] })).rejected).toEqual([{ id: big.id, code: 'full', reason: 'set full' }])
    await writers.store.remove(key, [mine[0]!.id], owner)
    const again = textItem(net.clock, 'a:4')
    expect(added(await rawRequest(writers, { type: 'add', setKey: key, items: [again] })).accepted).toEqual([again.id])
  })

  it("takes from writers its owner's newest list does not name only what strangers may, within the strangers' share", async () => {
    // test items: "<writer>:<text>"; a list "o:<named>,<named>" (writer o, the owner) under an id "list.<n>"
    const writerOf = (item: SetItem): string | undefined => textOf(item).split(':')[0]
    const holderOf = await net.peer({
      init: {
        maxItemsPerSet: 100,
        setNamespaces: {
          [TEST_NAMESPACE]: {
            ...testRules,
            writerOf,
            writerLimits: { items: 50, bytes: 10_000 },
            writerList: {
              listPrefix: 'list.',
              decode: (_setKey, item) => {
                const named = new Set(textOf(item).split(':')[1]?.split(','))
                return { at: item.addedAt, names: w => w === 'o' || named.has(w) }
              },
              strangers: { may: item => textOf(item).split(':')[1]?.startsWith('request') === true, items: 2, bytes: 1000, perDay: 3, perSet: 3 },
              // like a sealed envelope: only from a writer the list names
              onlyListed: item => textOf(item).split(':')[1]?.startsWith('sealed') === true
            }
          }
        }
      }
    })
    const add = async (...texts: string[]): Promise<Array<string | undefined>> => {
      const items = texts.map(t => textItem(net.clock, t))
      const res = added(await rawRequest(holderOf, { type: 'add', setKey: key, items }))
      return items.map(i => res.accepted.includes(i.id) ? undefined : res.rejected.find(r => r.id === i.id)?.code)
    }
    // no list yet: every writer is taken, but not what only a listed writer may store
    expect(await add('z:hello', 'a:sealed 0')).toEqual([undefined, 'not-listed'])
    net.clock.advance(10)
    const list = textItem(net.clock, 'o:a', 'list.0001')
    expect(added(await rawRequest(holderOf, { type: 'add', setKey: key, items: [list] })).accepted).toEqual([list.id])
    // named writers and the owner as before; strangers only requests, two each, and (with z's) three in all
    expect(await add('a:hi', 'a:sealed 1', 'o:note', 's:hi', 's:sealed 1', 's:request 1', 's:request 2', 's:request 3', 't:request 1'))
      .toEqual([undefined, undefined, undefined, 'not-listed', 'not-listed', undefined, undefined, 'rate-limited', 'full'])
    // the owner read (removed) s's requests: s may leave one more today, not two
    const held = (await holderOf.store.localItems(key)).filter(i => textOf(i).startsWith('s:'))
    await holderOf.store.remove(key, held.map(i => i.id), owner)
    expect(await add('s:request 4', 's:request 5')).toEqual([undefined, 'rate-limited'])
    // a newer list names s; an older one stored later does not undo it
    net.clock.advance(10)
    expect(added(await rawRequest(holderOf, { type: 'add', setKey: key, items: [textItem(net.clock, 'o:a,s', 'list.0002')] })).rejected).toEqual([])
    const older = { ...textItem(net.clock, 'o:a', 'list.0000'), addedAt: list.addedAt - 5 }
    expect(added(await rawRequest(holderOf, { type: 'add', setKey: key, items: [older] })).rejected).toEqual([])
    expect(await add('s:hi again')).toEqual([undefined])
    // the owner removes the newer list: the one left applies again
    await holderOf.store.remove(key, ['list.0002'], owner)
    expect(await add('s:and again')).toEqual(['not-listed'])
  })

  it('gives one peer at most 120 read challenges a minute, so it cannot push out everyone else\'s', async () => {
    const asks = Array.from({ length: 121 }, async () => await rawRequest(holder, { type: 'challenge', setKey: key }, intruderPeer))
    const answers = await Promise.all(asks)
    expect(answers.filter(a => a.type === 'challenge')).toHaveLength(120)
    expect(answers.filter(a => a.type === 'error')).toEqual([expect.objectContaining({ code: 'unauthorized' })])
    // another peer still gets one
    expect(await rawRequest(holder, { type: 'challenge', setKey: key }, otherPeer)).toMatchObject({ type: 'challenge' })
  })

  it('removes only with the owner\'s signature over the ids, and keeps a tombstone that refuses the item again', async () => {
    const items = ['x', 'y'].map(t => textItem(net.clock, t, `id-${t}`))
    await rawRequest(holder, { type: 'add', setKey: key, items })
    const ids = [items[0]!.id]

    const byIntruder = await rawRequest(holder, { type: 'remove', setKey: key, ids, auth: createRemoveAuth(key, ids, intruder, net.clock.now()) })
    expect(byIntruder).toMatchObject({ type: 'error', code: 'unauthorized' })
    const otherIds = await rawRequest(holder, { type: 'remove', setKey: key, ids, auth: createRemoveAuth(key, ['other-id'], owner, net.clock.now()) })
    expect(otherIds).toMatchObject({ type: 'error', code: 'unauthorized' })
    expect((await holder.store.localItems(key)).map(textOf)).toEqual(['x', 'y'])

    const byOwner = await rawRequest(holder, { type: 'remove', setKey: key, ids, auth: createRemoveAuth(key, ids, owner, net.clock.now()) })
    expect(byOwner).toEqual({ type: 'removed', removed: 1 })
    expect((await holder.store.localItems(key)).map(textOf)).toEqual(['y'])

    const again = await rawRequest(holder, { type: 'add', setKey: key, items: [items[0]!] })
    expect(again).toEqual({ type: 'added', accepted: [], rejected: [{ id: items[0]!.id, code: 'already-delivered', reason: 'removed' }] })
    expect((await holder.store.localItems(key)).map(textOf)).toEqual(['y'])
    // the removal is kept, to hand on to other holders
    const removals = await rawRequest(holder, { type: 'removals', setKey: key })
    expect(removals).toMatchObject({ type: 'removals', removals: [{ ids }] })
  })

  it('lists unexpired items in id order, ids only on request, and after a cursor', async () => {
    const items = ['c', 'a', 'b'].map((t, i) => textItem(net.clock, t, `id-${3 - i}`))
    await rawRequest(holder, { type: 'add', setKey: key, items })
    const all = await rawRequest(holder, { type: 'list', setKey: key })
    expect(all.type === 'items' && all.items.map(i => i.id)).toEqual(['id-1', 'id-2', 'id-3'])
    expect(all.type === 'items' && all.items.map(textOf)).toEqual(['b', 'a', 'c'])
    expect(await rawRequest(holder, { type: 'list', setKey: key, idsOnly: true })).toEqual({ type: 'ids', ids: ['id-1', 'id-2', 'id-3'] })
    const after = await rawRequest(holder, { type: 'list', setKey: key, after: 'id-1' })
    expect(after.type === 'items' && after.items.map(i => i.id)).toEqual(['id-2', 'id-3'])
    expect(await rawRequest(holder, { type: 'list', setKey: testSetKey(intruder) })).toEqual({ type: 'items', items: [] })
  })

  it('refuses invalid, expired and future items one by one, each with its code', async () => {
    const good = textItem(net.clock, 'good')
    const bad = textItem(net.clock, 'bad data')
    const expired = createSetItem(new TextEncoder().encode('old'), { now: net.clock.now() - 31 * 24 * 3600_000 })
    const future = createSetItem(new TextEncoder().encode('later'), { now: net.clock.now() + 3600_000 })
    const res = added(await rawRequest(holder, { type: 'add', setKey: key, items: [bad, good, expired, future] }))
    expect(res.accepted).toEqual([good.id])
    expect(res.rejected).toEqual([
      { id: bad.id, code: 'malformed', reason: 'bad item' },
      { id: expired.id, code: 'stale', reason: 'expired' },
      { id: future.id, code: 'internal', reason: 'added in the future' }
    ])
  })

  it('answers malformed requests with an error code and stores nothing', async () => {
    const good = textItem(net.clock, 'good')
    const tooBig = createSetItem(new Uint8Array(MAX_SET_ITEM_BYTES + 1), { now: net.clock.now() })
    expect(await rawRequest(holder, new Uint8Array([0xff, 0x00, 0x13, 0x37]))).toMatchObject({ type: 'error', code: 'malformed' })
    expect(await rawRequest(holder, cborg.encode({ type: 'add', setKey: key, items: [tooBig] }))).toMatchObject({ type: 'error', code: 'malformed' })
    expect(await rawRequest(holder, cborg.encode({ type: 'add', setKey: key, items: [good], extra: 1 }))).toMatchObject({ type: 'error', code: 'malformed' })
    expect(await rawRequest(holder, cborg.encode({ type: 'nope', setKey: key }))).toMatchObject({ type: 'error', code: 'malformed' })
    expect(await rawRequest(holder, { type: 'add', setKey: '/cc-nope/x', items: [good] })).toMatchObject({ type: 'error', code: 'unknown-namespace' })
    expect(await rawRequest(holder, { type: 'add', setKey: '/cc-test/not-a-key-id', items: [good] })).toMatchObject({ type: 'error', code: 'invalid-key' })
    expect(await holder.store.heldSets()).toEqual([])
  })

  it('resets a stream whose length prefix is beyond the frame limit, unread', async () => {
    const [outbound, inbound] = await streamPair()
    const served = holder.store.onStream(inbound, { remotePeer: holder.id } as unknown as Connection)
    const lp = lpStream(outbound, { maxDataLength: 4 * MAX_SET_FRAME_BYTES })
    await lp.write(new Uint8Array(MAX_SET_FRAME_BYTES + 1)).catch(() => {})
    await expect(lp.read({ signal: AbortSignal.timeout(5_000) })).rejects.toThrow()
    await served
    expect(inbound.status).not.toBe('open')
    expect(await holder.store.heldSets()).toEqual([])
  })

  it('gives up on a peer that opens a stream and sends nothing, after the request time limit', async () => {
    const [outbound, inbound] = await streamPair()
    const started = Date.now()
    const served = Promise.resolve(holder.store.onStream(inbound, { remotePeer: holder.id } as unknown as Connection)).then(() => 'gave up')
    const waited = new Promise(resolve => setTimeout(resolve, 2_000, 'still waiting'))
    expect(await Promise.race([served, waited])).toBe('gave up')
    // setRequestTimeoutMs is 200: the handler returned because its read timed out, not because of a frame
    expect(Date.now() - started).toBeGreaterThanOrEqual(150)
    expect(inbound.status).not.toBe('open')
    outbound.abort(new Error('done'))
  })
})

describe('set holder: checks with the network before storing (authorizeItem)', () => {
  let net: TestNet
  let holder: TestPeer
  const asked: string[] = []
  /** What the namespace's network check says of each item's text. */
  const verdicts = new Map<string, 'ok' | 'final' | 'unknown' | 'limited'>()

  beforeEach(async () => {
    asked.length = 0
    verdicts.clear()
    net = new TestNet()
    holder = await net.peer()
    holder.store.registerNamespace(TEST_NAMESPACE, {
      ...testRules,
      authorizeItem: async (_setKey, item) => {
        const text = textOf(item)
        asked.push(text)
        const verdict = verdicts.get(text) ?? 'ok'
        if (verdict === 'final') throw new InvalidSetItemError(`${text} is registered to another key`)
        if (verdict === 'unknown') throw new Error('the record could not be read now')
        if (verdict === 'limited') throw Object.assign(new Error('Rate limit exceeded'), { name: 'RateLimitError' })
      }
    })
  })
  afterEach(async () => { await net.stop() })

  it('stores what the check lets through; refuses the rest, finally or for now; never checks an item it holds again', async () => {
    const ok = textItem(net.clock, 'registered')
    const impostor = textItem(net.clock, 'impostor')
    const unread = textItem(net.clock, 'unread')
    const limited = textItem(net.clock, 'limited')
    verdicts.set('impostor', 'final').set('unread', 'unknown').set('limited', 'limited')
    const res = added(await rawRequest(holder, { type: 'add', setKey: key, items: [ok, impostor, unread, limited] }))
    expect(res.accepted).toEqual([ok.id])
    expect(res.rejected).toEqual([
      { id: impostor.id, code: 'malformed', reason: 'impostor is registered to another key' },
      { id: unread.id, code: 'not-ready', reason: 'cannot be checked now' },
      { id: limited.id, code: 'rate-limited', reason: 'too many checks for this peer' }
    ])
    expect((await holder.store.localItems(key)).map(textOf)).toEqual(['registered'])
    // the held item is acknowledged without a second check; the unread one is checked again
    verdicts.set('unread', 'ok')
    asked.length = 0
    expect(added(await rawRequest(holder, { type: 'add', setKey: key, items: [ok, unread] })).accepted).toEqual([ok.id, unread.id])
    expect(asked).toEqual(['unread'])
  })
})
