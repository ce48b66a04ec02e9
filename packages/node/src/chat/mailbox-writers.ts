/**
 * Keeps the logged-in user's writer list in their mailbox (protocol's writer-list.ts):
 * the senders they know (friends, people they asked to be friends, members of their
 * conferences), so that the mailbox's holders take only a few friend requests from
 * anyone else. Published once the session starts and again, a moment later, after each
 * change of the private state that changes who is on it; a failed store is tried again.
 */
import type { ComponentLogger, Logger } from '@libp2p/interface'
import {
  createWriterListItem, conferenceEntrySchema, MAX_LISTED_WRITERS,
  type AccountKeys, type PrivateState, type SetItem
} from '@conf-chat/protocol'

/** Wait after a change before publishing (changes come in bursts: an accept, a conference). */
export const WRITER_LIST_DELAY_MS = 300
/** Wait before trying a failed store again. */
export const WRITER_LIST_RETRY_MS = 30_000

export interface MailboxWritersComponents {
  /** The account's private state as it is now. */
  state: () => PrivateState
  keyId: string
  keys: Pick<AccountKeys, 'signPublic' | 'signSecret'>
  /** Store the list in the account's mailbox (Mailbox.storeWriterList); throws if no holder stored it. */
  store: (item: SetItem) => Promise<unknown>
  logger: ComponentLogger
  now?: () => number
}

export interface MailboxWritersInit {
  delayMs?: number
  retryMs?: number
}

/**
 * The key ids of the senders the user knows, friends first (a list holds at most
 * MAX_LISTED_WRITERS): friends, outgoing friend requests, the members of the conferences
 * the user is still in. Incoming requests are not on it: they are strangers' until accepted.
 */
export function knownWriters (state: PrivateState, self: string): string[] {
  const ids = new Set<string>()
  for (const f of state.friends) ids.add(f.keyId)
  for (const r of state.outgoing) ids.add(r.keyId)
  for (const raw of state.conferences) {
    const conf = conferenceEntrySchema.safeParse(raw)
    if (!conf.success || conf.data.leftAt != null) continue
    const left = new Set(conf.data.left.map(l => l.keyId))
    for (const m of conf.data.members) if (!left.has(m.keyId)) ids.add(m.keyId)
  }
  ids.delete(self)
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
  private timer?: NodeJS.Timeout
  private storing = false
  private started = false
  private closed = false

  constructor (c: MailboxWritersComponents, init: MailboxWritersInit = {}) {
    this.c = c
    this.log = c.logger.forComponent('conf-chat:chat:mailbox-writers')
    this.delayMs = init.delayMs ?? WRITER_LIST_DELAY_MS
    this.retryMs = init.retryMs ?? WRITER_LIST_RETRY_MS
  }

  /** The session is current and its state loaded: publish the list now. */
  start (): void {
    if (this.closed) return
    this.started = true
    this.schedule(0)
  }

  /** The private state changed: publish again soon if the writers did. */
  changed (): void {
    if (this.started) this.schedule(this.delayMs)
  }

  close (): void {
    this.closed = true
    clearTimeout(this.timer)
  }

  private schedule (ms: number): void {
    if (this.closed || this.timer != null) return
    this.timer = setTimeout(() => {
      this.timer = undefined
      void this.publish()
    }, ms)
    this.timer.unref()
  }

  private async publish (): Promise<void> {
    if (this.closed) return
    if (this.storing) { this.schedule(this.delayMs); return }
    const writers = knownWriters(this.c.state(), this.c.keyId)
    const current = [...writers].sort().join(',')
    if (current === this.published) return
    if (writers.length > MAX_LISTED_WRITERS) this.log.error('%d known senders; the mailbox lists the first %d', writers.length, MAX_LISTED_WRITERS)
    this.storing = true
    try {
      const at = Math.max((this.c.now ?? Date.now)(), this.publishedAt + 1)
      await this.c.store(createWriterListItem(this.c.keys, writers.slice(0, MAX_LISTED_WRITERS), at))
      this.published = current
      this.publishedAt = at
      this.log('mailbox lists %d known senders', writers.length)
    } catch (err: any) {
      this.log('could not store the mailbox writer list: %s; trying again in %d ms', err.message, this.retryMs)
      this.storing = false
      this.schedule(this.retryMs)
      return
    }
    this.storing = false
  }
}
