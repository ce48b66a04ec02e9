import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import bcrypt from 'bcryptjs'
import * as cborg from 'cborg'
import {
  userKey, createSignedRecord, encodeSignedRecord, generateAccountKeys, encryptWithPassword, derivePasswordKeys, openWithPasswordKey,
  paramsOf, DEFAULT_PWHASH, type AccountPayload
} from '@conf-chat/protocol'
import type { ChatNode } from '@conf-chat/node'
import { startChatNetwork, eventually, type ChatNetwork } from './helpers/chat.js'
import { internalsOf } from './helpers/internals.js'
import { storeUnchecked } from './helpers/records.js'

const pw = 'correct horse battery'

describe('accounts', () => {
  let net: ChatNetwork
  let a: ChatNode, b: ChatNode, c: ChatNode
  beforeAll(async () => {
    net = await startChatNetwork(4)
    ;[a, b, c] = net.nodes as [ChatNode, ChatNode, ChatNode]
  })
  afterAll(async () => { await net?.cleanup() })

  it('registers on one peer and logs in on another', async () => {
    const profile = await a.register({ username: 'alice', password: pw, fullName: 'Alice Liddell' })
    expect(profile.username).toBe('alice')
    expect(a.whoami().username).toBe('alice')
    await a.logout()
    const { profile: p2, timings } = await b.login('alice', pw)
    expect(p2.keyId).toBe(profile.keyId)
    expect(p2.fullName).toBe('Alice Liddell')
    expect(b.whoami()).toMatchObject({ username: 'alice', fullName: 'Alice Liddell', peerId: b.peer.peerId.toString() })
    expect(timings.bcryptMs).toBeGreaterThan(0)
    await b.logout()
  })

  it('tells a wrong password from an unknown user', async () => {
    await expect(c.login('alice', 'wrong password')).rejects.toMatchObject({ name: 'WrongPasswordError' })
    await expect(c.login('nobody', pw)).rejects.toMatchObject({ name: 'UnknownUserError' })
    expect(c.session).toBeUndefined()
  })

  it('slows down repeated wrong passwords on one peer', async () => {
    const times: number[] = []
    for (let i = 0; i < 3; i++) {
      const t = Date.now()
      await expect(c.login('alice', `bad password ${i}`)).rejects.toMatchObject({ name: 'WrongPasswordError' })
      times.push(Date.now() - t)
    }
    // the third attempt waited for the throttle left by the second (1 s, or 2 s counting the failure of the test above)
    expect(times[2]).toBeGreaterThanOrEqual(900)
    // the right password is still accepted: the throttle delays the login, it does not refuse it
    await c.login('alice', pw)
    await c.logout()
  })

  it('refuses a taken name and invalid input, writing nothing', async () => {
    await expect(c.register({ username: 'alice', password: pw, fullName: 'Other Alice' })).rejects.toMatchObject({ name: 'NameTakenError' })
    await expect(c.register({ username: 'Bad Name', password: pw, fullName: 'X' })).rejects.toMatchObject({ name: 'InvalidInputError' })
    await expect(c.register({ username: 'shorty', password: 'short', fullName: 'X' })).rejects.toMatchObject({ name: 'InvalidInputError', message: expect.stringMatching(/password too short/) })
    await expect(c.register({ username: 'noname', password: pw, fullName: '   ' })).rejects.toMatchObject({ name: 'InvalidInputError', message: expect.stringMatching(/full name/) })
    expect(c.session).toBeUndefined()
    for (const name of ['shorty', 'noname']) {
      expect(await c.peer.records.get(userKey(name))).toBeUndefined()
    }
    // alice still logs in with her own password
    await c.login('alice', pw)
    await c.logout()
  })

  it('gives a name raced by two peers to exactly one owner, everywhere', async () => {
    const results = await Promise.allSettled([
      b.register({ username: 'racer', password: pw, fullName: 'Racer B' }),
      c.register({ username: 'racer', password: pw, fullName: 'Racer C' })
    ])
    const won = results.filter(r => r.status === 'fulfilled')
    const lost = results.filter(r => r.status === 'rejected')
    expect(won).toHaveLength(1)
    expect(lost).toHaveLength(1)
    expect((lost[0] as PromiseRejectedResult).reason.name).toBe('NameTakenError')
    const winnerKeyId = (won[0] as PromiseFulfilledResult<{ keyId: string }>).value.keyId
    for (const node of net.nodes) {
      const profile = await internalsOf(node).accounts.profile('racer')
      expect(profile?.keyId).toBe(winnerKeyId)
    }
    for (const node of [b, c]) if (node.session != null) await node.logout()
  })

  it('changes the password: the old one fails on a third peer, the new one works, the keys stay', async () => {
    await a.login('alice', pw)
    const before = a.whoami().keyId
    await a.changePassword(pw, 'a new violet kettle')
    await a.logout()
    await expect(c.login('alice', pw)).rejects.toMatchObject({ name: 'WrongPasswordError' })
    // (this login waits out the throttle of the failure above by itself)
    await c.login('alice', 'a new violet kettle')
    expect(c.whoami().keyId).toBe(before)
    await c.logout()
  })

  it('publishes presence: online at login, offline at logout', async () => {
    await a.register({ username: 'bob', password: pw, fullName: 'Bob' })
    await eventually(async () => (await c.presenceOf('bob'))?.online === true)
    await a.logout()
    await eventually(async () => (await c.presenceOf('bob'))?.online === false)
  })

  it('shows a crashed peer\'s user offline once the presence expires', async () => {
    const d = await net.addNode()
    await d.register({ username: 'carol', password: pw, fullName: 'Carol' })
    await eventually(async () => (await b.presenceOf('carol'))?.online === true)
    await d.peer.stop() // no logout, no offline record: as after kill -9
    // past its expiresAt the record says offline, and then no holder serves it at all (its signed end): offline either way
    await eventually(async () => (await b.presenceOf('carol'))?.online !== true, 20_000)
  })

  it('refreshes presence on time even when each refresh is slow (counted from its start)', { timeout: 60_000 }, async () => {
    const e = await net.addNode({ presenceTtlMs: 9_000, presenceRefreshMs: 3_000 })
    // every refresh writes slowly, as when some DHT peers do not answer (the 2 s sleep below is that slowness)
    const presence = internalsOf(e).presence
    const publish = presence.publish.bind(presence)
    const published: number[] = []
    presence.publish = async (...args) => { await new Promise(resolve => setTimeout(resolve, 2_000)); const r = await publish(...args); published.push(Date.now()); return r }
    await e.register({ username: 'erin', password: pw, fullName: 'Erin' })
    await eventually(() => published.length >= 5, 40_000, 100)
    const gaps = published.slice(1).map((t, i) => t - published[i]!)
    // counted from the end of the previous refresh they would be 3 s + 2 s + the publish
    expect(Math.max(...gaps.slice(1))).toBeLessThan(4_500)
    await e.logout()
  })

  it('lets a second login take over: the first peer logs out', async () => {
    await a.login('bob', pw)
    const ended = new Promise<string>(resolve => {
      a.addEventListener('session:ended', ev => { resolve(ev.detail.reason) }, { once: true })
    })
    await b.login('bob', pw)
    expect(await ended).toBe('takeover')
    expect(a.session).toBeUndefined()
    expect(b.session?.account.username).toBe('bob')
    const presence = await eventually(async () => { const p = await c.presenceOf('bob'); return p?.peerId === b.peer.peerId.toString() && p })
    expect(presence.online).toBe(true)
    await b.logout()
  })

  it('refuses a forged user record at the stores', async () => {
    const mallory = generateAccountKeys()
    const real = await internalsOf(c).accounts.lookup('alice')
    const forged = createSignedRecord(userKey('alice'), 99, { ...real!.payload, fullName: 'Mallory' }, mallory)
    const result = await c.peer.records.put(userKey('alice'), encodeSignedRecord(forged)).catch(err => err)
    // our own store refuses it first (another key holds the name)
    expect(result.name).toBe('RecordConflictError')
    for (const node of net.nodes.slice(0, 3)) {
      expect((await internalsOf(node).accounts.profile('alice'))?.fullName).toBe('Alice Liddell')
    }
  })

  it('what anyone reads of an account gives a guesser nothing cheaper than one Argon2id of at least 64 MiB per guess', async () => {
    // the product's settings, not the tests' cheap ones
    const d = await net.addNode({ pwhash: DEFAULT_PWHASH, bcryptCost: 10 })
    await d.register({ username: 'grace', password: pw, fullName: 'Grace Hopper' })
    await d.logout()
    // the attacker's copy, read from the DHT on another peer
    const record = await c.peer.records.get<AccountPayload>(userKey('grace'))
    const sealed = record!.payload.secretKeys
    if (sealed.kdf !== 'argon2id') throw new Error(`keys sealed with ${sealed.kdf}`)
    expect(sealed.mem).toBeGreaterThanOrEqual(64 * 2 ** 20)
    expect(sealed.ops).toBeGreaterThanOrEqual(3)
    // the password's bcrypt (the cheap oracle of the records before) does not match it
    expect(await bcrypt.compare(pw, record!.payload.passwordHash)).toBe(false)
    // only Argon2id's output does, and opens the keys
    const derived = await derivePasswordKeys(pw, sealed.salt, paramsOf(sealed))
    expect(await bcrypt.compare(derived.verifier, record!.payload.passwordHash)).toBe(true)
    expect(openWithPasswordKey(sealed, derived.key).length).toBeGreaterThan(0)
    const { timings } = await b.login('grace', pw)
    expect(timings.kdfMs).toBeGreaterThan(0)
    await b.logout()
  })

  it('an account made before Argon2id and name work is upgraded at its next login: the next version, read from another peer, needs Argon2id and carries the work; same keys', async () => {
    const keys = generateAccountKeys()
    const now = Date.now()
    const legacy: AccountPayload = {
      type: 'account',
      username: 'henry',
      fullName: 'Henry Old',
      boxPublic: keys.boxPublic,
      passwordHash: await bcrypt.hash(pw, 4),
      secretKeys: await encryptWithPassword(cborg.encode({ signSecret: keys.signSecret, boxSecret: keys.boxSecret }), pw, { N: 1024, r: 8, p: 1 }),
      createdAt: now,
      updatedAt: now
    }
    // held since before names cost work: a new claim without work is refused now
    const value = encodeSignedRecord(createSignedRecord(userKey('henry'), 1, legacy, keys))
    for (const peer of [net.supernode, ...net.nodes.map(n => n.peer)].filter(p => p.status === 'started')) await storeUnchecked(peer, userKey('henry'), value)
    const { profile } = await b.login('henry', pw)
    await b.logout()
    const upgraded = await eventually(async () => {
      const r = await c.peer.records.get<AccountPayload>(userKey('henry'))
      return r?.record.seq === 2 && r
    })
    expect(upgraded.payload.secretKeys.kdf).toBe('argon2id')
    expect(upgraded.payload.work).toEqual(expect.any(Number))
    expect(await bcrypt.compare(pw, upgraded.payload.passwordHash)).toBe(false)
    const again = await c.login('henry', pw)
    expect(again.profile.keyId).toBe(profile.keyId)
    await c.logout()
  })
})
