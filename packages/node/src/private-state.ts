/**
 * The account's private state (`/cc-state/<keyId>`): friends, friend requests, history
 * page counts and (later) conferences, sealed to the owner and signed, with a rising
 * sequence number. Read at login on any peer, kept in memory, written on change.
 *
 * Changes apply in memory at once and are written in the background; a write that loses
 * to a newer record (another session of the account wrote one) reloads it and replays
 * the changes not yet written, so no change is lost and no newer state is overwritten.
 */
import { logger } from '@libp2p/logger'
import {
  createSignedRecord, encodeSignedRecord, stateKey, sealForOwner, openForOwner, privateStateSchema, emptyPrivateState,
  type AccountKeys, type PrivateState, type SealedPayload
} from '@conf-chat/protocol'
import type { RecordStore } from './record-store.js'

const log = logger('conf-chat:private-state')

/** How long to wait before writing again after a failed write. */
export const DEFAULT_STATE_RETRY_MS = 5_000

export interface PrivateStateInit {
  /** Wait before retrying a failed write of the private state. @default 5000 ms */
  stateRetryMs?: number
}

export interface StateOwner {
  keyId: string
  keys: AccountKeys
}

export type StateMutation = (state: PrivateState) => void

interface Waiter { version: number, resolve: (durable: boolean) => void }

export class PrivateStateStore {
  private readonly records: RecordStore
  private readonly owner: StateOwner
  private readonly retryMs: number
  private _state: PrivateState = emptyPrivateState()
  private seq = 0
  private version = 0
  private durableVersion = 0
  private pending: Array<{ version: number, mutate: StateMutation }> = []
  private waiters: Waiter[] = []
  private writing?: Promise<void>
  private retryTimer?: NodeJS.Timeout
  private closed = false

  constructor (records: RecordStore, owner: StateOwner, init: PrivateStateInit = {}) {
    this.records = records
    this.owner = owner
    this.retryMs = init.stateRetryMs ?? DEFAULT_STATE_RETRY_MS
  }

  /** The current state (with changes not yet written). Read only: change it with `update`. */
  get state (): PrivateState { return this._state }

  /** Read the newest state from the DHT; an account without one starts empty. */
  async load (options: { signal?: AbortSignal } = {}): Promise<void> {
    const found = await this.records.get<SealedPayload>(stateKey(this.owner.keyId), options)
    if (found == null) {
      log('no private state for %s yet', this.owner.keyId)
      return
    }
    this.seq = found.record.seq
    try {
      this._state = openForOwner(found.payload.sealed, this.owner.keys, privateStateSchema)
    } catch (err: any) {
      // unreadable by its own owner: nothing to keep; the next write (higher seq) replaces it
      log.error('private state of %s unreadable: %s', this.owner.keyId, err.message)
    }
  }

  /**
   * Change the state: applied in memory at once; resolves true once written to at least
   * one other peer, false if that failed for now (it is retried in the background).
   */
  async update (mutate: StateMutation): Promise<boolean> {
    mutate(this._state)
    const version = ++this.version
    this.pending.push({ version, mutate })
    const durable = new Promise<boolean>(resolve => { this.waiters.push({ version, resolve }) })
    this.startWriting()
    return await durable
  }

  /** Wait until every change is written, or `timeoutMs` passes. */
  async flush (timeoutMs: number): Promise<boolean> {
    if (this.durableVersion >= this.version) return true
    const durable = new Promise<boolean>(resolve => { this.waiters.push({ version: this.version, resolve }) })
    this.startWriting()
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<boolean>(resolve => { timer = setTimeout(() => { resolve(false) }, timeoutMs) })
    try {
      return await Promise.race([durable, timeout])
    } finally {
      clearTimeout(timer)
    }
  }

  /** Stop retrying (at logout, after `flush`). */
  close (): void {
    this.closed = true
    clearTimeout(this.retryTimer)
    this.settle(Infinity, false)
  }

  private startWriting (): void {
    if (this.writing != null || this.closed) return
    clearTimeout(this.retryTimer)
    this.writing = this.writeLoop()
      .catch(err => { log.error('private state write loop failed: %e', err) })
      .finally(() => { this.writing = undefined })
  }

  private async writeLoop (): Promise<void> {
    while (!this.closed && this.version > this.durableVersion) {
      const version = this.version
      const outcome = await this.write()
      if (outcome === 'written') {
        this.durableVersion = version
        this.pending = this.pending.filter(p => p.version > version)
        this.settle(version, true)
      } else if (outcome === 'conflict') {
        if (!await this.reloadAndReplay()) { this.failed(); return }
      } else {
        this.failed()
        return
      }
    }
  }

  private failed (): void {
    this.settle(Infinity, false)
    if (this.closed) return
    this.retryTimer = setTimeout(() => { this.startWriting() }, this.retryMs)
    this.retryTimer.unref()
  }

  private settle (upTo: number, durable: boolean): void {
    const done = this.waiters.filter(w => w.version <= upTo)
    this.waiters = this.waiters.filter(w => w.version > upTo)
    for (const w of done) w.resolve(durable)
  }

  private async write (): Promise<'written' | 'conflict' | 'failed'> {
    const key = stateKey(this.owner.keyId)
    const seq = this.seq + 1
    const payload: SealedPayload = { sealed: sealForOwner(this._state, this.owner.keys), updatedAt: Date.now() }
    try {
      const result = await this.records.put(key, encodeSignedRecord(createSignedRecord(key, seq, payload, this.owner.keys)))
      this.seq = seq
      if (result.replicas > 0) return 'written'
      return result.refused > 0 ? 'conflict' : 'failed'
    } catch (err: any) {
      // our own store holds a newer state than the one we loaded
      if (err.name === 'RecordConflictError') return 'conflict'
      log('private state write failed: %s', err.message)
      return 'failed'
    }
  }

  /** A newer state exists: take it and apply our unwritten changes on top. */
  private async reloadAndReplay (): Promise<boolean> {
    const found = await this.records.get<SealedPayload>(stateKey(this.owner.keyId))
    if (found == null || found.record.seq < this.seq) return false
    let base: PrivateState
    try {
      base = openForOwner(found.payload.sealed, this.owner.keys, privateStateSchema)
    } catch (err: any) {
      log.error('newer private state unreadable: %s', err.message)
      return false
    }
    for (const p of this.pending) p.mutate(base)
    this._state = base
    this.seq = found.record.seq
    log('private state: replayed %d changes on seq %d', this.pending.length, this.seq)
    return true
  }
}
