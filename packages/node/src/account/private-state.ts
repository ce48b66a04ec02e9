/**
 * The account's private state (`/cc-state/<keyId>`): friends, friend requests, history
 * page counts and (later) conferences, sealed to the owner and signed, with a rising
 * sequence number. Read at login on any peer, kept in memory, written on change.
 *
 * Changes apply in memory at once and are written in the background. Before each write
 * the current record is read: if another session of the account wrote a newer one (the
 * overlap of a login elsewhere and its takeover), it is taken and the changes not yet
 * written are replayed on it; a write refused as stale does the same. So no newer state
 * is overwritten, and no change is lost unless two sessions write within one round trip.
 */
import type { AbortOptions, ComponentLogger, Logger } from '@libp2p/interface'
import {
  createSignedRecord, encodeSignedRecord, stateKey, sealForOwner, openForOwner, privateStateSchema, emptyPrivateState,
  type AccountKeys, type PrivateState, type StatePayload, type VerifiedRecord
} from '@conf-chat/protocol'
import type { RecordStore } from '../network/index.js'
import { delay, within } from '../utils/index.js'
import { nextSlot, paginate, sealedStateOf, writePages } from './state-pages.js'

/** How long to wait before writing again after a failed write. */
export const DEFAULT_STATE_RETRY_MS = 5_000

/** Failed writes in a row before the user is told (and told again after as many more). */
export const UNSAVED_AFTER_FAILURES = 3

export interface PrivateStateInit {
  /** Wait before retrying a failed write of the private state. @default 5000 ms */
  stateRetryMs?: number
  /** Most records (head and pages) a state is written in; tests set fewer. @default MAX_STATE_PAGES */
  maxStatePages?: number
}

export interface StateOwner {
  keyId: string
  keys: AccountKeys
}

export type StateMutation = (state: PrivateState) => void

export interface PrivateStateComponents {
  records: Pick<RecordStore, 'get' | 'put'>
  /** Whose state it is: read and written with these keys. */
  owner: StateOwner
  /** The load could not tell and reads again in `retryInMs` (a slow network: the user is told). */
  onRetry?: (attempt: number, retryInMs: number) => void
  /** Writes have failed `failures` times in a row (told every UNSAVED_AFTER_FAILURES), the last for `reason`. */
  onUnsaved?: (failures: number, reason: string) => void
  /** A write went through after `failures` failures that were told. */
  onSaved?: (failures: number) => void
  /** The state in memory changed (a change made here, or one read from the DHT). */
  onChange?: () => void
  logger: ComponentLogger
}

interface Waiter {
  version: number
  resolve: (durable: boolean) => void
  /** Waits through failed writes (and their retries) until written; settled false only at close. */
  untilWritten?: boolean
}

export class PrivateStateStore {
  private readonly records: PrivateStateComponents['records']
  private readonly owner: StateOwner
  private readonly log: Logger
  private readonly retryMs: number
  private readonly onRetry?: (attempt: number, retryInMs: number) => void
  private _state: PrivateState = emptyPrivateState()
  private seq = 0
  /** The version in the DHT our state is built on (read, or written by us); `seq` also counts writes that failed. */
  private baseSeq = 0
  /** The head our state is built on (its page slot is the one the next write leaves alone). */
  private baseHead?: StatePayload
  private version = 0
  private durableVersion = 0
  private pending: Array<{ version: number, mutate: StateMutation }> = []
  private waiters: Waiter[] = []
  private writing?: Promise<void>
  private retryTimer?: NodeJS.Timeout
  private closed = false
  /** Failed writes since the last one that went through, and why the last failed. */
  private failures = 0
  private lastFailure = ''

  constructor (components: PrivateStateComponents, init: PrivateStateInit = {}) {
    this.records = components.records
    this.owner = components.owner
    this.onRetry = components.onRetry
    this.log = components.logger.forComponent('conf-chat:account:private-state')
    this.retryMs = init.stateRetryMs ?? DEFAULT_STATE_RETRY_MS
    this.maxPages = init.maxStatePages
    this.onUnsaved = components.onUnsaved
    this.onSaved = components.onSaved
    this.onChange = components.onChange
  }

  private readonly onUnsaved?: PrivateStateComponents['onUnsaved']
  private readonly onSaved?: PrivateStateComponents['onSaved']
  private readonly onChange?: PrivateStateComponents['onChange']
  private readonly maxPages?: number

  /** The current state (with changes not yet written). Read only: change it with `update`. */
  get state (): PrivateState { return this._state }

  /**
   * Read the newest state from the DHT; an account without one (the holders answered
   * that there is none) starts empty. A read that could not tell (UnknownRecordError: a
   * slow or partitioned network) is never taken for "no state": it is retried every
   * `stateRetryMs` until it tells, the store is closed, or `options.signal` aborts, so the
   * session never starts with an empty friends list by mistake.
   */
  async load (options: AbortOptions = {}): Promise<void> {
    let found: VerifiedRecord<StatePayload> | undefined
    let sealed: Uint8Array | undefined
    for (let attempt = 1; ; attempt++) {
      try {
        found = await this.records.get<StatePayload>(stateKey(this.owner.keyId), options)
        // a state in pages: every page of the head's version, or "could not tell"
        if (found != null) sealed = await sealedStateOf(this.records, this.owner.keyId, found, options)
        break
      } catch (err: any) {
        if (err.name !== 'UnknownRecordError' || this.closed) throw err
        this.log('private state of %s unknown for now (attempt %d), retrying: %s', this.owner.keyId, attempt, err.message)
        this.onRetry?.(attempt, this.retryMs)
        await delay(this.retryMs, options)
        if (this.closed) throw err
      }
    }
    if (found == null || sealed == null) {
      this.log('no private state for %s yet', this.owner.keyId)
      return
    }
    // a write's reload made meanwhile may have taken this version (or a newer one) with our changes on top
    if (found.record.seq <= this.baseSeq) return
    if (this.version > 0) {
      // changes made while the load was retrying go on top of what it read
      await this.reloadAndReplay(found)
      return
    }
    this.seq = Math.max(this.seq, found.record.seq)
    this.baseSeq = found.record.seq
    this.baseHead = found.payload
    try {
      this._state = openForOwner(sealed, this.owner.keys, privateStateSchema)
      this.onChange?.()
    } catch (err: any) {
      // unreadable by its own owner: nothing to keep; the next write (higher seq) replaces it
      this.log.error('private state of %s unreadable: %s', this.owner.keyId, err.message)
    }
  }

  /**
   * Change the state: applied in memory at once, before this returns (an envelope handler
   * need not await it: its ack never waits on the DHT); resolves true once written to at
   * least one other peer, false if that failed for now (it is retried in the background).
   */
  async update (mutate: StateMutation): Promise<boolean> {
    mutate(this._state)
    this.onChange?.()
    const version = ++this.version
    this.pending.push({ version, mutate })
    const durable = new Promise<boolean>(resolve => { this.waiters.push({ version, resolve }) })
    this.startWriting()
    return await durable
  }

  /** Wait until every change is written, or `timeoutMs` passes (or `options.signal` aborts). */
  async flush (timeoutMs: number, options: AbortOptions = {}): Promise<boolean> {
    if (this.durableVersion >= this.version) return true
    const durable = new Promise<boolean>(resolve => { this.waiters.push({ version: this.version, resolve }) })
    this.startWriting()
    return await within(durable, timeoutMs, false, options)
  }

  /**
   * Resolves true once every change made so far is written, however many retries that
   * takes; false only if the store is closed first (a logout that could not write).
   */
  async written (): Promise<boolean> {
    if (this.durableVersion >= this.version) return true
    if (this.closed) return false
    const durable = new Promise<boolean>(resolve => { this.waiters.push({ version: this.version, resolve, untilWritten: true }) })
    this.startWriting()
    return await durable
  }

  /** Stop retrying (at logout, after `flush`). */
  close (): void {
    this.closed = true
    clearTimeout(this.retryTimer)
    this.settle(Infinity, false, true)
  }

  private startWriting (): void {
    if (this.writing != null || this.closed) return
    clearTimeout(this.retryTimer)
    this.writing = this.writeLoop()
      .catch(err => { this.log.error('private state write loop failed: %e', err); return false })
      .then(ok => {
        this.writing = undefined
        // a change made while the loop was ending (after its last check) must not wait
        if (ok && this.version > this.durableVersion) this.startWriting()
      })
  }

  /** Write until nothing is pending; false when a write failed (a retry is scheduled). */
  private async writeLoop (): Promise<boolean> {
    while (!this.closed && this.version > this.durableVersion) {
      if (!await this.catchUp()) { this.failed('the current state could not be read'); return false }
      const version = this.version
      const outcome = await this.write()
      if (outcome === 'written') {
        if (this.failures >= UNSAVED_AFTER_FAILURES) this.onSaved?.(this.failures)
        this.failures = 0
        this.durableVersion = version
        this.pending = this.pending.filter(p => p.version > version)
        this.settle(version, true)
      } else if (outcome === 'conflict') {
        if (!await this.reloadAndReplay()) { this.failed('a newer state could not be read'); return false }
      } else {
        this.failed(this.lastFailure)
        return false
      }
    }
    return true
  }

  private failed (reason: string): void {
    this.settle(Infinity, false)
    if (this.closed) return
    this.failures++
    if (this.failures % UNSAVED_AFTER_FAILURES === 0) {
      this.log('private state unsaved after %d writes: %s', this.failures, reason)
      this.onUnsaved?.(this.failures, reason)
    }
    this.retryTimer = setTimeout(() => { this.startWriting() }, this.retryMs)
    this.retryTimer.unref()
  }

  /** Resolve the waiters up to `upTo`; a failure (durable false) leaves those waiting until written, unless `all`. */
  private settle (upTo: number, durable: boolean, all = false): void {
    const due = (w: Waiter): boolean => w.version <= upTo && (durable || all || w.untilWritten !== true)
    const done = this.waiters.filter(due)
    this.waiters = this.waiters.filter(w => !due(w))
    for (const w of done) w.resolve(durable)
  }

  private async write (): Promise<'written' | 'conflict' | 'failed'> {
    const key = stateKey(this.owner.keyId)
    const seq = this.seq + 1
    let paged: ReturnType<typeof paginate>
    try {
      paged = paginate(sealForOwner(this._state, this.owner.keys), Date.now(), nextSlot(this.baseHead), this.maxPages)
    } catch (err: any) {
      this.lastFailure = String(err.message)
      return 'failed'
    }
    try {
      // the pages first: a head read names only pages that were written
      if (paged.pages.length > 0) {
        const pages = await writePages(this.records, this.owner.keyId, this.owner.keys, seq, paged.head.pages!.slot, paged.pages)
        if (pages.outcome !== 'written') {
          this.seq = seq
          this.lastFailure = pages.reason ?? 'a newer state exists'
          return pages.outcome
        }
      }
      const result = await this.records.put(key, encodeSignedRecord(createSignedRecord(key, seq, paged.head, this.owner.keys)))
      this.seq = seq
      if (result.replicas > 0) { this.baseSeq = seq; this.baseHead = paged.head; return 'written' }
      this.lastFailure = 'no peer stored it'
      return result.refused > 0 ? 'conflict' : 'failed'
    } catch (err: any) {
      // our own store holds a newer state than the one we loaded
      if (err.name === 'RecordConflictError') return 'conflict'
      this.lastFailure = String(err.message)
      this.log('private state write failed: %s', err.message)
      return 'failed'
    }
  }

  /**
   * Take a newer state written by another session, if there is one; false if it cannot be
   * read. A read that could not tell lets the write go on: the holders refuse it if they
   * have a newer state, and that refusal brings the reload.
   */
  private async catchUp (): Promise<boolean> {
    let found: VerifiedRecord<StatePayload> | undefined
    try {
      found = await this.records.get<StatePayload>(stateKey(this.owner.keyId))
    } catch (err: any) {
      if (err.name !== 'UnknownRecordError') throw err
      this.log('private state read before a write could not tell: writing on seq %d', this.seq)
      return true
    }
    // compared with what our state is built on: `seq` also counts our writes that failed
    if (found == null || found.record.seq <= this.baseSeq) return true
    return await this.reloadAndReplay(found)
  }

  /** A newer state exists: take it and apply our unwritten changes on top; false if it cannot be read now. */
  private async reloadAndReplay (known?: VerifiedRecord<StatePayload>): Promise<boolean> {
    let found = known
    let sealed: Uint8Array
    try {
      found ??= await this.records.get<StatePayload>(stateKey(this.owner.keyId))
      // nothing newer than what our state is built on (a read that missed the holders that refused us): later
      if (found == null || found.record.seq <= this.baseSeq) return false
      sealed = await sealedStateOf(this.records, this.owner.keyId, found)
    } catch (err: any) {
      if (err.name !== 'UnknownRecordError') throw err
      this.log('newer private state could not be read now: %s', err.message)
      return false
    }
    let base: PrivateState
    try {
      base = openForOwner(sealed, this.owner.keys, privateStateSchema)
    } catch (err: any) {
      this.log.error('newer private state unreadable: %s', err.message)
      return false
    }
    for (const p of this.pending) p.mutate(base)
    this._state = base
    this.onChange?.()
    this.seq = Math.max(this.seq, found.record.seq)
    this.baseSeq = found.record.seq
    this.baseHead = found.payload
    this.log('private state: replayed %d changes on seq %d', this.pending.length, this.seq)
    return true
  }
}
