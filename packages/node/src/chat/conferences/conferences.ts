/**
 * Conferences (group chats) of the logged-in account, on the same machinery as direct
 * messages: every message is one signed envelope per member, sealed to that member and
 * handed to the outbox (live stream with ack, else the member's mailbox, else retried),
 * received through the session's checks, deduplicated by its id, kept in the history, and
 * shown live or in the login's offline batch.
 *
 * Membership: the owner's signed record in the DHT (`/cc-conf/<ownerKeyId>/<localId>`,
 * records.ts) says who is in; every change is a new record with a higher sequence number,
 * carried in the invite (to new members) and update (to the others) envelopes. Leaving is
 * signed by the leaver and sent to every member, so it takes effect while the owner is
 * offline; the owner writes it into the record when it hears of it. Only the owner invites
 * and removes: the record has one writer, so the owner decides who is in. Each member
 * keeps its view (members, leaves, the record's sequence number) in its private state
 * (state-view.ts), so it follows the user to any peer, and drops messages from anyone not
 * a member at the time they were sent.
 *
 * This class wires the parts: the user's commands (commands.ts), one handler per inbound
 * envelope kind (handlers.ts), and the membership logic both share (membership.ts).
 */
import type { AbortOptions } from '@libp2p/interface'
import { defaultLogger } from '@libp2p/logger'
import type { Envelope } from '@conf-chat/protocol'
import type { EnvelopeContext } from '../../account/index.js'
import { OfflineBatch } from './batch.js'
import { ConferenceCommands } from './commands.js'
import { DEFAULT_PRESENCE_CONCURRENCY, DEFAULT_REFRESH_CONCURRENCY, DEFAULT_REFRESH_MIN_MS } from './constants.js'
import { NotConferenceEnvelopeError } from './errors.js'
import { conferenceHandlers, type ConferenceEnvelopeHandler } from './handlers.js'
import { Membership } from './membership.js'
import { ConferenceRecords } from './records.js'
import { ConferenceStateView } from './state-view.js'
import type {
  ConferenceChangeResult, ConferenceInfo, ConferenceMemberInfo, ConferenceMessage, ConferenceSendResult,
  ConferencesComponents, ConferencesInit
} from './types.js'

export class Conferences {
  private readonly commands: ConferenceCommands
  private readonly handlers: ReadonlyMap<string, ConferenceEnvelopeHandler>
  private readonly batch = new OfflineBatch()

  constructor (components: ConferencesComponents, init: ConferencesInit = {}) {
    const log = (components.logger ?? defaultLogger()).forComponent('conf-chat:chat:conferences')
    const now = components.now ?? Date.now
    const { me, keys } = components
    const view = new ConferenceStateView({ state: components.state, log })
    const records = new ConferenceRecords({ me, keys, records: components.records, local: components.local, now, log })
    const membership = new Membership({
      me, keys, view, records, profile: components.profile, dispatch: components.dispatch, emit: components.emit, now, log
    }, { refreshMinMs: init.refreshMinMs ?? DEFAULT_REFRESH_MIN_MS })
    this.commands = new ConferenceCommands({
      me,
      keys,
      friends: components.friends,
      history: components.history,
      profile: components.profile,
      presenceOf: components.presenceOf,
      dispatch: components.dispatch,
      ...(components.receipts != null ? { receipts: components.receipts } : {}),
      view,
      records,
      membership,
      now,
      log
    }, {
      presenceConcurrency: init.presenceConcurrency ?? DEFAULT_PRESENCE_CONCURRENCY,
      refreshConcurrency: init.refreshConcurrency ?? DEFAULT_REFRESH_CONCURRENCY
    })
    this.handlers = conferenceHandlers({
      me,
      keys,
      friends: components.friends,
      history: components.history,
      emit: components.emit,
      ...(components.receipts != null ? { receipts: components.receipts } : {}),
      view,
      membership,
      batch: this.batch,
      log
    })
  }

  // ------------------------------------------------------------ what users do

  /**
   * Create a conference with friends. Throws InvalidInputError, UnknownUserError or
   * NotFriendError before anything is written or sent.
   */
  async create (name: string, usernames: string[], options: AbortOptions = {}): Promise<ConferenceChangeResult> {
    return await this.commands.create(name, usernames, options)
  }

  /** The owner invites more friends; they see what is sent from now on. Throws NotConferenceOwnerError for others. */
  async invite (idOrPrefix: string, usernames: string[], options: AbortOptions = {}): Promise<ConferenceChangeResult> {
    return await this.commands.invite(idOrPrefix, usernames, options)
  }

  /** The owner removes members: they are told, and get nothing sent afterwards. Throws NotConferenceOwnerError for others. */
  async remove (idOrPrefix: string, usernames: string[], options: AbortOptions = {}): Promise<ConferenceChangeResult> {
    return await this.commands.remove(idOrPrefix, usernames, options)
  }

  /** Leave: every member is told (signed by this user); nothing of the conference is accepted afterwards. */
  async leave (idOrPrefix: string, options: AbortOptions = {}): Promise<ConferenceChangeResult> {
    return await this.commands.leave(idOrPrefix, options)
  }

  /** Send `text` to every other member: one envelope each, sealed to them. */
  async send (idOrPrefix: string, text: string, options: AbortOptions = {}): Promise<ConferenceSendResult> {
    return await this.commands.send(idOrPrefix, text, options)
  }

  /** The user's conferences (not those left), with how many members are online. */
  async list (options: AbortOptions = {}): Promise<ConferenceInfo[]> {
    return await this.commands.list(options)
  }

  /** A receipt for messages of conference `id` to one of its members (see Receipts). */
  async sendReceipt (id: string, toKeyId: string, body: unknown): Promise<void> {
    await this.commands.sendReceipt(id, toKeyId, body)
  }

  /** The conference's current members with their online status. */
  async members (idOrPrefix: string, options: AbortOptions = {}): Promise<{ conference: ConferenceInfo, members: ConferenceMemberInfo[] }> {
    return await this.commands.members(idOrPrefix, options)
  }

  /** The messages this member sent and received in the conference, oldest first, from any peer. */
  async history (idOrPrefix: string, options: AbortOptions = {}): Promise<{ conference: ConferenceInfo, messages: ConferenceMessage[] }> {
    return await this.commands.history(idOrPrefix, options)
  }

  /** Read every conference's record again (after login): changes made while this user was away. */
  async refreshAll (options: AbortOptions = {}): Promise<void> {
    await this.commands.refreshAll(options)
  }

  // ------------------------------------------------------------ envelopes in

  /**
   * Handle one conference envelope (checked by the session: for us, signed by the owner of
   * `from`). Throws an error with a refusal code to refuse it.
   */
  async receive (env: Envelope, ctx: EnvelopeContext, options: AbortOptions = {}): Promise<void> {
    const handler = this.handlers.get(env.kind)
    if (handler == null) throw new NotConferenceEnvelopeError(env.kind)
    await handler.handle(env, ctx, options)
  }

  /** Collect mailbox messages from here on, to show them with the direct ones. */
  beginBatch (): void {
    this.batch.begin()
  }

  /** The mailbox messages collected since `beginBatch`, oldest first. */
  endBatch (): ConferenceMessage[] {
    return this.batch.end()
  }
}
