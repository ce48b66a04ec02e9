/**
 * The conferences as this user sees them, kept in the account's private state (so they
 * follow the user to any peer): one entry per conference with its members, the leaves
 * heard of, the sequence number of the newest record applied, and when this user left.
 */
import type { Logger } from '@libp2p/interface'
import {
  conferenceEntrySchema, mergeLeft, InvalidInputError, CONFERENCE_ID_PATTERN, type ConferenceEntry, type PrivateState
} from '@conf-chat/protocol'
import { AmbiguousConferenceIdError, UnknownConferenceError } from './errors.js'
import type { ConferenceState } from './types.js'

export interface ConferenceStateViewComponents {
  state: ConferenceState
  log: Logger
}

export class ConferenceStateView {
  private readonly components: ConferenceStateViewComponents
  /** Each raw entry of the state, parsed once (null: unreadable, skipped). */
  private readonly parsed = new WeakMap<object, ConferenceEntry | null>()

  constructor (components: ConferenceStateViewComponents) {
    this.components = components
  }

  private get s (): PrivateState { return this.components.state.state }

  /** Every readable entry, in the state's order (those left included). */
  entries (): ConferenceEntry[] {
    const out: ConferenceEntry[] = []
    for (const raw of this.s.conferences) {
      if (raw == null || typeof raw !== 'object') continue
      let e = this.parsed.get(raw)
      if (e === undefined) {
        const parsed = conferenceEntrySchema.safeParse(raw)
        e = parsed.success ? parsed.data : null
        if (!parsed.success) this.components.log('skipped an unreadable conference entry: %s', parsed.error.issues[0]?.message)
        this.parsed.set(raw, e)
      }
      if (e != null) out.push(e)
    }
    return out
  }

  /** The conferences this user has not left. */
  active (): ConferenceEntry[] {
    return this.entries().filter(e => e.leftAt == null)
  }

  entry (id: string): ConferenceEntry | undefined {
    return this.entries().find(e => e.id === id)
  }

  /**
   * A conference by its id or a unique start of it (`conf-3fa9` or `3fa9`); `includeLeft`:
   * also those this user left. Throws InvalidInputError, AmbiguousConferenceIdError,
   * UnknownConferenceError.
   */
  find (idOrPrefix: string, includeLeft: boolean): ConferenceEntry {
    const wanted = idOrPrefix.trim().toLowerCase()
    const prefix = wanted.startsWith('conf-') ? wanted : `conf-${wanted}`
    if (!/^conf-[0-9a-f]{1,16}$/.test(prefix)) throw new InvalidInputError(`not a conference id: ${idOrPrefix} (conf- and 16 hex digits)`)
    const all = includeLeft ? this.entries() : this.active()
    const exact = all.find(e => e.id === prefix)
    if (exact != null) return exact
    const matches = CONFERENCE_ID_PATTERN.test(prefix) ? [] : all.filter(e => e.id.startsWith(prefix))
    if (matches.length === 1) return matches[0] as ConferenceEntry
    if (matches.length > 1) throw new AmbiguousConferenceIdError(idOrPrefix, matches.map(e => e.id))
    throw new UnknownConferenceError(idOrPrefix)
  }

  /**
   * Store a conference's entry, built from its record of `entry.seq`. Replayed on a newer
   * state that another session of the account wrote, it never replaces an entry built
   * from a newer record there: that one stays, with the leaves of both.
   */
  save (entry: ConferenceEntry): ConferenceEntry {
    return this.update(entry.id, current => current != null && current.seq > entry.seq
      ? { ...current, left: mergeLeft(current.left, entry.left) }
      : entry) ?? entry
  }

  /**
   * Change a conference's entry: `change` gets a copy of the current one (undefined if
   * none) and returns the new one. In memory at once, written in the background (logout
   * flushes it); replayed on a newer state if another session of the account wrote one.
   */
  update (id: string, change: (e: ConferenceEntry | undefined) => ConferenceEntry | undefined): ConferenceEntry | undefined {
    let result: ConferenceEntry | undefined
    const mutate = (s: PrivateState): void => {
      const list = s.conferences
      const i = list.findIndex(raw => (raw as { id?: unknown } | null)?.id === id)
      const current = i >= 0 ? conferenceEntrySchema.safeParse(list[i]) : undefined
      const next = change(current?.success === true ? current.data : undefined)
      if (next == null) return
      this.parsed.set(next, next)
      result = next
      s.conferences = i >= 0 ? list.map((raw, j) => j === i ? next : raw) : [...list, next]
    }
    void this.components.state.update(mutate)
    return result
  }
}
