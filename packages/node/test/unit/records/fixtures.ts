/**
 * Fixtures for the record store's unit tests: real signed records, a stub DHT that
 * yields kad-dht's query events, and a local put that goes through the store's write
 * guard into a MemoryDatastore as kad-dht's own put does (datastore first, then peers).
 */
import { MemoryDatastore } from 'datastore-core'
import { Key } from 'interface-datastore'
import { Libp2pRecord } from '@libp2p/record'
import { EventTypes, MessageType, type QueryEvent } from '@libp2p/kad-dht'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { fromString as bytesFromString, toString as bytesToString } from 'uint8arrays'
import {
  createSignedRecord, encodeSignedRecord, keyIdOf, presenceKey, userKey, type AccountKeys
} from '@conf-chat/protocol'
import { defaultLogger } from '@libp2p/logger'
import { DHT_RECORD_PREFIX } from '../../../src/storage/index.js'
import { RecordStore, type RecordStoreInit, type RecordStoreComponents } from '../../../src/network/records/index.js'
import type { PeerId } from '@libp2p/interface'

export type SignKeys = Pick<AccountKeys, 'signPublic' | 'signSecret'>

// ---- signed records --------------------------------------------------------------

export const account = (username: string, fullName = `Full ${username}`): object => ({
  type: 'account',
  username,
  fullName,
  boxPublic: new Uint8Array(32).fill(7),
  passwordHash: '$2b$10$' + 'a'.repeat(53),
  secretKeys: { kdf: 'scrypt', N: 1024, r: 8, p: 1, salt: new Uint8Array(16), nonce: new Uint8Array(24), ciphertext: new Uint8Array(80) },
  // any number proves the name under CONF_CHAT_NAME_WORK_BITS=0, as the tests run
  work: 0,
  createdAt: 1,
  updatedAt: 1
})

export const released = (username: string): object => ({ type: 'released', username, updatedAt: 2 })

export const presence = (extra: object = {}): object =>
  ({ username: 'alice', status: 'online', peerId: '12D3KooWtest', addrs: [], expiresAt: Date.parse('2100-01-01'), updatedAt: 1, ...extra })

export const signed = (key: string, seq: number, payload: unknown, keys: SignKeys): Uint8Array =>
  encodeSignedRecord(createSignedRecord(key, seq, payload, keys))

/** A name claim (`/cc-user/<name>`) by `keys`. */
export const claim = (keys: SignKeys, name: string, seq = 1, payload: unknown = account(name)): Uint8Array =>
  signed(userKey(name), seq, payload, keys)

/** The presence key of `keys` and a presence record under it. */
export const presenceKeyOf = (keys: SignKeys): string => presenceKey(keyIdOf(keys.signPublic))
export const presenceOf = (keys: SignKeys, seq: number, extra: object = {}): Uint8Array =>
  signed(presenceKeyOf(keys), seq, presence({ updatedAt: seq, ...extra }), keys)

// ---- the datastore as kad-dht lays it out ----------------------------------------

/** Where kad-dht stores the record for `key` (its `bufferToRecordKey`). */
export const dsKeyOf = (key: string): Key =>
  new Key(`${DHT_RECORD_PREFIX}/${bytesToString(bytesFromString(key), 'base32')}`, false)

/** A record in kad-dht's stored form, received at `at` (ms). */
export const storedForm = (key: string, value: Uint8Array, at: number): Uint8Array =>
  new Libp2pRecord(bytesFromString(key), value, new Date(at)).serialize()

/** A clock the test moves by hand. */
export class Clock {
  constructor (public ms = Date.parse('2025-01-01T00:00:00Z')) {}
  readonly now = (): number => this.ms
  advance (ms: number): void { this.ms += ms }
}

export async function peerIds (n: number): Promise<PeerId[]> {
  return await Promise.all(Array.from({ length: n }, async () => peerIdFromPrivateKey(await generateKeyPair('Ed25519'))))
}

// ---- kad-dht's query events ------------------------------------------------------

const path = { index: 0, queued: 0, running: 0, total: 1 }

export const sendQuery = (to: PeerId, messageName: 'PUT_VALUE' | 'GET_VALUE'): QueryEvent =>
  ({ name: 'SEND_QUERY', type: EventTypes.SEND_QUERY, to, messageName, messageType: MessageType[messageName], path })

export const peerResponse = (from: PeerId, messageName: 'PUT_VALUE' | 'GET_VALUE', key: string, value?: Uint8Array): QueryEvent => ({
  name: 'PEER_RESPONSE',
  type: EventTypes.PEER_RESPONSE,
  from,
  messageName,
  messageType: MessageType[messageName],
  closer: [],
  providers: [],
  record: value == null ? undefined : { key: bytesFromString(key), value },
  path
})

export const queryError = (from: PeerId, error: Error): QueryEvent =>
  ({ name: 'QUERY_ERROR', type: EventTypes.QUERY_ERROR, from, error, path })

export const valueEvent = (from: PeerId, value: Uint8Array): QueryEvent =>
  ({ name: 'VALUE', type: EventTypes.VALUE, from, value, path })

export const namedError = (name: string, message = name): Error => Object.assign(new Error(message), { name })

// ---- the stub DHT ----------------------------------------------------------------

/** How one replica answers a PUT_VALUE. */
export type PutAnswer =
  /** stores it: echoes the record back */
  | { peer: PeerId, answer: 'stores' }
  /** answers with another value than ours (it kept its own) */
  | { peer: PeerId, answer: 'echoes', value: Uint8Array }
  /** its validator or write guard refused: the stream is reset */
  | { peer: PeerId, answer: 'refuses' }
  /** no answer within the query's time limit */
  | { peer: PeerId, answer: 'times-out' }
  /** never answers: the put hangs until its signal aborts */
  | { peer: PeerId, answer: 'hangs' }

export interface PutCall { key: string, value: Uint8Array, signal?: AbortSignal }
export interface GetCall { key: string, signal?: AbortSignal, yielded: number, ended: boolean }

/**
 * kad-dht's `put` and `get` as the record store sees them. `put` first writes our own
 * copy through `localPut` (kad-dht writes the datastore, where the write guard runs),
 * then yields SEND_QUERY and the replicas' answers. `get` yields one PEER_RESPONSE per
 * replica holding the key (in `held`), then throws `getError` if set.
 */
export class StubDht {
  readonly puts: PutCall[] = []
  readonly gets: GetCall[] = []
  putAnswers: PutAnswer[] = []
  /** Extra events yielded at the end of every put (e.g. from peers never asked). */
  extraPutEvents: QueryEvent[] = []
  /**
   * Per key: what each replica answers to GET_VALUE, in order (no value: it answers
   * without a record; `fails`: a QUERY_ERROR; `hangs`: no answer until the query's signal
   * aborts). Each is asked (SEND_QUERY) just before it answers.
   */
  readonly held = new Map<string, Array<{ from: PeerId, value?: Uint8Array, fails?: boolean, hangs?: boolean }>>()
  getError?: Error
  localPut?: (key: string, value: Uint8Array) => Promise<void>

  async * put (keyBytes: Uint8Array, value: Uint8Array, options: { signal?: AbortSignal } = {}): AsyncGenerator<QueryEvent> {
    const key = bytesToString(keyBytes)
    this.puts.push({ key, value, signal: options.signal })
    await this.localPut?.(key, value)
    for (const a of this.putAnswers) yield sendQuery(a.peer, 'PUT_VALUE')
    for (const a of this.putAnswers) {
      if (a.answer === 'stores') yield peerResponse(a.peer, 'PUT_VALUE', key, value)
      else if (a.answer === 'echoes') yield peerResponse(a.peer, 'PUT_VALUE', key, a.value)
      else if (a.answer === 'refuses') yield queryError(a.peer, namedError('StreamResetError', 'stream reset'))
      else if (a.answer === 'times-out') yield queryError(a.peer, namedError('TimeoutError'))
      else await untilAborted(options.signal)
    }
    yield * this.extraPutEvents
  }

  async * get (keyBytes: Uint8Array, options: { signal?: AbortSignal } = {}): AsyncGenerator<QueryEvent> {
    const key = bytesToString(keyBytes)
    const call: GetCall = { key, signal: options.signal, yielded: 0, ended: false }
    this.gets.push(call)
    try {
      for (const { from, value, fails, hangs } of this.held.get(key) ?? []) {
        yield sendQuery(from, 'GET_VALUE')
        // kad-dht ends an aborted query quietly
        if (hangs === true) { await untilAborted(options.signal).catch(() => {}); return }
        call.yielded++
        yield fails === true ? queryError(from, namedError('TimeoutError')) : peerResponse(from, 'GET_VALUE', key, value)
      }
      if (this.getError != null) throw this.getError
    } finally {
      call.ended = true
    }
  }
}

/** Rejects with the signal's reason once it aborts (never, without a signal). */
async function untilAborted (signal?: AbortSignal): Promise<never> {
  return await new Promise<never>((_resolve, reject) => {
    if (signal == null) return
    if (signal.aborted) { reject(signal.reason); return }
    signal.addEventListener('abort', () => { reject(signal.reason) }, { once: true })
  })
}

/** A correction sent to a holder (see RecordStoreComponents.correct). */
export interface CorrectionCall { to: PeerId, key: string, value: Uint8Array }

export interface TestStore {
  store: RecordStore
  dht: StubDht
  datastore: MemoryDatastore
  clock: Clock
  /** Corrections the store sent, in order. */
  corrections: CorrectionCall[]
  /** Resolves once `n` corrections were sent (they run in the background). */
  correctionsSent: (n: number) => Promise<void>
}

/**
 * A record store over a stub DHT and a MemoryDatastore, wired as ChatPeer wires it: our
 * own puts reach the datastore through the store's write guard, stamped by the clock.
 */
export function testStore (init: RecordStoreInit = {}, components: Pick<RecordStoreComponents, 'putTo' | 'findTargets' | 'peerId'> = {}): TestStore {
  const dht = new StubDht()
  const datastore = new MemoryDatastore()
  const clock = new Clock()
  const corrections: CorrectionCall[] = []
  const waiters: Array<{ n: number, resolve: () => void }> = []
  const correct = async (to: PeerId, key: string, value: Uint8Array): Promise<boolean> => {
    corrections.push({ to, key, value })
    for (const w of waiters.filter(w => corrections.length >= w.n)) w.resolve()
    return true
  }
  const correctionsSent = async (n: number): Promise<void> => {
    if (corrections.length >= n) return
    await new Promise<void>(resolve => { waiters.push({ n, resolve }) })
  }
  const store = new RecordStore({ dht, datastore, now: clock.now, logger: defaultLogger(), correct, ...components }, init)
  dht.localPut = async (key, value) => {
    const raw = storedForm(key, value, clock.now())
    await store.guard(dsKeyOf(key), raw)
    await datastore.put(dsKeyOf(key), raw)
  }
  return { store, dht, datastore, clock, corrections, correctionsSent }
}
