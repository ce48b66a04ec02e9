/**
 * Expiry on an injected clock: items past their namespace's TTL are neither served nor
 * kept after a sweep; tombstones and removals end with their own expiry; maintenance
 * hands items and removals on between holders.
 */
import { describe, it, expect, beforeEach, afterEach, vi } from 'vitest'
import { generateAccountKeys, createRemoveAuth, MAX_SET_CLOCK_SKEW_MS, type SetNamespaceRules } from '@conf-chat/protocol'
import { TestNet, rawRequest, testRules, testSetKey, textItem, textOf, type TestPeer } from './fixtures.js'

const TTL = 60_000
const owner = generateAccountKeys()
const key = testSetKey(owner)

describe('set expiry', () => {
  let net: TestNet
  let holder: TestPeer

  beforeEach(async () => {
    net = new TestNet()
    holder = await net.peer({ init: { setItemTtlMs: TTL } })
  })
  afterEach(async () => { await net.stop() })

  it('serves an item until its TTL has passed and deletes it at the next sweep; the set is then no longer held', async () => {
    const item = textItem(net.clock, 'short-lived')
    await rawRequest(holder, { type: 'add', setKey: key, items: [item] })
    net.clock.advance(TTL - 1)
    expect(await holder.store.sweep()).toBe(0)
    expect((await holder.store.localItems(key)).map(textOf)).toEqual(['short-lived'])
    expect(await rawRequest(holder, { type: 'list', setKey: key })).toMatchObject({ type: 'items', items: [{ id: item.id }] })

    net.clock.advance(1)
    // expired but not yet swept: no longer served or listed
    expect(await holder.store.localItems(key)).toEqual([])
    expect(await rawRequest(holder, { type: 'list', setKey: key })).toEqual({ type: 'items', items: [] })
    expect(await holder.store.heldSets()).toEqual([key])
    expect(await holder.store.sweep()).toBe(1)
    expect(await holder.store.heldSets()).toEqual([])
    expect(await rawRequest(holder, { type: 'list', setKey: key, idsOnly: true })).toEqual({ type: 'ids', ids: [] })
  })

  it('applies a namespace\'s own TTL', async () => {
    const longLived: SetNamespaceRules = { ...testRules, itemTtlMs: 10 * TTL }
    holder.store.registerNamespace('cc-test', longLived)
    const item = textItem(net.clock, 'kept longer')
    await rawRequest(holder, { type: 'add', setKey: key, items: [item] })
    net.clock.advance(2 * TTL)
    expect(await holder.store.sweep()).toBe(0)
    expect(await holder.store.localItems(key)).toHaveLength(1)
    net.clock.advance(8 * TTL)
    expect(await holder.store.sweep()).toBe(1)
  })

  it('keeps a tombstone until the removal expires, then takes the id again', async () => {
    const item = textItem(net.clock, 'removed once')
    await rawRequest(holder, { type: 'add', setKey: key, items: [item] })
    const auth = createRemoveAuth(key, [item.id], owner, net.clock.now())
    expect(await rawRequest(holder, { type: 'remove', setKey: key, ids: [item.id], auth })).toEqual({ type: 'removed', removed: 1 })

    // the tombstone outlives the item's own TTL by the allowed clock skew
    net.clock.advance(TTL + MAX_SET_CLOCK_SKEW_MS - 1)
    await holder.store.sweep()
    expect(await holder.store.heldSets()).toEqual([key])
    const fresh = textItem(net.clock, 'same id, later', item.id)
    expect(await rawRequest(holder, { type: 'add', setKey: key, items: [fresh] })).toMatchObject({ rejected: [{ id: item.id, reason: 'removed' }] })
    expect(await rawRequest(holder, { type: 'removals', setKey: key })).toMatchObject({ removals: [{ ids: [item.id] }] })

    net.clock.advance(1)
    await holder.store.sweep()
    expect(await holder.store.heldSets()).toEqual([])
    expect(await rawRequest(holder, { type: 'removals', setKey: key })).toEqual({ type: 'removals', removals: [] })
    expect(await rawRequest(holder, { type: 'add', setKey: key, items: [fresh] })).toMatchObject({ accepted: [item.id], rejected: [] })
  })

  it('refuses a removal signed more than a TTL ago, or too far in the future', async () => {
    const item = textItem(net.clock, 'x')
    await rawRequest(holder, { type: 'add', setKey: key, items: [item] })
    const old = createRemoveAuth(key, [item.id], owner, net.clock.now() - TTL)
    expect(await rawRequest(holder, { type: 'remove', setKey: key, ids: [item.id], auth: old })).toMatchObject({ type: 'error', code: 'unauthorized' })
    const future = createRemoveAuth(key, [item.id], owner, net.clock.now() + MAX_SET_CLOCK_SKEW_MS + 1)
    expect(await rawRequest(holder, { type: 'remove', setKey: key, ids: [item.id], auth: future })).toMatchObject({ type: 'error', code: 'unauthorized' })
    expect(await holder.store.localItems(key)).toHaveLength(1)
  })
})

describe('set maintenance', () => {
  let net: TestNet
  let a: TestPeer
  let b: TestPeer

  beforeEach(async () => {
    net = new TestNet()
    ;[a, b] = await net.servers(2, { setItemTtlMs: TTL })
  })
  afterEach(async () => { await net.stop() })

  it('hands missing items on to the other holders, and pulls their removals first', async () => {
    const items = ['one', 'two', 'three'].map(t => textItem(net.clock, t))
    await rawRequest(a!, { type: 'add', setKey: key, items })
    await rawRequest(b!, { type: 'add', setKey: key, items: [items[0]!] })
    const removedOnB = createRemoveAuth(key, [items[1]!.id], owner, net.clock.now())
    await rawRequest(b!, { type: 'remove', setKey: key, ids: [items[1]!.id], auth: removedOnB })

    const report = await a!.store.maintain()
    expect(report).toEqual({ sets: 1, pushedItems: 1, pushedRemovals: 0, pulledRemovals: 1, swept: 0 })
    expect((await a!.store.localItems(key)).map(textOf).sort()).toEqual(['one', 'three'])
    expect((await b!.store.localItems(key)).map(textOf).sort()).toEqual(['one', 'three'])
  })

  it('sweeps before it hands on: expired items are not pushed', async () => {
    await rawRequest(a!, { type: 'add', setKey: key, items: [textItem(net.clock, 'old')] })
    net.clock.advance(TTL)
    const report = await a!.store.maintain()
    expect(report).toMatchObject({ swept: 1, sets: 0, pushedItems: 0 })
    expect(await b!.store.heldSets()).toEqual([])
  })
  it('welcomes a newcomer: hands it the sets it now holds, removals first, with no lookup', async () => {
    const items = ['one', 'two'].map(t => textItem(net.clock, t))
    await rawRequest(a!, { type: 'add', setKey: key, items })
    const removal = createRemoveAuth(key, [items[0]!.id], owner, net.clock.now())
    await rawRequest(a!, { type: 'remove', setKey: key, ids: [items[0]!.id], auth: removal })
    const newcomer = await net.peer({ init: { setItemTtlMs: TTL } })
    const lookups = net.lookups.get(a!.id.toString()) ?? 0
    const report = await a!.store.welcomeNewcomers([newcomer.id])
    expect(report).toEqual({ sets: 1, pushedItems: 1, pushedRemovals: 1, pulledRemovals: 0, swept: 0 })
    expect((await newcomer.store.localItems(key)).map(textOf)).toEqual(['two'])
    // the removal came too: the removed item is refused there from now on
    expect(await rawRequest(newcomer, { type: 'add', setKey: key, items: [items[0]!] })).toMatchObject({ type: 'added', accepted: [], rejected: [{ id: items[0]!.id, code: 'already-delivered' }] })
    expect(net.lookups.get(a!.id.toString()) ?? 0).toBe(lookups)
  })

  it('welcomes the servers that joined, once the delay is over, and not the same peer again', async () => {
    const welcoming = await net.peer({ init: { setItemTtlMs: TTL, setWelcomeDelayMs: 20 } })
    await rawRequest(welcoming, { type: 'add', setKey: key, items: [textItem(net.clock, 'kept')] })
    const [c, d] = await net.servers(2, { setItemTtlMs: TTL })
    welcoming.store.welcome(c!.id)
    welcoming.store.welcome(d!.id)
    welcoming.store.welcome(welcoming.id)
    expect(await c!.store.localItems(key)).toEqual([])
    await vi.waitFor(async () => {
      for (const p of [c!, d!]) expect((await p.store.localItems(key)).map(textOf)).toEqual(['kept'])
    }, { timeout: 5_000 })
    // a peer welcomed lately is not welcomed again (a restart adds every known peer to the table again)
    await rawRequest(welcoming, { type: 'add', setKey: key, items: [textItem(net.clock, 'later')] })
    const e = await net.peer({ init: { setItemTtlMs: TTL } })
    welcoming.store.welcome(c!.id)
    welcoming.store.welcome(e.id)
    await vi.waitFor(async () => { expect(await e.store.localItems(key)).toHaveLength(2) }, { timeout: 5_000 })
    expect((await c!.store.localItems(key)).map(textOf)).toEqual(['kept'])
  })

  it('gives a newcomer that failed nothing more in that welcome, and the others all their sets', async () => {
    const keys = [key, testSetKey(generateAccountKeys()), testSetKey(generateAccountKeys())]
    for (const k of keys) await rawRequest(a!, { type: 'add', setKey: k, items: [textItem(net.clock, `in ${k}`)] })
    const gone = await net.peer({ init: { setItemTtlMs: TTL } })
    await gone.store.stop() // joined the table, then stopped serving sets
    const live = await net.peer({ init: { setItemTtlMs: TTL } })
    net.serverDials.length = 0
    const report = await a!.store.welcomeNewcomers([gone.id, live.id])
    expect(report).toMatchObject({ sets: 3, pushedItems: 3 })
    for (const k of keys) expect(await live.store.localItems(k)).toHaveLength(1)
    // one try, at the first set (the live one asks it too, for the removals of each set new to it)
    expect(net.serverDials.filter(d => d.from === a!.id.toString() && d.to === gone.id.toString())).toHaveLength(1)
  })

  it('welcomes a newcomer only to the sets it is among the closest holders of, as far as the routing table tells', async () => {
    const other = testSetKey(generateAccountKeys())
    const near = await net.peer({ init: { setItemTtlMs: TTL } })
    const far = await net.peer({ init: { setItemTtlMs: TTL } })
    // the table of `welcoming`: `near` is among the closest to `key`, nobody new is to `other`
    const welcoming = await net.peer({
      init: { setItemTtlMs: TTL },
      responsibility: {
        isResponsible: () => true,
        isAmongClosest: (peer, setKey) => peer.equals(near.id) && new TextDecoder().decode(setKey) === key,
        amongClosest: (peers, setKey) => peers.filter(peer => peer.equals(near.id) && new TextDecoder().decode(setKey) === key)
      }
    })
    await rawRequest(welcoming, { type: 'add', setKey: key, items: [textItem(net.clock, 'for the near one')] })
    await rawRequest(welcoming, { type: 'add', setKey: other, items: [textItem(net.clock, 'for nobody new')] })
    const report = await welcoming.store.welcomeNewcomers([near.id, far.id])
    expect(report).toMatchObject({ sets: 1, pushedItems: 1 })
    expect((await near.store.localItems(key)).map(textOf)).toEqual(['for the near one'])
    expect(await near.store.localItems(other)).toEqual([])
    expect(await far.store.heldSets()).toEqual([])
  })
})
