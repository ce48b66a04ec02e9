/**
 * The signed record store on real libp2p nodes (loopback TCP): storing peers refuse
 * forged, oversized, malformed, wrong-owner, stale and name-stealing records; readers
 * ignore bad replicas; first come, first served, and released names can be taken.
 *
 * The attacker is a real libp2p node in the same DHT whose validators let it keep
 * whatever it likes and refuse every update and correction: it serves bad replicas.
 * It also sends PUT_VALUE to one chosen store at a time: a DHT put reaches the closest
 * peers its lookup found, which right after a join need not be every peer, so claims
 * about every store are checked store by store.
 */
import { describe, it, expect, beforeAll, afterAll, afterEach, vi } from 'vitest'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { Libp2pRecord } from '@libp2p/record'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { generateKeyPair } from '@libp2p/crypto/keys'
import * as cborg from 'cborg'
import { createLibp2p, type Libp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { kadDHT, passthroughMapper, type KadDHT } from '@libp2p/kad-dht'
import { MemoryDatastore } from 'datastore-core'
import { Key } from 'interface-datastore'
import { fromString as bytesFromString, toString as bytesToString } from 'uint8arrays'
import { multiaddr } from '@multiformats/multiaddr'
import {
  generateAccountKeys, keyIdOf, createSignedRecord, encodeSignedRecord, presenceKey, userKey,
  NAMESPACES, MAX_RECORD_BYTES
} from '@conf-chat/protocol'
import { DHT_PROTOCOL, DHT_RECORD_PREFIX, ChatDatastore, RecordStore, type ChatPeer } from '@conf-chat/node/network'
import { startNetwork, addrOf, tempDir, type TestNetwork } from './helpers/network.js'
import { sendPut, presence, signed } from './helpers/records.js'

/** A datastore that remembers which DHT records it was asked for. */
class WatchedDatastore extends MemoryDatastore {
  readonly reads = new Set<string>()
  override get (key: Key, options?: any): any {
    this.reads.add(key.toString())
    return super.get(key, options)
  }
}

type Attacker = Libp2p<{ dht: KadDHT }> & { watched: WatchedDatastore }

async function startAttacker (bootstrap: string): Promise<Attacker> {
  const refuseAll: Record<string, () => never> = {}
  const pickFirst: Record<string, () => number> = {}
  for (const ns of Object.keys(NAMESPACES)) {
    refuseAll[ns] = () => { throw new Error('the attacker keeps its own copy') }
    pickFirst[ns] = () => 0
  }
  const watched = new WatchedDatastore()
  const node = await createLibp2p({
    datastore: watched,
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionManager: { inboundConnectionThreshold: 1000 },
    services: {
      identify: identify(),
      ping: ping(),
      dht: kadDHT({
        protocol: DHT_PROTOCOL,
        clientMode: false,
        peerInfoMapper: passthroughMapper,
        validators: refuseAll,
        selectors: pickFirst,
        initialQuerySelfInterval: 0
      })
    }
  })
  const attacker = Object.assign(node, { watched })
  try {
    await node.dial(multiaddr(bootstrap), { signal: AbortSignal.timeout(10_000) })
    for await (const _ of node.services.dht.getClosestPeers(node.peerId.toMultihash().bytes, { signal: AbortSignal.timeout(10_000) })) { /* join */ }
  } catch (err) {
    await node.stop()
    throw err
  }
  return attacker
}

/** Put through the attacker's DHT (its own copy is stored unchecked): counts acks and refusals. */
async function attackerPut (attacker: Attacker, key: string, value: Uint8Array): Promise<{ stored: number, refused: number }> {
  const result = { stored: 0, refused: 0 }
  const sent = new Set<string>()
  for await (const ev of attacker.services.dht.put(bytesFromString(key), value, { signal: AbortSignal.timeout(20_000) })) {
    if (ev.name === 'SEND_QUERY' && ev.messageName === 'PUT_VALUE') sent.add(ev.to.toString())
    else if (ev.name === 'PEER_RESPONSE' && ev.messageName === 'PUT_VALUE' && sent.delete(ev.from.toString())) result.stored++
    else if (ev.name === 'QUERY_ERROR' && sent.delete(ev.from.toString())) result.refused++
  }
  return result
}

function dsKeyOf (key: string): string {
  return new Key(`${DHT_RECORD_PREFIX}/${bytesToString(bytesFromString(key), 'base32')}`, false).toString()
}

const account = (username: string, fullName = 'Alice A.'): object => ({
  type: 'account',
  username,
  fullName,
  boxPublic: new Uint8Array(32).fill(1),
  passwordHash: '$2b$10$' + 'b'.repeat(53),
  secretKeys: { kdf: 'scrypt', N: 1024, r: 8, p: 1, salt: new Uint8Array(16), nonce: new Uint8Array(24), ciphertext: new Uint8Array(80) },
  // any number proves the name under CONF_CHAT_NAME_WORK_BITS=0, as the tests run
  work: 0,
  createdAt: 1,
  updatedAt: 1
})


describe('the record store on a network of a supernode, 6 peers and an attacker', () => {
  let net: TestNetwork
  let attacker: Attacker | undefined
  let stores: ChatPeer[]
  /** A peer that joined through the attacker: the attacker is in its routing table, so its reads ask it. */
  let reader: ChatPeer
  const alice = generateAccountKeys()
  const mallory = generateAccountKeys()
  const alicePresence = presenceKey(keyIdOf(alice.signPublic))

  beforeAll(async () => {
    net = await startNetwork(5)
    attacker = await startAttacker(addrOf(net.supernode))
    reader = await net.addPeer({ bootstrap: [attacker.getMultiaddrs()[0]!.toString()] })
    stores = [net.supernode, ...net.peers]
  }, 90_000)

  afterAll(async () => {
    await attacker?.stop()
    await net?.cleanup()
  }, 60_000)

  /** Every honest store: what it holds for `key`, raw. */
  async function held (key: string): Promise<Array<Uint8Array | undefined>> {
    return await Promise.all(stores.map(async p => await p.records.storedValue(key)))
  }

  /** PUT_VALUE from the attacker to every honest store, one by one: what each answered. */
  async function sendToEveryStore (key: string, value: Uint8Array): Promise<string[]> {
    const answers: string[] = []
    for (const store of stores) answers.push(await sendPut(attacker!, store.peerId, key, value))
    return answers
  }

  const all = (answer: string): string[] => stores.map(() => answer)
  const holdsEverywhere = async (key: string, value: Uint8Array): Promise<boolean> =>
    (await held(key)).every(v => v != null && Buffer.compare(v, value) === 0)

  it('refuses forged, oversized, malformed and wrong-owner records on every store', async () => {
    const good = createSignedRecord(alicePresence, 1, presence('alice'), alice)
    const flipped = good.sig.slice()
    flipped[10]! ^= 0x40
    const bad: Array<[string, string, Uint8Array]> = [
      ['a bad signature', alicePresence, encodeSignedRecord({ ...good, sig: flipped })],
      ["mallory's signature under alice's public key", alicePresence,
        encodeSignedRecord({ ...createSignedRecord(alicePresence, 1, presence('alice'), mallory), pub: alice.signPublic })],
      ["alice's key signed by mallory (wrong owner)", alicePresence, signed(alicePresence, 1, presence('alice'), mallory)],
      ['a record signed for another key', alicePresence, signed(presenceKey(keyIdOf(mallory.signPublic)), 1, presence('alice'), alice)],
      ['an oversized record', alicePresence, signed(alicePresence, 1, presence('alice', { peerId: 'x'.repeat(MAX_RECORD_BYTES) }), alice)],
      ['random bytes', alicePresence, new Uint8Array([0xde, 0xad, 0xbe, 0xef, 0x00])],
      ['CBOR that is not a record', alicePresence, cborg.encode({ v: 1, hello: 'world' })],
      ['a payload that breaks the schema', alicePresence, signed(alicePresence, 1, presence('alice', { status: 'away', admin: true }), alice)],
      ['a user record whose username differs from its key', userKey('alice'), signed(userKey('alice'), 1, account('bob'), alice)]
    ]
    for (const [what, key, value] of bad) {
      expect({ what, answers: await sendToEveryStore(key, value) }).toEqual({ what, answers: all('refused') })
      const viaDht = await attackerPut(attacker!, key, value)
      expect({ what, stored: viaDht.stored, refused: viaDht.refused > 0 }).toEqual({ what, stored: 0, refused: true })
      expect((await held(key)).every(v => v == null)).toBe(true)
    }
    // an honest peer does not even send a bad record
    await expect(net.peers[0]!.records.put(alicePresence, bad[0]![2])).rejects.toMatchObject({ name: 'InvalidRecordError' })
  })

  it('a reader ignores a forged replica: it finds nothing rather than the forgery', async () => {
    const key = presenceKey(keyIdOf(generateAccountKeys().signPublic))
    const forged = signed(key, 7, presence('eve'), mallory)
    expect(await attackerPut(attacker!, key, forged)).toMatchObject({ stored: 0 })
    attacker!.watched.reads.clear()
    // the honest stores answered that they hold nothing: absent, not a forgery and not unknown
    expect(await reader.records.getAll(key)).toMatchObject({ status: 'absent', best: undefined, all: [] })
    // the reader did ask the attacker, which holds the forgery
    expect(attacker!.watched.reads.has(dsKeyOf(key))).toBe(true)
  })

  it('accepts a higher seq from the owner everywhere, refuses a stale one, and a reader picks the newest over stale and forged replicas', async () => {
    const v1 = signed(alicePresence, 1, presence('alice', { updatedAt: 1 }), alice)
    const v2 = signed(alicePresence, 2, presence('alice', { updatedAt: 2 }), alice)
    const writer = net.peers[0]!
    expect((await writer.records.put(alicePresence, v1)).replicas).toBeGreaterThanOrEqual(1)
    expect(await sendToEveryStore(alicePresence, v1)).toEqual(all('stored'))
    // the attacker keeps seq 1 (its own copy) and refuses seq 2
    await attackerPut(attacker!, alicePresence, v1)

    expect((await writer.records.put(alicePresence, v2)).replicas).toBeGreaterThanOrEqual(1)
    expect(await sendToEveryStore(alicePresence, v2)).toEqual(all('stored'))
    expect(await holdsEverywhere(alicePresence, v2)).toBe(true)

    // a stale seq is refused by every store, whoever sends it
    expect(await sendToEveryStore(alicePresence, v1)).toEqual(all('refused'))
    await expect(writer.records.put(alicePresence, v1)).rejects.toMatchObject({ name: 'RecordConflictError' })
    const replayer = await net.addPeer()
    const replay = await replayer.records.put(alicePresence, v1)
    expect(replay).toMatchObject({ replicas: 0 })
    expect(replay.refused).toBeGreaterThanOrEqual(1)
    expect(await holdsEverywhere(alicePresence, v2)).toBe(true)

    // the reader gets the attacker's stale copy too and still picks seq 2; the attacker
    // refusing the correction does not turn the read into an error
    const got = await reader.records.getAll(alicePresence)
    expect(got.all.some(r => r.record.seq === 1)).toBe(true)
    expect(got.best?.record.seq).toBe(2)
    expect(Buffer.compare(got.best!.value, v2)).toBe(0)
  })

  it('a record put again within a minute goes to the holders that stored it, with no lookup, and readers get it', async () => {
    const carol = generateAccountKeys()
    const key = presenceKey(keyIdOf(carol.signPublic))
    const writer = net.peers[1]!
    const first = await writer.records.put(key, signed(key, 1, presence('carol', { updatedAt: 1 }), carol))
    expect(first.replicas).toBeGreaterThanOrEqual(3)
    await writer.records.settled()
    // a put's lookup: its own closest-peers query (put-targets.ts), or kad-dht's put
    const lookups = [vi.spyOn(writer.libp2p.services.dht, 'getClosestPeers'), vi.spyOn(writer.libp2p.services.dht, 'put')]
    const v2 = signed(key, 2, presence('carol', { updatedAt: 2 }), carol)
    try {
      const second = await writer.records.put(key, v2)
      expect(second.replicas).toBeGreaterThanOrEqual(3)
      await writer.records.settled()
      // (the peer's own lookups may run meanwhile: only this key's count)
      for (const lookup of lookups) expect(lookup.mock.calls.filter(([k]) => new TextDecoder().decode(k) === key)).toEqual([])
    } finally {
      for (const lookup of lookups) lookup.mockRestore()
    }
    const got = await reader.records.read(key)
    expect(got.best?.record.seq).toBe(2)
    expect(await holdsEverywhere(key, v2)).toBe(true)
  })

  it('first come, first served: a second key claiming a taken name is refused, a released name can be taken', async () => {
    const name = 'alice'
    const key = userKey(name)
    const aliceClaim = signed(key, 1, account(name), alice)
    const malloryClaim = signed(key, 5, account(name, 'Mallory'), mallory)
    const owner = net.peers[1]!
    expect((await owner.records.put(key, aliceClaim)).replicas).toBeGreaterThanOrEqual(1)
    expect(await sendToEveryStore(key, aliceClaim)).toEqual(all('stored'))

    // whatever its seq, another key's claim is refused by every store holding alice's;
    // a peer holding alice's does not even send it, one holding nothing sends it and is refused
    expect(await sendToEveryStore(key, malloryClaim)).toEqual(all('refused'))
    await expect(net.peers[2]!.records.put(key, malloryClaim)).rejects.toMatchObject({ name: 'RecordConflictError' })
    const thief = await net.addPeer()
    const stolen = await thief.records.put(key, malloryClaim)
    expect(stolen).toMatchObject({ replicas: 0 })
    expect(stolen.refused).toBeGreaterThanOrEqual(1)
    expect(await holdsEverywhere(key, aliceClaim)).toBe(true)
    expect(Buffer.compare((await reader.records.get(key))!.record.pub, alice.signPublic)).toBe(0)

    // alice releases the name (a signed tombstone); then mallory may take it
    const released = signed(key, 2, { type: 'released', username: name, updatedAt: 2 }, alice)
    expect((await owner.records.put(key, released)).replicas).toBeGreaterThanOrEqual(1)
    expect(await sendToEveryStore(key, released)).toEqual(all('stored'))
    expect((await thief.records.put(key, malloryClaim)).replicas).toBeGreaterThanOrEqual(1)
    expect(await sendToEveryStore(key, malloryClaim)).toEqual(all('stored'))
    expect(await holdsEverywhere(key, malloryClaim)).toBe(true)
    expect(Buffer.compare((await reader.records.get(key))!.record.pub, mallory.signPublic)).toBe(0)
  })
})

describe('the datastore write guard and expiry (one store, on disk)', () => {
  const alice0 = generateAccountKeys()
  const mallory0 = generateAccountKeys()
  let dir: string | undefined
  let datastore: ChatDatastore | undefined
  afterEach(async () => {
    await datastore?.close()
    if (dir != null) await rm(dir, { recursive: true, force: true })
    datastore = undefined
    dir = undefined
  })

  async function openStore (recordTtlMs: number): Promise<{ ds: ChatDatastore, store: RecordStore }> {
    dir = await tempDir()
    const ds = datastore = new ChatDatastore(join(dir, 'datastore'))
    await ds.open()
    // the guard and expiry only read and write the datastore: no DHT needed
    const store = new RecordStore({ dht: undefined as unknown as KadDHT, datastore: ds, peerId: peerIdFromPrivateKey(await generateKeyPair('Ed25519')) }, { recordTtlMs })
    ds.recordGuard = store.guard
    ds.recordExpired = store.isExpired
    return { ds, store }
  }

  const stored = (key: string, value: Uint8Array, receivedAt = new Date()): Uint8Array =>
    new Libp2pRecord(bytesFromString(key), value, receivedAt).serialize()

  it('two claims of one free name arriving at once: exactly one is stored, the other refused', async () => {
    const { ds, store } = await openStore(60_000)
    const key = userKey('race')
    const dsKey = new Key(dsKeyOf(key), false)
    const claims = [alice0, mallory0].map(k => signed(key, 1, account('race'), k))
    // before writes of one key were serialized, both passed the guard and the later one won silently
    const results = await Promise.allSettled(claims.map(async c => await ds.put(dsKey, stored(key, c))))
    expect(results.map(r => r.status).sort()).toEqual(['fulfilled', 'rejected'])
    const winner = claims[results.findIndex(r => r.status === 'fulfilled')]!
    expect(Buffer.compare((await store.storedValue(key))!, winner)).toBe(0)
    expect((results.find(r => r.status === 'rejected') as PromiseRejectedResult).reason).toMatchObject({ name: 'RecordConflictError' })
  })

  it('keeps peer store entries in memory, writes them on close, and lets a write win over a read in flight', async () => {
    const { ds } = await openStore(60_000)
    const [a, b, c] = ['/peers/a', '/peers/b', '/peers/c'].map(k => new Key(k, false))
    await ds.put(a!, Uint8Array.of(1))
    await ds.put(b!, Uint8Array.of(2))
    await ds.delete(b!)
    expect([...await ds.get(a!)]).toEqual([1])
    expect(await ds.has(b!)).toBe(false)
    // a query sees what is still only in memory
    const listed = []
    for await (const { key } of ds.query({ prefix: '/peers' })) listed.push(key.toString())
    expect(listed).toEqual(['/peers/a'])

    await ds.put(c!, Uint8Array.of(3))
    await ds.close()
    await ds.open()
    expect([...await ds.get(a!)]).toEqual([1])
    expect([...await ds.get(c!)]).toEqual([3])
    await expect(ds.get(b!)).rejects.toMatchObject({ name: 'NotFoundError' })

    // a read from disk that was overtaken by a write must not bring the old value back
    const reading = ds.get(a!)
    await ds.put(a!, Uint8Array.of(9))
    expect([...await reading]).toEqual([1])
    expect([...await ds.get(a!)]).toEqual([9])
    await ds.close()
    await ds.open()
    expect([...await ds.get(a!)]).toEqual([9])
  })

  it('an expired record is neither served nor blocks a new claim, and the sweep deletes it', async () => {
    const { ds, store } = await openStore(1_000)
    const key = userKey('old')
    const dsKey = new Key(dsKeyOf(key), false)
    const old = signed(key, 1, account('old'), alice0)
    await ds.put(dsKey, stored(key, old, new Date(Date.now() - 5_000)))
    await expect(ds.get(dsKey)).rejects.toMatchObject({ name: 'NotFoundError' })
    expect(await store.getLocal(key)).toBeUndefined()
    expect(await store.sweep()).toBe(1)
    expect(await ds.has(dsKey)).toBe(false)
    const fresh = signed(key, 1, account('old'), mallory0)
    await ds.put(dsKey, stored(key, fresh, new Date(Date.now() - 5_000)))
    const newer = signed(key, 1, account('old', 'Someone'), alice0)
    // expired: another key may claim it
    await ds.put(dsKey, stored(key, newer))
    expect(Buffer.compare((await store.getLocal(key))!.value, newer)).toBe(0)
  })
})
