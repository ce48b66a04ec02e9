/**
 * Expiry on an injected clock: items past their namespace's TTL are neither served nor
 * kept after a sweep; tombstones and removals end with their own expiry; maintenance
 * hands items and removals on between holders.
 */
import { describe, it, expect, beforeEach, afterEach } from 'vitest'
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
})
