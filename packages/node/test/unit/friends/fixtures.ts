/**
 * In-memory stand-ins for the chat layer's unit tests: users with real account keys,
 * signed and sealed envelopes between them, a private-state store, a recording deliver.
 */
import {
  createEnvelope, emptyPrivateState, generateAccountKeys, keyIdOf,
  type AccountKeys, type Envelope, type PrivateState
} from '@conf-chat/protocol'
import type { EnvelopeContext, Session, StateMutation, UserProfile } from '../../../src/account/index.js'
import type { Delivery } from '../../../src/delivery/index.js'
import { UnknownUserError } from '../../../src/errors.js'

export interface TestUser {
  username: string
  keys: AccountKeys
  keyId: string
  profile: UserProfile
}

export function user (username: string): TestUser {
  const keys = generateAccountKeys()
  const keyId = keyIdOf(keys.signPublic)
  return { username, keys, keyId, profile: { username, fullName: `Full ${username}`, keyId, signPublic: keys.signPublic, boxPublic: keys.boxPublic } }
}

/** An envelope from `from` to `to`, sent at `sentAt` (its id sorts by that time). */
export function envelope (kind: string, content: unknown, from: TestUser, to: TestUser, sentAt: number): Envelope {
  return createEnvelope(kind, content, { username: from.username, keys: from.keys }, to.profile, sentAt)
}

/** What a handler is told about an envelope from `from`. */
export function contextFrom (from: TestUser, live = true): EnvelopeContext {
  return { session: {} as unknown as Session, sender: from.profile, live }
}

/** A private-state store that applies each change to one in-memory state (at once, as PrivateStateStore does). */
export class MemoryState {
  state: PrivateState = emptyPrivateState()
  updates = 0
  /** While set, a change's write (what `update` resolves on) waits for it: a DHT whose writes stall. */
  held?: Promise<void>
  async update (mutate: StateMutation): Promise<boolean> {
    mutate(this.state)
    this.updates++
    await this.held
    return true
  }
}

export interface Delivered {
  kind: string
  content: unknown
  to: string
  signal?: AbortSignal
}

/** A deliver component that records what it is given. */
export function recordingDeliver (): { delivered: Delivered[], deliver: (kind: string, content: unknown, to: UserProfile, options?: { signal?: AbortSignal }) => Promise<Delivery> } {
  const delivered: Delivered[] = []
  let n = 0
  return {
    delivered,
    deliver: async (kind, content, to, options) => {
      delivered.push({ kind, content, to: to.username, ...(options?.signal != null ? { signal: options.signal } : {}) })
      return { id: `d${++n}`, status: 'delivered', where: 'live' }
    }
  }
}

/** A profile lookup over known users; others are unknown. */
export function profiles (...users: TestUser[]): (username: string) => Promise<UserProfile> {
  return async username => {
    const u = users.find(x => x.username === username)
    if (u == null) throw new UnknownUserError(username)
    return u.profile
  }
}

export interface Emitted { type: string, detail: unknown }

export function recordingEmit (): { events: Emitted[], emit: (type: any, detail: any) => void } {
  const events: Emitted[] = []
  return { events, emit: (type, detail) => { events.push({ type, detail }) } }
}

/** A promise with its resolve, for a stub that waits until the test lets it go. */
export function deferred<T = void> (): { promise: Promise<T>, resolve: (value: T) => void } {
  let resolve!: (value: T) => void
  const promise = new Promise<T>(r => { resolve = r })
  return { promise, resolve }
}
