/**
 * Fixtures for the set store's unit tests: SetStores on MemoryDatastores in one process,
 * joined by a fake network whose streams are in-memory stream pairs from @libp2p/utils
 * (so every request goes through the real /conf-chat/set/1.0.0 handler), a stub DHT
 * that names every server as a closest peer, and a clock the test moves by hand.
 */
import { MemoryDatastore } from 'datastore-core'
import { streamPair, lpStream } from '@libp2p/utils'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { defaultLogger } from '@libp2p/logger'
import {
  MAX_SET_FRAME_BYTES, KEY_ID_PATTERN, InvalidSetKeyError, InvalidSetItemError, RemoveNotAuthorizedError,
  keyIdOf, createSetItem, encodeSetMessage, decodeSetResponse,
  type AccountKeys, type SetItem, type SetNamespaceRules, type SetRequest, type SetResponse
} from '@conf-chat/protocol'
import { SetStore, type SetStoreComponents, type SetStoreInit } from '../../../src/network/sets/index.js'
import type { AbortOptions, Connection, PeerId, Stream, StreamHandler } from '@libp2p/interface'
import type { Key, KeyQuery, Pair, Query } from 'interface-datastore'

/**
 * A MemoryDatastore that yields keys in order, as LevelDB does: holders page through a
 * set in id order and rely on it (a plain MemoryDatastore yields them as inserted).
 */
export class OrderedMemoryDatastore extends MemoryDatastore {
  override * _all (q: Query, options?: AbortOptions): Generator<Pair> {
    yield * [...super._all(q, options) as Generator<Pair>].sort((a, b) => compareKeys(a.key, b.key))
  }

  override * _allKeys (q: KeyQuery, options?: AbortOptions): Generator<Key> {
    yield * [...super._allKeys(q, options) as Generator<Key>].sort(compareKeys)
  }
}

const compareKeys = (a: Key, b: Key): number => a.toString() < b.toString() ? -1 : a.toString() > b.toString() ? 1 : 0

/** A clock the test moves by hand. */
export class Clock {
  constructor (public ms = Date.parse('2025-01-01T00:00:00Z')) {}
  readonly now = (): number => this.ms
  advance (ms: number): void { this.ms += ms }
}

/** `/cc-test/<owner keyId>`: items whose data starts with "bad" are invalid; only the owner removes. */
export const TEST_NAMESPACE = 'cc-test'
export const testRules: SetNamespaceRules = {
  checkKey: parts => {
    if (parts.length !== 1 || !KEY_ID_PATTERN.test(parts[0] ?? '')) throw new InvalidSetKeyError('a test key is /cc-test/<keyId>')
  },
  validateItem: (_setKey, item) => {
    if (new TextDecoder().decode(item.data).startsWith('bad')) throw new InvalidSetItemError('bad item')
  },
  authorizeRemove: (setKey, _ids, auth) => {
    if (keyIdOf(auth.pub) !== setKey.split('/')[2]) throw new RemoveNotAuthorizedError('only the owner removes')
  }
}

export const testSetKey = (owner: Pick<AccountKeys, 'signPublic'>): string => `/${TEST_NAMESPACE}/${keyIdOf(owner.signPublic)}`

/** An item with `text` as its data, made at the clock's time. */
export const textItem = (clock: Clock, text: string, id?: string): SetItem =>
  createSetItem(new TextEncoder().encode(text), { now: clock.now(), ...(id != null ? { id } : {}) })

export const textOf = (item: SetItem): string => new TextDecoder().decode(item.data)

export interface TestPeer {
  id: PeerId
  store: SetStore
  datastore: OrderedMemoryDatastore
  /** A DHT server (holds sets) or a client. */
  server: boolean
}

export interface PeerOptions {
  /** @default true */
  server?: boolean
  init?: SetStoreInit
  /** What the peer's routing table tells of who holds a key. @default none: every set is taken, every peer a holder */
  responsibility?: SetStoreComponents['responsibility']
}

const BASE_INIT: SetStoreInit = {
  setReplicas: 3,
  setMaintenanceIntervalMs: 0,
  setRetryDelayMs: 10,
  setWelcomeDelayMs: 0,
  setNamespaces: { [TEST_NAMESPACE]: testRules }
}

/**
 * Peers that reach each other by in-memory streams. `dials` logs every dial a client (a
 * peer that is no server: the reader or writer under test) makes, by target; `failNext`
 * makes the next such dials to a peer fail (a busy or unreachable holder). Holders' dials
 * to each other (hand-off, taking removals) are neither logged nor failed; `failAfter`
 * lets a peer answer a number of dials, then fails the rest. `hanging` peers
 * take the stream but never answer; `lookups` counts DHT lookups.
 */
export class TestNet {
  readonly clock = new Clock()
  readonly peers: TestPeer[] = []
  readonly dials: string[] = []
  /** Dials servers make to each other (hand-off, welcomes). */
  readonly serverDials: Array<{ from: string, to: string }> = []
  /** DHT lookups (getClosestPeers) made, by the peer that made them */
  readonly lookups = new Map<string, number>()
  readonly failNext = new Map<string, number>()
  /** Peers whose client dials succeed this many more times, then all fail (a holder that stalls mid-read). */
  readonly failAfter = new Map<string, number>()
  readonly hanging = new Set<string>()
  private readonly handlers = new Map<string, StreamHandler>()

  async peer (options: PeerOptions = {}): Promise<TestPeer> {
    const id = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    const server = options.server ?? true
    const datastore = new OrderedMemoryDatastore()
    const net = this
    const components: SetStoreComponents = {
      peerId: id,
      datastore,
      dht: {
        getMode: () => server ? 'server' : 'client',
        getClosestPeers: async function * () {
          net.lookups.set(id.toString(), (net.lookups.get(id.toString()) ?? 0) + 1)
          for (const p of net.peers) {
            if (p.server && !p.id.equals(id)) yield { name: 'FINAL_PEER', type: 2, from: p.id, peer: { id: p.id, multiaddrs: [] }, path: { index: 0, queued: 0, running: 0, total: 1 } }
          }
        } as unknown as SetStoreComponents['dht']['getClosestPeers']
      },
      network: {
        handle: async (_protocol, handler) => { this.handlers.set(id.toString(), handler) },
        unhandle: async () => { this.handlers.delete(id.toString()) },
        dialProtocol: (async (to: PeerId, _protocol: string, opts: { signal?: AbortSignal } = {}) => await this.dial(id, to, opts)) as unknown as SetStoreComponents['network']['dialProtocol'],
        getConnections: () => []
      },
      isDhtServer: () => false,
      logger: defaultLogger(),
      now: this.clock.now,
      responsibility: options.responsibility
    }
    const store = new SetStore(components, { ...BASE_INIT, ...options.init, setNamespaces: { ...BASE_INIT.setNamespaces, ...options.init?.setNamespaces } })
    await store.start()
    const peer = { id, store, datastore, server }
    this.peers.push(peer)
    return peer
  }

  /** `n` servers with the same init. */
  async servers (n: number, init?: SetStoreInit): Promise<TestPeer[]> {
    const out: TestPeer[] = []
    for (let i = 0; i < n; i++) out.push(await this.peer({ init }))
    return out
  }

  dialsTo (peer: TestPeer): number {
    return this.dials.filter(d => d === peer.id.toString()).length
  }

  async stop (): Promise<void> {
    await Promise.all(this.peers.map(async p => { await p.store.stop() }))
  }

  private async dial (from: PeerId, to: PeerId, options: { signal?: AbortSignal }): Promise<Stream> {
    options.signal?.throwIfAborted()
    const key = to.toString()
    const byClient = this.peers.find(p => p.id.equals(from))?.server !== true
    if (byClient) this.dials.push(key)
    else this.serverDials.push({ from: from.toString(), to: key })
    const fails = byClient ? this.failNext.get(key) ?? 0 : 0
    if (fails > 0) {
      this.failNext.set(key, fails - 1)
      throw Object.assign(new Error('the holder did not answer'), { name: 'DialError' })
    }
    const left = byClient ? this.failAfter.get(key) : undefined
    if (left != null) {
      if (left <= 0) throw Object.assign(new Error('the holder did not answer'), { name: 'DialError' })
      this.failAfter.set(key, left - 1)
    }
    const handler = this.handlers.get(key)
    if (handler == null) throw Object.assign(new Error('protocol not supported'), { name: 'UnsupportedProtocolError' })
    const [outbound, inbound] = await streamPair()
    if (!this.hanging.has(key)) void handler(inbound, { remotePeer: from } as unknown as Connection)
    return outbound
  }
}

/** A request frame sent by hand to a holder's stream handler; its decoded response. */
export async function rawRequest (holder: TestPeer, frame: Uint8Array | SetRequest, from?: PeerId): Promise<SetResponse> {
  const [outbound, inbound] = await streamPair()
  void holder.store.onStream(inbound, { remotePeer: from ?? holder.id } as unknown as Connection)
  const signal = AbortSignal.timeout(5_000)
  const lp = lpStream(outbound, { maxDataLength: MAX_SET_FRAME_BYTES })
  await lp.write(frame instanceof Uint8Array ? frame : encodeSetMessage(frame), { signal })
  const res = decodeSetResponse((await lp.read({ signal })).subarray())
  await outbound.close({ signal })
  return res
}
