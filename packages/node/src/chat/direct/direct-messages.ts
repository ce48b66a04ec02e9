/**
 * Direct messages between friends: sent live when the friend is online (ack), else to
 * their mailbox, else kept in the outbox; received live (one event each) or from the
 * mailbox at login (one event with the list, oldest first). Every message goes to the
 * history of both sides, and is shown once: ids already seen here, or already in the
 * conversation's history (also when it was shown on another peer), are dropped.
 */
import type { AbortOptions, ComponentLogger, Logger } from '@libp2p/interface'
import { defaultLogger } from '@libp2p/logger'
import {
  openEnvelope, checkMessageText, checkUsername, dmBodySchema, DM_KIND,
  type Envelope, type HistoryEntry, type AccountKeys
} from '@conf-chat/protocol'
import type { Friends } from '../friends/index.js'
import { compareEntries, IncompleteHistoryError, type History } from '../history.js'
import type { Delivery, SendOptions } from '../../delivery/index.js'
import type { EnvelopeContext, UserProfile } from '../../account/index.js'
import { NoSessionError, NotFriendError, RefusalError } from '../../errors.js'
import { InFlight } from '../../utils/index.js'
import type { MessageState, MessageStateInfo, Receipts } from './receipts.js'

export interface ChatMessage {
  id: string
  from: string
  to: string
  text: string
  /** When the sender sent it (ms since epoch, the sender's clock). */
  sentAt: number
  /** 'out': sent by the logged-in user; 'in': received. */
  direction: 'in' | 'out'
  /** A message sent from this peer: what became of it (see Receipts). */
  state?: MessageState
  /** queued: in this peer's outbox, or in the recipient's mailbox. */
  where?: MessageStateInfo['where']
}

export interface IncomingMessage extends ChatMessage {
  /** True when it came over a live stream, false when read from the mailbox. */
  live: boolean
}

export interface DirectMessageEvents {
  /** A direct message arrived live. */
  'message': CustomEvent<IncomingMessage>
  /** Messages read from the mailbox (at login or a later check), oldest first, each once. */
  'messages:offline': CustomEvent<{ messages: IncomingMessage[] }>
}

export interface DirectMessagesComponents {
  me: { username: string, keyId: string }
  keys: Pick<AccountKeys, 'boxPublic' | 'boxSecret'>
  friends: Pick<Friends, 'friend' | 'requireFriend' | 'profileOf' | 'asked'>
  history: Pick<History, 'append' | 'knows' | 'has' | 'list'>
  receipts: Pick<Receipts, 'sending' | 'delivery' | 'shown' | 'flushDelivered' | 'states'>
  profile: (username: string, options?: AbortOptions) => Promise<UserProfile>
  /** Seal `content` to `to`, signed by the logged-in account. */
  seal: (kind: string, content: unknown, to: UserProfile) => Envelope
  /** Persist in the outbox and deliver. */
  dispatch: (envelope: Envelope, options?: SendOptions) => Promise<Delivery>
  emit: <K extends keyof DirectMessageEvents>(type: K, detail: DirectMessageEvents[K]['detail']) => void
  /** @default defaultLogger() from @libp2p/logger */
  logger?: ComponentLogger
}

export class DirectMessages {
  private readonly c: DirectMessagesComponents
  private readonly log: Logger
  private batch?: IncomingMessage[]
  private readonly receiving = new InFlight()

  constructor (components: DirectMessagesComponents) {
    this.c = components
    this.log = (components.logger ?? defaultLogger()).forComponent('conf-chat:chat:direct')
  }

  /** Send `text` to a friend. Throws NotFriendError (code 'not-a-friend'), InvalidInputError (empty, too long). */
  async send (username: string, text: string, options: AbortOptions = {}): Promise<Delivery> {
    const friend = this.c.friends.requireFriend(username)
    const body = { text: checkMessageText(text) }
    const to = this.c.friends.profileOf(friend)
    const envelope = this.c.seal(DM_KIND, body, to)
    this.c.receipts.sending(friend, envelope.id)
    // the history write runs alongside: the outbox entry (written before any attempt) is what keeps the message
    const sent = Promise.all([
      this.c.history.append(friend.keyId, { id: envelope.id, from: envelope.from, to: envelope.to, text: body.text, sentAt: envelope.sentAt }, true),
      this.c.dispatch(envelope, { ...options, recipientBoxPublic: to.boxPublic })
    ])
    try {
      const [, delivery] = await sent
      await this.c.receipts.delivery(friend, envelope.id, delivery)
      return delivery
    } catch (err: any) {
      // never left "sending": the caller is told why, and so is the state
      this.log('message %s to %s failed: %s', envelope.id, friend.username, err?.message ?? err)
      await this.c.receipts.delivery(friend, envelope.id, { status: 'failed', reason: String(err?.message ?? err) })
      throw err
    }
  }

  /**
   * Handle a `dm` envelope (checked: for us, signed by the owner of `from`). Throws
   * NotFriendError (code 'not-a-friend') when the sender is not a friend with that key.
   */
  async receive (env: Envelope, ctx: EnvelopeContext, options: AbortOptions = {}): Promise<void> {
    options.signal?.throwIfAborted()
    const friend = this.c.friends.friend(env.from, env.fromKey)
    if (friend == null) {
      // we asked them: their accept, sent before this message, is on its way (in our
      // mailbox, not read yet): not final, the sender keeps the message
      if (this.c.friends.asked(env.from)) throw new RefusalError('not-ready', `${env.from} is not a friend yet: their accept has not arrived`)
      throw new NotFriendError(env.from)
    }
    // live: the local look-up runs on LevelDB's thread while the body is opened here
    const knownHere = ctx.live ? this.c.history.knows(friend.keyId, env.id, options) : undefined
    knownHere?.catch(() => {})
    const body = openEnvelope(env, this.c.keys, dmBodySchema)
    // a copy arriving while another is handled (live and from the mailbox, or the sender's
    // retry after its ack timed out) is answered with that one's outcome, once it is shown
    // (or, from a mailbox read, kept here to be shown at the end of the read)
    await this.receiving.run(env.id, async () => {
      // every message shown is in the history: on this peer (local), or, from a mailbox,
      // also shown live on another peer (the DHT pages)
      const known = knownHere != null ? await knownHere : await this.c.history.has(friend.keyId, env.id, options)
      if (known) return
      const entry: HistoryEntry = { id: env.id, from: env.from, to: env.to, text: body.text, sentAt: env.sentAt }
      // shown at the end of the mailbox read: kept as unshown until then
      const batched = !ctx.live && this.batch != null
      // the session is ending (a takeover): shown here, it would not reach the history pages
      // and the account's next peer would show it again; refused for now, it goes there
      if (!await this.c.history.append(friend.keyId, entry, true, batched ? {} : undefined)) throw new NoSessionError('the session is ending')
      this.c.receipts.shown(friend, env.id, ctx.live)
      this.show({ ...entry, direction: 'in', live: ctx.live })
    }, options)
  }

  private show (message: IncomingMessage): void {
    if (message.live) this.c.emit('message', message)
    else if (this.batch != null) this.batch.push(message)
    else {
      this.c.emit('messages:offline', { messages: [message] })
      this.c.receipts.flushDelivered()
    }
  }

  /** Collect mailbox messages from here on, to show them together. */
  beginBatch (): void {
    this.batch = []
  }

  /** The collected messages, oldest first (sent time, then id). */
  endBatch (): IncomingMessage[] {
    const batch = this.batch ?? []
    this.batch = undefined
    this.c.receipts.flushDelivered()
    return batch.sort(compareEntries)
  }

  /** The conversation with `username` (friend or not), both directions, oldest first. */
  async history (username: string, options: AbortOptions = {}): Promise<ChatMessage[]> {
    checkUsername(username)
    const keyId = this.c.friends.friend(username)?.keyId ?? (await this.c.profile(username, options)).keyId
    const states = await this.c.receipts.states(keyId, options)
    const toMessage = (e: HistoryEntry): ChatMessage => {
      if (e.from !== this.c.me.username) return { ...e, direction: 'in' }
      return { ...e, direction: 'out', ...states.get(e.id) }
    }
    try {
      return (await this.c.history.list(keyId, options)).map(toMessage)
    } catch (err) {
      if (err instanceof IncompleteHistoryError) throw new IncompleteHistoryError(err.entries.map(toMessage), err.unreadPages)
      throw err
    }
  }
}
