/**
 * Keeps the logged-in user's writer list in their mailbox (protocol's writer-list.ts):
 * the senders they know (friends, people they asked to be friends, members of their
 * conferences; by the keys of the pairs they seal with), so that the mailbox's holders
 * take only a few friend requests from anyone else. Published once the session starts and again, a
 * moment later, after each change of the private state that changes who is on it, and
 * weekly; a failed store is tried again. The session's two newest lists are kept (a holder
 * that missed the newest still has the one before, not none); older ones are removed.
 */
import type { ComponentLogger, Logger } from '@libp2p/interface'
import {
  createWriterListItem, writerListTime, conferenceEntrySchema, conferenceWriterKeyId, mailboxPairKeyId, MAX_LISTED_WRITERS,
  type AccountKeys, type PrivateState, type SetItem
} from '@conf-chat/protocol'

/** Wait after a change before publishing (changes come in bursts: an accept, a conference). */
export const WRITER_LIST_DELAY_MS = 300
/** Wait before trying a failed store again. */
export const WRITER_LIST_RETRY_MS = 30_000
/** A list is stored again this often in a long session, well before it expires with the mailbox's items (30 days). */
export const WRITER_LIST_REFRESH_MS = 7 * 24 * 3600_000

/** Lists of its own a session keeps in the mailbox: the newest, and the one before for holders that missed it. */
const KEPT_LISTS = 2

export interface MailboxWritersComponents {
  /** The account's private state as it is now. */
  state: () => PrivateState
  keyId: string
  /** The account's keys: signing keys sign the list, box keys derive the keys of the pairs it names. */
  keys: AccountKeys
  /** Store the list in the account's mailbox (Mailbox.storeWriterList); throws if no holder stored it. */
  store: (item: SetItem) => Promise<unknown>
  /** Remove the account's lists `ids` from its mailbox (the newer one applies now). */
  remove: (ids: string[]) => Promise<unknown>
  logger: ComponentLogger
  now?: () => number
}

export interface MailboxWritersInit {
  delayMs?: number
  retryMs?: number
}

/**
 * The key ids under which the senders the user knows write to its mailbox, friends first
 * (a list holds at most MAX_LISTED_WRITERS): friends, the people the user asked to be
 * friends, and the members of the conferences the user is still in. They write sealed
 * envelopes (protocol's sealed-envelope.ts), so they are named by the key of the pair,
 * which the user derives from its own box keys and theirs; a member whose box key the
 * conference's record did not give is named by its account key (its envelopes go as
 * they are). And for each friend, and each owner of a conference the user is in, the
 * owner's writer key, with which the members of the owner's conferences write: so they
 * are named before the user hears of a conference it was invited to. Incoming requests
 * are not on it: they are strangers' until accepted.
 */
export function knownWriters (state: PrivateState, self: { keyId: string, keys: Pick<AccountKeys, 'boxPublic' | 'boxSecret'> }): string[] {
  const ids = new Set<string>()
  const done = new Set<string>([self.keyId])
  const name = (who: { keyId: string, boxPublic?: Uint8Array }): void => {
    if (done.has(who.keyId)) return
    done.add(who.keyId)
    if (who.boxPublic == null) { ids.add(who.keyId); return }
    try {
      ids.add(mailboxPairKeyId(self.keys, who.boxPublic, who.keyId, self.keyId))
    } catch {} // a box key with no shared secret (low order): nobody can seal with it
  }
  // the writer key of the members of an owner's conferences: named before the user hears of one
  const owners = new Set<string>([self.keyId])
  const owner = (who: { keyId: string, boxPublic?: Uint8Array }): void => {
    if (owners.has(who.keyId) || who.boxPublic == null) return
    owners.add(who.keyId)
    try {
      ids.add(conferenceWriterKeyId(self.keys, who.boxPublic, who.keyId, self.keyId))
    } catch {}
  }
  for (const f of state.friends) { name(f); owner(f) }
  for (const r of state.outgoing) name(r)
  for (const raw of state.conferences) {
    const conf = conferenceEntrySchema.safeParse(raw)
    if (!conf.success || conf.data.leftAt != null) continue
    const left = new Set(conf.data.left.map(l => l.keyId))
    for (const m of conf.data.members) if (!left.has(m.keyId)) name(m)
    const confOwner = conf.data.members.find(m => m.keyId === conf.data.ref.owner)
    if (confOwner != null) owner(confOwner)
  }
  return [...ids]
}

export class MailboxWriters {
  private readonly c: MailboxWritersComponents
  private readonly log: Logger
  private readonly delayMs: number
  private readonly retryMs: number
  /** The writers of the list last stored, sorted and joined; undefined before the first. */
  private published?: string
  /** When the list last stored was signed: a new one is always later (its id is its time). */
  private publishedAt = 0
  /** The ids of the lists this session stored that are kept, oldest first (at most KEPT_LISTS). */
  private readonly kept: string[] = []
  private timer?: NodeJS.Timeout
  private refresh?: NodeJS.Timeout
  /** The store under way, if any. */
  private storing?: Promise<void>
  private started = false
  private stopped = false
  private closed = false

  constructor (c: MailboxWritersComponents, init: MailboxWritersInit = {}) {
    this.c = c
    this.log = c.logger.forComponent('conf-chat:chat:mailbox-writers')
    this.delayMs = init.delayMs ?? WRITER_LIST_DELAY_MS
    this.retryMs = init.retryMs ?? WRITER_LIST_RETRY_MS
  }

  /** The session is current and its state loaded: publish the list now. */
  start (): void {
    if (this.stopped || this.started) return
    this.started = true
    this.schedule(0)
    this.refresh = setInterval(() => { this.published = undefined; this.schedule(0) }, WRITER_LIST_REFRESH_MS)
    this.refresh.unref()
  }

  /**
   * The oldest list of the account this session keeps; a mailbox read removes the lists
   * older than it (left by earlier sessions). Undefined before this session stored one.
   */
  keepFrom (): string | undefined {
    return this.kept[0]
  }

  /**
   * A mailbox read found `id` the newest list. One newer than this session's (another
   * peer's clock runs ahead, or the session before this one stored its last list after
   * this one's) is what holders apply: store this session's again, later than it.
   */
  noteNewest (id: string): void {
    const newest = this.kept.at(-1)
    if (newest == null || id <= newest || !this.started || this.stopped) return
    this.publishedAt = Math.max(this.publishedAt, writerListTime(id))
    this.published = undefined
    this.schedule(0)
  }

  /** The private state changed: publish again soon if the writers did. */
  changed (): void {
    if (this.started && !this.stopped) this.schedule(this.delayMs)
  }

  /** The session is ending: nothing more is scheduled (see flush). */
  stop (): void {
    this.stopped = true
    clearTimeout(this.timer)
    clearInterval(this.refresh)
    this.timer = undefined
  }

  /**
   * At the end of a session: publish now what changed since the last list (a friendship
   * accepted a moment before a logout), after a store under way; true once the list
   * stored names everyone the state does.
   */
  async flush (): Promise<boolean> {
    if (!this.started || this.closed) return true
    while (this.storing != null) await this.storing
    if (this.current() === this.published) return true
    await this.publish()
    return this.current() === this.published
  }

  close (): void {
    this.stop()
    this.closed = true
  }

  private schedule (ms: number): void {
    if (this.stopped || this.timer != null) return
    this.timer = setTimeout(() => {
      this.timer = undefined
      void this.publish()
    }, ms)
    this.timer.unref()
  }

  /** The writers the state names now, sorted and joined (as `published`). */
  private current (): string {
    return knownWriters(this.c.state(), this.c).sort().join(',')
  }

  private async publish (): Promise<void> {
    if (this.closed) return
    if (this.storing != null) { this.schedule(this.delayMs); return }
    const writers = knownWriters(this.c.state(), this.c)
    const current = [...writers].sort().join(',')
    if (current === this.published) return
    if (writers.length > MAX_LISTED_WRITERS) this.log.error('%d known senders; the mailbox lists the first %d', writers.length, MAX_LISTED_WRITERS)
    const at = Math.max((this.c.now ?? Date.now)(), this.publishedAt + 1)
    const item = createWriterListItem(this.c.keys, writers.slice(0, MAX_LISTED_WRITERS), at)
    this.storing = this.c.store(item)
      .then(() => {
        this.published = current
        this.publishedAt = at
        this.kept.push(item.id)
        this.log('mailbox lists %d known senders', writers.length)
        // the lists before the last two go, in the background
        const old = this.kept.splice(0, Math.max(0, this.kept.length - KEPT_LISTS))
        if (old.length > 0) this.c.remove(old).catch((err: Error) => { this.log('could not remove older writer lists: %s', err.message) })
      }, (err: any) => {
        this.log('could not store the mailbox writer list: %s; trying again in %d ms', err.message, this.retryMs)
        if (!this.stopped) this.schedule(this.retryMs)
      })
      .finally(() => { this.storing = undefined })
    await this.storing
  }
}
