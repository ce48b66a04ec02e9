/**
 * The check every inbound envelope passes, live or from a mailbox, before its kind's
 * handler sees it: it is for the user logged in here, and its signer owns the sender's
 * name. A friend's keys are kept in the private state, so a friend's live message is
 * checked without a DHT read (its ack never waits on the network).
 */
import type { AbortOptions, PeerId } from '@libp2p/interface'
import { bytesEqual, type Envelope } from '@conf-chat/protocol'
import { ForgedSenderError, NoSessionError, NotForRecipientError, RefusalError } from '../errors.js'
import type { UserProfile } from './accounts.js'
import type { EnvelopeContext, Session } from './session.js'

export interface InboundCheckComponents {
  session: () => Session | undefined
  /** A friend's profile kept in the private state, if `username` is a friend signing with this key. */
  knownProfile: (username: string, signPublic: Uint8Array) => UserProfile | undefined
  /** A user's verified profile from the DHT (throws when unknown or unreadable). */
  profile: (username: string, options?: AbortOptions) => Promise<UserProfile>
}

/** Checks an envelope and returns what its handler is told; throws a coded refusal. */
export async function checkInbound (c: InboundCheckComponents, envelope: Envelope, live: boolean, peer?: PeerId, options: AbortOptions = {}): Promise<EnvelopeContext> {
  const session = c.session()
  if (session == null) throw new NoSessionError()
  if (envelope.toKeyId !== session.account.keyId || envelope.to !== session.account.username) throw new NotForRecipientError()
  const sender = c.knownProfile(envelope.from, envelope.fromKey) ?? await senderProfile(c, envelope.from, live, options)
  if (!bytesEqual(sender.signPublic, envelope.fromKey)) throw new ForgedSenderError(envelope.from)
  return { session, sender, live, ...(peer != null ? { peer } : {}) }
}

/**
 * The sender's profile from the DHT. A read that failed is never final: the sender keeps
 * the envelope and tries again, or it stays in the mailbox. "No such user" is final only
 * for a mailbox item: a live sender falls back to the mailbox, read again later.
 */
async function senderProfile (c: InboundCheckComponents, username: string, live: boolean, options: AbortOptions): Promise<UserProfile> {
  try {
    return await c.profile(username, options)
  } catch (err: any) {
    options.signal?.throwIfAborted()
    if (err?.name === 'UnknownUserError') throw new RefusalError(live ? 'not-ready' : 'unknown-sender', `unknown sender: ${username}`, { cause: err })
    throw new RefusalError('not-ready', `the sender's keys could not be read now: ${String(err?.message ?? err)}`, { cause: err })
  }
}
