/**
 * Fixtures for the conferences' unit tests: real accounts, keys, envelopes and signed
 * records from @conf-chat/protocol, and every component in memory: a record store that
 * applies the storing peers' update rule (the owner's seq must rise), a local store, a
 * private state, a history, friends, a directory of profiles, presence, and a dispatch
 * that records each envelope. `deliver` hands recorded envelopes to their recipients'
 * `receive`, as the session does after its checks; no network.
 */
import { UnknownRecordError } from '../../../src/network/records/index.js'
import { defaultLogger } from '@libp2p/logger'
import {
  bytesEqual, checkUpdate, emptyPrivateState, generateAccountKeys, keyIdOf, verifyRecordValue,
  type AccountKeys, type Envelope, type FriendEntry, type HistoryEntry, type PrivateState, type VerifiedRecord
} from '@conf-chat/protocol'
import { Conferences, type ConferencesComponents, type ConferenceEvents } from '../../../src/chat/conferences/index.js'
import type { EnvelopeContext, Session, UserProfile } from '../../../src/account/index.js'
import type { Delivery } from '../../../src/delivery/index.js'
import { UnknownUserError } from '../../../src/errors.js'

/** A fixed start time (ms since epoch); each user's clock starts here and moves only when a test moves it. */
export const T0 = 1_750_000_000_000

export interface TestAccount extends UserProfile {
  keys: AccountKeys
}

export function account (username: string): TestAccount {
  const keys = generateAccountKeys()
  return { username, fullName: username, keyId: keyIdOf(keys.signPublic), signPublic: keys.signPublic, boxPublic: keys.boxPublic, keys }
}

/** The DHT's signed records: kept only if they verify and raise the owner's seq (as every storing peer checks). */
export class MemoryRecords {
  readonly stored = new Map<string, VerifiedRecord>()
  /** Keys read, in order. */
  readonly reads: string[] = []

  /** Reads cannot tell (as RecordStore.get throws UnknownRecordError on a slow network). */
  unknown = false
  /** While set, writes wait for it (a DHT whose writes stall). */
  held?: Promise<void>

  async get<P = unknown> (key: string): Promise<VerifiedRecord<P> | undefined> {
    this.reads.push(key)
    if (this.unknown) throw new UnknownRecordError(key, 'no answer')
    return this.stored.get(key) as VerifiedRecord<P> | undefined
  }

  async put (key: string, value: Uint8Array): Promise<{ replicas: number, refused: number }> {
    await this.held
    const incoming = verifyRecordValue(key, value)
    checkUpdate(this.stored.get(key), incoming)
    this.stored.set(key, incoming)
    return { replicas: 1, refused: 0 }
  }
}

export class MemoryLocal {
  readonly values = new Map<string, unknown>()
  async get<T = unknown> (key: string): Promise<T | undefined> { return this.values.get(key) as T | undefined }
  async put (key: string, value: unknown): Promise<void> { this.values.set(key, value) }
}

/** The private state: changes apply at once, as PrivateStateStore's do. */
export class MemoryState {
  state: PrivateState = emptyPrivateState()
  updates = 0
  async update (mutate: (s: PrivateState) => void): Promise<boolean> {
    mutate(this.state)
    this.updates++
    return true
  }
}

export class MemoryHistory {
  readonly conversations = new Map<string, HistoryEntry[]>()
  /** True once the session is ending: appends keep nothing for the pages. */
  closing = false
  /** When set, every append waits for it (and fails if it rejects). */
  gate?: Promise<void>
  /** Appends that have started. */
  appends = 0
  /** Appended as not shown yet (shown at the end of a mailbox read), with the conference told. */
  readonly unshown = new Map<string, unknown>()
  async append (conv: string, entry: HistoryEntry, _isNew?: boolean, unshown?: object): Promise<boolean> {
    if (this.closing) return false
    this.appends++
    if (unshown != null) this.unshown.set(entry.id, unshown)
    await this.gate
    const list = this.conversations.get(conv) ?? []
    if (!list.some(e => e.id === entry.id)) list.push(entry)
    this.conversations.set(conv, list)
    return true
  }

  async knows (conv: string, id: string): Promise<boolean> { return (this.conversations.get(conv) ?? []).some(e => e.id === id) }
  async has (conv: string, id: string): Promise<boolean> { return await this.knows(conv, id) }
  async list (conv: string): Promise<HistoryEntry[]> {
    return [...this.conversations.get(conv) ?? []].sort((a, b) => a.sentAt - b.sentAt || a.id.localeCompare(b.id))
  }
}

export class MemoryFriends {
  readonly entries = new Map<string, FriendEntry>()
  add (a: TestAccount, since = T0): void {
    this.entries.set(a.username, { username: a.username, keyId: a.keyId, signPublic: a.signPublic, boxPublic: a.boxPublic, since })
  }

  friend (username: string, signPublic?: Uint8Array): FriendEntry | undefined {
    const f = this.entries.get(username)
    return f != null && (signPublic == null || bytesEqual(f.signPublic, signPublic)) ? f : undefined
  }

  profileOf (f: FriendEntry): UserProfile {
    return { username: f.username, fullName: f.username, keyId: f.keyId, signPublic: f.signPublic, boxPublic: f.boxPublic }
  }
}

export interface Emitted { type: keyof ConferenceEvents | 'messages:offline', detail: any }

/** One user's Conferences with its components in memory. */
export interface TestUser {
  account: TestAccount
  conferences: Conferences
  friends: MemoryFriends
  state: MemoryState
  history: MemoryHistory
  local: MemoryLocal
  /** Envelopes dispatched, in order. */
  sent: Envelope[]
  /** The seed of the mailbox writer key each envelope was dispatched with (SendOptions.mailboxWriter), by envelope id. */
  writers: Map<string, Uint8Array>
  /** Events emitted, in order. */
  events: Emitted[]
  /** Key ids reported online by presence. */
  online: Set<string>
  clock: { now: number }
  /** The events of one type. */
  emitted: <K extends Emitted['type']>(type: K) => any[]
}

export interface TestWorld {
  records: MemoryRecords
  /** Every registered account by name (profile lookups). */
  directory: Map<string, TestAccount>
  user: (username: string, components?: Partial<ConferencesComponents>) => TestUser
}

export function world (): TestWorld {
  const records = new MemoryRecords()
  const directory = new Map<string, TestAccount>()
  return {
    records,
    directory,
    user (username, overrides = {}) {
      const a = account(username)
      directory.set(username, a)
      const u: Omit<TestUser, 'conferences'> = {
        account: a,
        friends: new MemoryFriends(),
        state: new MemoryState(),
        history: new MemoryHistory(),
        local: new MemoryLocal(),
        sent: [],
        writers: new Map(),
        events: [],
        online: new Set(),
        clock: { now: T0 },
        emitted: type => u.events.filter(e => e.type === type).map(e => e.detail)
      }
      const components: ConferencesComponents = {
        me: { username, keyId: a.keyId },
        keys: a.keys,
        state: u.state,
        history: u.history,
        records: records as unknown as ConferencesComponents['records'],
        local: u.local as unknown as ConferencesComponents['local'],
        friends: u.friends,
        profile: async name => {
          const p = directory.get(name)
          if (p == null) throw new UnknownUserError(name)
          return p
        },
        presenceOf: async keyId => u.online.has(keyId) ? { online: true, peerId: 'p', addrs: [], updatedAt: u.clock.now } : undefined,
        dispatch: async (env: Envelope, options): Promise<Delivery> => {
          u.sent.push(env)
          if (options?.mailboxWriter != null) u.writers.set(env.id, options.mailboxWriter)
          return { id: env.id, status: 'delivered', where: 'live' }
        },
        emit: (type, detail) => { u.events.push({ type, detail }) },
        logger: defaultLogger(),
        now: () => u.clock.now,
        ...overrides
      }
      return Object.assign(u, { conferences: new Conferences(components) })
    }
  }
}

/** Make `a` and `b` friends of each other. */
export function befriend (a: TestUser, b: TestUser): void {
  a.friends.add(b.account)
  b.friends.add(a.account)
}

export function context (to: TestUser, sender: TestAccount, live = true): EnvelopeContext {
  return { session: { account: to.account, since: T0 } as unknown as Session, sender, live }
}

/**
 * Hand the envelopes `from` dispatched since `since` (an index into `from.sent`) that are
 * addressed to `to` to its `receive`. Returns what each one did: 'ok' or the error.
 */
export async function deliver (from: TestUser, to: TestUser, opts: { since?: number, live?: boolean, kind?: string } = {}): Promise<Array<'ok' | Error>> {
  const out: Array<'ok' | Error> = []
  for (const env of from.sent.slice(opts.since ?? 0)) {
    if (env.toKeyId !== to.account.keyId || (opts.kind != null && env.kind !== opts.kind)) continue
    try {
      await to.conferences.receive(env, context(to, from.account, opts.live ?? true))
      out.push('ok')
    } catch (err: any) {
      out.push(err)
    }
  }
  return out
}

/** The recipients of the envelopes of `kind` a user dispatched since `since`. */
export function recipientsOf (u: TestUser, kind: string, since = 0): string[] {
  return u.sent.slice(since).filter(e => e.kind === kind).map(e => e.to).sort()
}
