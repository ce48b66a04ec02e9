/**
 * The client side of the set store against three holders on in-memory streams: adds
 * land on every holder, a reader takes the union of the holders' listings, a holder that
 * did not answer is asked once more, and holders' refusals reach the writer with codes.
 */
import { describe, it, expect, beforeEach, afterEach } from 'vitest'
import { generateAccountKeys, createSetItem, keyIdOf, MAX_SET_ITEM_BYTES, ReadNotAuthorizedError, type SetItem } from '@conf-chat/protocol'
import { TestNet, TEST_NAMESPACE, rawRequest, testRules, testSetKey, textItem, textOf, type TestPeer } from './fixtures.js'
import { SetWriteError } from '../../../src/network/sets/index.js'
import { SET_GETS_IN_FLIGHT_PER_HOLDER } from '../../../src/network/sets/constants.js'

const owner = generateAccountKeys()
const key = testSetKey(owner)

describe('set client', () => {
  let net: TestNet
  let holders: TestPeer[]
  let reader: TestPeer

  beforeEach(async () => {
    net = new TestNet()
    holders = await net.servers(3)
    reader = await net.peer({ server: false })
  })
  afterEach(async () => { await net.stop() })

  /** Put an item on one holder only, as a writer whose other adds were lost would. */
  const onlyOn = async (holder: TestPeer, item: SetItem): Promise<void> => {
    expect(await rawRequest(holder, { type: 'add', setKey: key, items: [item] })).toMatchObject({ type: 'added', accepted: [item.id] })
  }

  it('adds an item to every holder and reports the copies', async () => {
    const item = textItem(net.clock, 'hello')
    const res = await reader.store.add(key, [item])
    expect(res).toEqual({ holders: 3, stored: { [item.id]: 3 } })
    for (const h of holders) expect((await h.store.localItems(key)).map(textOf)).toEqual(['hello'])
    expect(await reader.store.localItems(key)).toEqual([])
  })

  it('lists the union of every holder\'s items, sorted by id, each once', async () => {
    const items = ['one', 'two', 'three'].map(t => textItem(net.clock, t))
    for (const [i, h] of holders.entries()) await onlyOn(h, items[i]!)
    await onlyOn(holders[0]!, items[1]!)
    const listed = await reader.store.list(key)
    expect(listed.map(i => i.id)).toEqual(items.map(i => i.id).sort())
    expect(listed.map(textOf).sort()).toEqual(['one', 'three', 'two'])
  })

  it('checks items with the reader\'s own check in place of the namespace\'s, and takes an id it refuses from another holder that listed it', async () => {
    const real = textItem(net.clock, 'real')
    // two holders send something else under the same id: the namespace takes it, the reader's check does not
    const fake = textItem(net.clock, 'fake', real.id)
    for (const h of holders.slice(0, 2)) await onlyOn(h, fake)
    await onlyOn(holders[2]!, real)
    const validateItem = (_setKey: string, item: SetItem): void => {
      if (textOf(item) === 'fake') throw new Error('not what the writer wrote')
    }
    // the namespace's check alone: the version most holders keep
    expect((await reader.store.list(key)).map(textOf)).toEqual(['fake'])
    expect((await reader.store.list(key, { validateItem })).map(textOf)).toEqual(['real'])
    // ids first, each item from one holder that listed it (a fake one first, mostly): then from the next
    for (let run = 0; run < 5; run++) {
      expect((await reader.store.list(key, { skip: () => false, validateItem })).map(textOf)).toEqual(['real'])
    }
  })

  it('with ids to skip, lists ids first and fetches each other item once, from one holder that has it', async () => {
    const [a, b, c] = ['one', 'two', 'three'].map(t => textItem(net.clock, t)) as [SetItem, SetItem, SetItem]
    for (const h of holders) { await onlyOn(h, a); await onlyOn(h, b) }
    await onlyOn(holders[2]!, c)
    const served = (): number => holders.reduce((n, h) => n + h.store.stats.itemsServed, 0)
    const listed = await reader.store.list(key, { skip: id => id === a.id })
    expect(listed.map(textOf).sort()).toEqual(['three', 'two'])
    // b from one holder, c from the one that has it; a from none
    expect(served()).toBe(2)
    expect(await reader.store.list(key, { skip: id => [a.id, b.id, c.id].includes(id) })).toEqual([])
    expect(served()).toBe(2)
  })

  it('with ids to skip, a full set comes from every holder that lists it at once, each item once', async () => {
    // 13 GETs' worth: one at a time from the first holder to list them, they were 13 round trips in turn
    const items = Array.from({ length: 200 }, (_, i) => textItem(net.clock, `message ${i}`))
    for (const h of holders) expect(await rawRequest(h, { type: 'add', setKey: key, items })).toMatchObject({ type: 'added', accepted: items.map(i => i.id) })
    const listed = await reader.store.list(key, { skip: () => false })
    expect(listed.map(i => i.id)).toEqual(items.map(i => i.id).sort())
    expect(holders.reduce((n, h) => n + h.store.stats.itemsServed, 0)).toBe(200)
    for (const h of holders) expect(h.store.stats.itemsServed).toBeGreaterThan(0)
  })

  it('with ids to skip, a holder that lists the ids and then fails its gets is asked no more: the others send them', async () => {
    const items = Array.from({ length: 200 }, (_, i) => textItem(net.clock, `message ${i}`))
    for (const h of holders) expect(await rawRequest(h, { type: 'add', setKey: key, items })).toMatchObject({ type: 'added', accepted: items.map(i => i.id) })
    // the first holder answers its listing, then nothing: its first gets fail, and it gets no more
    const failing = holders[0]!
    net.failAfter.set(failing.id.toString(), 1)
    const listed = await reader.store.list(key, { skip: () => false })
    expect(listed.map(i => i.id)).toEqual(items.map(i => i.id).sort())
    expect(net.dialsTo(failing)).toBeLessThanOrEqual(1 + SET_GETS_IN_FLIGHT_PER_HOLDER)
    expect(failing.store.stats.itemsServed).toBe(0)
  })

  it('with ids to skip, a holder that never answers costs the read only what that holder alone has', async () => {
    const items = ['one', 'two'].map(t => textItem(net.clock, t))
    for (const h of holders) for (const item of items) await onlyOn(h, item)
    net.hanging.add(holders[0]!.id.toString())
    // the caller gives up after 300 ms (its signal also ends the hanging request): the other holders' items are in
    const listed = await reader.store.list(key, { skip: () => false, signal: AbortSignal.timeout(300) })
    expect(listed.map(textOf).sort()).toEqual(['one', 'two'])
  })

  it('with ids to skip, reading as the owner, a holder whose read challenge failed is asked afresh after the pause', async () => {
    // a set only its owner may read: each holder first gives the reader a challenge to sign
    const ownerOnly = {
      ...testRules,
      authorizeRead: (setKey: string, pub: Uint8Array) => {
        if (keyIdOf(pub) !== setKey.split('/')[2]) throw new ReadNotAuthorizedError('only the owner reads')
      }
    }
    const guarded = new TestNet()
    try {
      const servers = await guarded.servers(3, { setNamespaces: { [TEST_NAMESPACE]: ownerOnly } })
      const client = await guarded.peer({ server: false })
      const busy = servers[1]!
      const item = textItem(guarded.clock, 'only on the busy holder')
      expect(await rawRequest(busy, { type: 'add', setKey: key, items: [item] })).toMatchObject({ type: 'added', accepted: [item.id] })
      await expect(client.store.list(key, { skip: () => false })).rejects.toThrow(/none of the 3 holders/) // no owner's proof: every holder refuses
      // the first dial to it (the challenge) fails; its retry asks for a new one
      guarded.failNext.set(busy.id.toString(), 1)
      const dialsBefore = guarded.dialsTo(busy)
      expect((await client.store.list(key, { skip: () => false, readAs: owner })).map(textOf)).toEqual(['only on the busy holder'])
      // the failed challenge, then challenge, ids and get
      expect(guarded.dialsTo(busy) - dialsBefore).toBe(4)
    } finally {
      await guarded.stop()
    }
  })

  it('lists, of two items under one id, the one most holders keep, whichever holder answers first', async () => {
    // one holder missed the first item and kept a later one under its id; the other two
    // kept the first: each holder in turn is the odd one out
    const expected: string[] = []
    for (const [j, odd] of holders.entries()) {
      const first = textItem(net.clock, `first ${j}`, `same-id-${j}`)
      await onlyOn(odd, textItem(net.clock, `later ${j}`, `same-id-${j}`))
      for (const h of holders.filter(h => h !== odd)) await onlyOn(h, first)
      expected.push(`first ${j}`)
    }
    for (let i = 0; i < 3; i++) expect((await reader.store.list(key)).map(textOf)).toEqual(expected)
  })

  it('asks a holder that did not answer a listing once more, and only once', async () => {
    const item = textItem(net.clock, 'only on the busy holder')
    const busy = holders[1]!
    await onlyOn(busy, item)
    net.failNext.set(busy.id.toString(), 1)
    expect((await reader.store.list(key)).map(textOf)).toEqual(['only on the busy holder'])
    expect(net.dialsTo(busy)).toBe(2)
    expect(net.dialsTo(holders[0]!)).toBe(1)

    // one that stays silent is asked twice, and the others' items are still listed
    net.dials.length = 0
    net.failNext.set(busy.id.toString(), 10)
    const other = textItem(net.clock, 'on a live holder')
    await onlyOn(holders[2]!, other)
    expect((await reader.store.list(key)).map(textOf)).toEqual(['on a live holder'])
    expect(net.dialsTo(busy)).toBe(2)
  })

  it('asks a holder that did not answer an add once more, while the item is on fewer than half the holders', async () => {
    const item = textItem(net.clock, 'sent while two holders were busy')
    for (const h of holders.slice(0, 2)) net.failNext.set(h.id.toString(), 1)
    expect((await reader.store.add(key, [item])).stored[item.id]).toBe(3)
    for (const h of holders) expect(net.dialsTo(h)).toBe(h === holders[2] ? 1 : 2)

    // one holder down while the others stored it: no second try, no waiting
    net.dials.length = 0
    const next = textItem(net.clock, 'sent while one holder was down')
    net.failNext.set(holders[0]!.id.toString(), 10)
    expect((await reader.store.add(key, [next])).stored[next.id]).toBe(2)
    expect(net.dialsTo(holders[0]!)).toBe(1)
  })

  it('asks a holder that could not check an item yet once more, while the item is on fewer than half the holders', async () => {
    // holders that cannot read the writer's fresh account yet refuse the item for now
    let refuseNext = 0
    const authorizeItem = async (): Promise<void> => {
      if (refuseNext-- > 0) throw new Error('the account cannot be read yet')
    }
    const checked = new TestNet()
    await checked.servers(3, { setNamespaces: { [TEST_NAMESPACE]: { ...testRules, authorizeItem } } })
    const writer = await checked.peer({ server: false })
    try {
      // two of three refuse: the item would be on one holder only, so both are asked again
      refuseNext = 2
      const item = textItem(checked.clock, 'written right after the registration')
      expect(await writer.store.add(key, [item])).toEqual({ holders: 3, stored: { [item.id]: 3 } })
      expect(checked.dials).toHaveLength(5)

      // one refuses: the item is on two of three, no second try
      checked.dials.length = 0
      refuseNext = 1
      const next = textItem(checked.clock, 'on most holders at once')
      expect((await writer.store.add(key, [next])).stored[next.id]).toBe(2)
      expect(checked.dials).toHaveLength(3)

      // all refuse both times: the writer hears "not ready" once from each holder
      checked.dials.length = 0
      refuseNext = Infinity
      const last = textItem(checked.clock, 'never checked')
      const err = await writer.store.add(key, [last]).then(() => undefined, (e: unknown) => e)
      expect(err).toMatchObject({ name: 'SetWriteError', code: 'not-ready', stored: { [last.id]: 0 } })
      expect((err as SetWriteError).refusals[last.id]).toHaveLength(3)
      expect(checked.dials).toHaveLength(6)
    } finally {
      await checked.stop()
    }
  })

  it('says when no holder answered a listing, instead of listing nothing', async () => {
    for (const h of holders) net.failNext.set(h.id.toString(), 10)
    await expect(reader.store.list(key)).rejects.toMatchObject({ name: 'SetReadError' })
    for (const h of holders) expect(net.dialsTo(h)).toBe(2)
  })

  it('says when there is no holder at all', async () => {
    const lone = new TestNet()
    const client = await lone.peer({ server: false })
    try {
      await expect(client.store.list(key)).rejects.toMatchObject({ name: 'NoSetHoldersError' })
      await expect(client.store.add(key, [textItem(lone.clock, 'x')])).rejects.toMatchObject({ name: 'NoSetHoldersError' })
    } finally {
      await lone.stop()
    }
  })

  it('checks items, keys and the remover before it sends anything', async () => {
    await expect(reader.store.add(key, [textItem(net.clock, 'bad item')])).rejects.toMatchObject({ name: 'InvalidSetItemError' })
    await expect(reader.store.add(key, [createSetItem(new Uint8Array(MAX_SET_ITEM_BYTES + 1), { now: net.clock.now() })])).rejects.toMatchObject({ name: 'InvalidSetItemError' })
    await expect(reader.store.add('/cc-nope/x', [textItem(net.clock, 'x')])).rejects.toMatchObject({ name: 'UnknownSetNamespaceError' })
    await expect(reader.store.add('no key', [textItem(net.clock, 'x')])).rejects.toMatchObject({ name: 'InvalidSetKeyError' })
    await expect(reader.store.remove(key, ['some-id'], generateAccountKeys())).rejects.toMatchObject({ name: 'RemoveNotAuthorizedError' })
    expect(net.dials).toEqual([])
  })

  it('removes from every holder with the owner\'s signature; a re-add then fails with the holders\' code', async () => {
    const items = ['a', 'b'].map(t => textItem(net.clock, t))
    await reader.store.add(key, items)
    expect(await reader.store.remove(key, [items[0]!.id], owner)).toEqual({ holders: 3, acknowledged: 3 })
    expect((await reader.store.list(key)).map(textOf)).toEqual(['b'])

    const err = await reader.store.add(key, [items[0]!]).then(() => undefined, (e: unknown) => e)
    expect(err).toBeInstanceOf(SetWriteError)
    const write = err as SetWriteError
    expect(write.stored).toEqual({ [items[0]!.id]: 0 })
    expect(write.code).toBe('already-delivered')
    expect(write.refusedEverywhere(items[0]!.id, 'already-delivered')).toBe(true)
    // what the outbox reads: every holder's refusal of the id, with its code
    expect(write.refusals[items[0]!.id]).toEqual(Array(3).fill({ code: 'already-delivered', final: true, reason: 'removed' }))
  })

  it('reports a full set with the code "full", and what the other items did', async () => {
    const small = new TestNet()
    await small.servers(3, { maxItemsPerSet: 1 })
    const writer = await small.peer({ server: false })
    try {
      const items = ['first', 'second'].map(t => textItem(small.clock, t))
      const err = await writer.store.add(key, items).then(() => undefined, (e: unknown) => e) as SetWriteError
      expect(err).toMatchObject({ name: 'SetWriteError', code: 'full', stored: { [items[0]!.id]: 3, [items[1]!.id]: 0 } })
      expect(err.refusedEverywhere(items[1]!.id, 'full')).toBe(true)
      expect(err.refusedEverywhere(items[0]!.id, 'full')).toBe(false)
    } finally {
      await small.stop()
    }
  })

  it('a periodic read reuses the holders found lately instead of a new lookup, and only while they are fresh enough', async () => {
    const lookups = (): number => net.lookups.get(reader.id.toString()) ?? 0
    const item = textItem(net.clock, 'hello')
    await reader.store.add(key, [item])
    const before = lookups()
    const periodic = { holdersMaxAgeMs: 60_000 }
    expect((await reader.store.list(key, periodic)).map(textOf)).toEqual(['hello'])
    expect(lookups()).toBe(before) // the add's lookup, reused
    net.clock.advance(59_000)
    expect((await reader.store.list(key, periodic)).map(textOf)).toEqual(['hello'])
    expect(lookups()).toBe(before)
    net.clock.advance(2_000) // older than allowed: looked up again, and that answer is reused next
    await reader.store.list(key, periodic)
    expect(lookups()).toBe(before + 1)
    await reader.store.list(key, periodic)
    expect(lookups()).toBe(before + 1)
    await reader.store.list(key) // a read that does not say it may reuse always looks up
    expect(lookups()).toBe(before + 2)
    // so does an add, unless it says it may reuse
    const next = textItem(net.clock, 'again')
    expect((await reader.store.add(key, [next], periodic)).stored[next.id]).toBe(3)
    expect(lookups()).toBe(before + 2)
    await reader.store.add(key, [textItem(net.clock, 'once more')])
    expect(lookups()).toBe(before + 3)
  })

  it('a periodic read whose holder stopped answering looks the holders up again and reads the new one', async () => {
    const lookups = (): number => net.lookups.get(reader.id.toString()) ?? 0
    await reader.store.list(key) // holders found: the three servers
    const newcomer = await net.peer()
    const item = textItem(net.clock, 'left with the newcomer')
    await onlyOn(newcomer, item)
    await holders[0]!.store.stop() // gone: its stream handler with it
    const before = lookups()
    const listed = await reader.store.list(key, { holdersMaxAgeMs: 60_000 })
    expect(listed.map(textOf)).toEqual(['left with the newcomer'])
    expect(lookups()).toBe(before + 1)
    expect(net.dialsTo(newcomer)).toBe(1)
  })

  it('stops waiting for a holder that never answers when the caller aborts', async () => {
    for (const h of holders) net.hanging.add(h.id.toString())
    const controller = new AbortController()
    setTimeout(() => { controller.abort() }, 50)
    const started = Date.now()
    await expect(reader.store.list(key, { signal: controller.signal })).rejects.toMatchObject({ name: 'SetReadError' })
    // the request limit is 10 s: only the caller's signal can have ended it this soon
    expect(Date.now() - started).toBeLessThan(2_000)
  })
})
