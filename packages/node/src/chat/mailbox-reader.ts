/**
 * Reads the logged-in user's mailbox: every envelope, oldest first (a run of direct
 * messages a few at a time), goes through the same check and handler as a live one; new
 * messages are shown together; what was handled, or refused for good, is then removed
 * from the holders. One read at a time.
 *
 * A read lists the mailbox's ids first and fetches only the items it has not left there
 * on purpose (envelopes of kinds this peer does not know): 1,500 such items of 60 KiB
 * were once downloaded again at every read, 13 times the CPU of a peer without them.
 */
import { DM_KIND, RECEIPT_KIND, PRESENCE_KIND, isFinalRefusal, envelopeIdTime, type Envelope, type RefusalCode } from '@conf-chat/protocol'
import type { AbortOptions, ComponentLogger, Logger } from '@libp2p/interface'
import type { Session, UserProfile } from '../account/index.js'
import { DEFAULT_MAILBOX_TIMEOUT_MS, type FetchedMail, type Mailbox } from '../delivery/index.js'
import { RefusalError, refusalOf } from '../errors.js'
import { timeLimit } from '../utils/index.js'
import { compareEntries } from './history.js'
import type { IncomingMessage } from './direct/index.js'
import type { FetchedAhead, LoggedIn } from './logged-in.js'
import type { Emit } from './events.js'

/**
 * Kinds whose envelopes do not depend on each other (messages; receipts, as a state only
 * moves forward): a run of them in the mailbox is handled a few at a time (their disk reads and writes overlap the next one's decryption);
 * any other kind is handled alone, after everything before it, in order (a friend's accept
 * before their messages, a conference invite before its messages).
 */
const UNORDERED_KINDS = new Set([DM_KIND, RECEIPT_KIND])
/** Envelopes of an unordered run handled at once. */
const UNORDERED_CONCURRENCY = 16
/**
 * An envelope of a kind this peer does not know is left in the mailbox for a newer peer
 * of the user's, for this long after it was made; then it is removed. Kept for ever, junk
 * of made-up kinds was downloaded again at every mailbox read.
 */
export const UNKNOWN_KIND_MAX_AGE_MS = 7 * 24 * 3600_000

/** Older writer lists of the account a read removes even when it removes nothing else. */
export const OLD_WRITER_LISTS_REMOVED = 3

export interface MailboxReaderComponents {
  mailbox: Pick<Mailbox, 'fetch' | 'remove'>
  profile: (username: string, options?: AbortOptions) => Promise<UserProfile>
  /** Check an envelope and hand it to its kind's handler (throws a coded refusal). */
  accept: (envelope: Envelope, live: boolean, options?: AbortOptions) => Promise<void>
  /** Whether a handler for this kind exists here. */
  handles: (kind: string) => boolean
  session: () => Session | undefined
  /** Report a refused envelope. */
  refused: (envelope: Envelope, err: unknown, live: boolean) => void
  emit: Emit
  logger: ComponentLogger
  /** @default Date.now */
  now?: () => number
}

export interface MailboxReaderInit {
  /** Limit for one mailbox read or removal. @default 30 s */
  mailboxTimeoutMs?: number
}


export interface DrainOptions extends AbortOptions {
  /** A periodic read, or the login's, reuses the mailbox's holders found this recently. */
  holdersMaxAgeMs?: number
}

export class MailboxReader {
  private readonly c: MailboxReaderComponents
  private readonly log: Logger
  private readonly timeoutMs: number

  constructor (components: MailboxReaderComponents, init: MailboxReaderInit = {}) {
    this.c = components
    this.log = components.logger.forComponent('conf-chat:chat:mailbox-reader')
    this.timeoutMs = init.mailboxTimeoutMs ?? DEFAULT_MAILBOX_TIMEOUT_MS
  }

  /**
   * Read the mailbox after any read under way; returns the new messages, oldest first.
   * `options.holdersMaxAgeMs`: a periodic read reuses the mailbox's holders found lately.
   */
  async drain (active: LoggedIn, options: DrainOptions = {}): Promise<IncomingMessage[]> {
    const run = active.draining.catch(() => {}).then(async () => await this.drainOnce(active, options))
    active.draining = run
    return await run
  }

  /**
   * Fetch the mailbox now, into `active.fetchedAhead`, for the session's first read (the
   * login's), which takes it from there: the items come in while the session starts (its
   * private state read, its presence written). After the reads `active.draining` waits for
   * (an earlier session's here, which removes what it showed); not under the login's
   * signal (the read outlives the login). Never rejects.
   */
  fetchAhead (active: LoggedIn, options: { holdersMaxAgeMs?: number } = {}): void {
    active.fetchedAhead = active.draining.catch(() => {}).then(async () => {
      const listed = new Set<string>()
      const started = performance.now()
      const mail = await this.fetch(active, id => { listed.add(id); return false }, options)
      this.log('mailbox read ahead of the login: %d envelopes in %d ms', mail.envelopes.length, Math.round(performance.now() - started))
      return { mail, listed }
    }).catch(err => {
      this.log('mailbox read ahead of the login: %s', err.message)
      return undefined
    })
  }

  private async fetch (active: LoggedIn, skip: (id: string) => boolean, options: AbortOptions & { holdersMaxAgeMs?: number }): Promise<FetchedMail> {
    const { account } = active.session
    return await this.c.mailbox.fetch(account.keyId, {
      signal: timeLimit(this.timeoutMs, options),
      // holders let only the owner read a mailbox
      readAs: account.keys,
      keys: account.keys,
      holdersMaxAgeMs: options.holdersMaxAgeMs,
      skip
    })
  }

  private async drainOnce (active: LoggedIn, options: DrainOptions): Promise<IncomingMessage[]> {
    if (active.ended) return []
    await active.ready
    const { account } = active.session
    const now = this.c.now ?? Date.now
    const done: string[] = []
    const left = active.leftInMailbox
    for (const id of left) {
      if (now() - envelopeIdTime(id) <= UNKNOWN_KIND_MAX_AGE_MS) continue
      this.log('removed %s of an unknown kind: older than %d days', id, UNKNOWN_KIND_MAX_AGE_MS / 86_400_000)
      done.push(id)
      left.delete(id)
    }
    // messages an earlier read kept here but did not show (the process was killed in between)
    const unshown = await active.history.unshown(options).catch((err: Error) => {
      this.log('could not read the unshown messages: %s', err.message)
      return []
    })
    const earlier: IncomingMessage[] = unshown.map(u => ({ ...u.entry, direction: 'in' as const, live: false, ...(u.conference != null ? { conference: u.conference } : {}) }))
    let listed = new Set<string>()
    let mail: FetchedMail
    try {
      // the session's first read: fetched while the login ran, before this session read or
      // left anything in the mailbox (a later read fetches afresh)
      const fetched = active.fetchedAhead
      active.fetchedAhead = undefined
      const ahead = await fetched
      if (ahead != null) ({ mail, listed } = ahead)
      else mail = await this.fetch(active, id => { listed.add(id); return left.has(id) || done.includes(id) }, options)
    } catch (err) {
      // what is kept here is shown whatever the holders say
      await this.show(active, earlier.sort(compareEntries))
      throw err
    }
    // what is no longer listed was removed (by another peer of the user's) or expired
    for (const id of left) if (!listed.has(id)) left.delete(id)
    for (const bad of mail.invalid) {
      this.log('dropped mailbox item %s: %s', bad.id, bad.reason)
      done.push(bad.id)
    }
    // the account's writer lists: holders apply the newest (if it is not this session's,
    // the session stores its own again, later); the session removes its own older ones, so
    // those older than what it keeps were left by earlier sessions: they go with the read's
    // other removals, or alone once a few have gathered
    const newestList = mail.writerLists.at(-1)
    if (newestList != null) active.writers.noteNewest(newestList)
    const keepFrom = active.writers.keepFrom()
    const olderLists = keepFrom == null ? [] : mail.writerLists.filter(id => id < keepFrom)
    const envelopes = mail.envelopes.sort(compareEntries)
    this.log('handling %d envelopes of the mailbox', envelopes.length)
    // the senders' keys, looked up at once: junk from made-up names must not cost a lookup each in turn
    const senders = new Map<string, UserProfile | Error>()
    await Promise.all([...new Set(envelopes.map(e => e.from))].map(async u => {
      senders.set(u, await this.c.profile(u, options).catch((err: Error) => err))
    }))
    active.dms.beginBatch()
    active.conferences.beginBatch()
    let batch: IncomingMessage[]
    const stopped = (): boolean => active.ended || this.c.session() !== active.session || gaveUp(options)
    /** Handle one envelope; false when the read stops here. */
    const handle = async (env: Envelope): Promise<boolean> => {
      if (stopped()) return false
      if (env.kind === PRESENCE_KIND) { done.push(env.id); return true }
      // a kind this peer does not know yet (a newer peer sent it): leave it a while for one that does
      if (!this.c.handles(env.kind)) {
        if (now() - envelopeIdTime(env.id) > UNKNOWN_KIND_MAX_AGE_MS) {
          this.log('removed %s of unknown kind %s: older than %d days', env.id, env.kind, UNKNOWN_KIND_MAX_AGE_MS / 86_400_000)
          done.push(env.id)
        } else {
          this.log('left %s of unknown kind %s in the mailbox', env.id, env.kind)
          left.add(env.id)
        }
        return true
      }
      const sender = senders.get(env.from)
      if (sender instanceof Error) {
        if (sender.name !== 'UnknownUserError') { this.log('sender %s not found now, %s left for later: %s', env.from, env.id, sender.message); return true }
        this.c.refused(env, new RefusalError('unknown-sender', sender.message, { cause: sender }), false)
        done.push(env.id)
        return true
      }
      try {
        await this.c.accept(env, false, options)
        done.push(env.id)
      } catch (err) {
        // the caller gave up: no refusal, the item stays for the next read
        if (gaveUp(options)) return false
        this.c.refused(env, err, false)
        if (isDone(refusalOf(err).code)) done.push(env.id)
      }
      return true
    }
    try {
      for (let i = 0; i < envelopes.length;) {
        const first = envelopes[i] as Envelope
        if (!UNORDERED_KINDS.has(first.kind)) {
          if (!await handle(first)) break
          i++
          continue
        }
        let end = i
        while (end < envelopes.length && UNORDERED_KINDS.has((envelopes[end] as Envelope).kind)) end++
        const run = envelopes.slice(i, end)
        let next = 0
        let go = true
        await Promise.all(Array.from({ length: Math.min(UNORDERED_CONCURRENCY, run.length) }, async () => {
          while (go && next < run.length) go = await handle(run[next++] as Envelope) && go
        }))
        if (!go) break
        i = end
      }
    } finally {
      // direct and conference messages in one listing, oldest first
      batch = [...earlier, ...active.dms.endBatch(), ...active.conferences.endBatch()].sort(compareEntries)
    }
    if (this.log.enabled) {
      const kinds = new Map<string, number>()
      for (const e of envelopes) kinds.set(e.kind, (kinds.get(e.kind) ?? 0) + 1)
      this.log('read the mailbox: %d envelopes (%s), %d new messages, %d kept unshown before, %d taken out', envelopes.length,
        [...kinds].map(([kind, n]) => `${n} ${kind}`).join(', '), batch.length - earlier.length, earlier.length, done.length)
    }
    await this.show(active, batch)
    if (done.length > 0 || olderLists.length >= OLD_WRITER_LISTS_REMOVED) done.push(...olderLists)
    if (done.length > 0) {
      // what was handled is removed even when the caller gave up or the session ended
      // meanwhile (a takeover: the new login reads the mailbox once this is done)
      await this.c.mailbox.remove(account.keyId, done, account.keys, { signal: timeLimit(this.timeoutMs) })
        .catch(err => { this.log('could not remove %d delivered items: %s', done.length, err.message) })
    }
    return batch
  }

  /**
   * Show a read's messages together, then clear their "not shown yet" marks. A process
   * killed between the two shows them again at its next read: shown twice rather than never.
   */
  private async show (active: LoggedIn, batch: IncomingMessage[]): Promise<void> {
    if (batch.length === 0) return
    this.c.emit('messages:offline', { messages: batch })
    await active.history.shown(batch.map(m => m.id)).catch(err => { this.log('could not mark %d messages shown: %s', batch.length, err.message) })
  }
}

/**
 * Whether a mailbox item refused with `code` is taken out of the mailbox: a final refusal;
 * and a conference still unknown here, which (unlike a live message) will not become known:
 * items are handled oldest first, so its invite, had there been one, came before.
 */
function isDone (code: RefusalCode): boolean {
  return isFinalRefusal(code) || code === 'unknown-conference'
}

/** Whether the caller gave up (read afresh each time: the signal changes under our feet). */
function gaveUp (options: AbortOptions): boolean {
  return options.signal?.aborted === true
}
