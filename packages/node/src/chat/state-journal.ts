/**
 * Envelopes that change the account's private state (friend envelopes, conference
 * invites, updates and leaves), kept on this peer from before they are applied until the
 * change is written to the DHT. So an envelope's ack, or its removal from the mailbox,
 * means "received and stored here" and never waits on a DHT write (up to a query's time
 * limit, longer than a sender waits for an ack); a change still unwritten when the session
 * ends (the DHT unreachable at logout, or a kill) is applied again at the next login of
 * the account on this peer. Applying one twice changes nothing: friend envelopes older
 * than the last applied from their sender are ignored, and so are conference records no
 * newer than the one held.
 */
import type { ComponentLogger, Logger } from '@libp2p/interface'
import { decodeEnvelope, encodeEnvelope, type Envelope } from '@conf-chat/protocol'
import type { UserProfile } from '../account/index.js'
import type { LocalStore } from '../storage/index.js'

/** One kept envelope, with its sender as checked when it arrived (no lookup to apply it again). */
export interface KeptEnvelope {
  envelope: Envelope
  sender: UserProfile
}

interface StoredEntry {
  envelope: Uint8Array
  sender: UserProfile
}

export class StateJournal {
  private readonly local: Pick<LocalStore, 'put' | 'delete' | 'entries'>
  private readonly prefix: string
  private readonly log: Logger

  /** The journal of the account `keyId` on this peer. */
  constructor (local: Pick<LocalStore, 'put' | 'delete' | 'entries'>, keyId: string, logger: ComponentLogger) {
    this.local = local
    this.prefix = `/journal/${keyId}/`
    this.log = logger.forComponent('conf-chat:chat:state-journal')
  }

  /** Keep `envelope` (durably: it survives a kill -9) before it is applied. */
  async keep (envelope: Envelope, sender: UserProfile): Promise<void> {
    const entry: StoredEntry = { envelope: encodeEnvelope(envelope), sender }
    await this.local.put(this.key(envelope.id), entry)
  }

  /** Forget `id` once `written` resolves true (the change is in the DHT); kept if it resolves false. */
  settle (id: string, written: Promise<boolean>): void {
    written
      .then(async ok => { if (ok) await this.forget(id) })
      .catch(err => { this.log('could not forget %s: %s', id, err.message) })
  }

  /** Forget `id` now (it was refused: nothing of it was applied). */
  async forget (id: string): Promise<void> {
    await this.local.delete(this.key(id))
  }

  /** What is kept, oldest first (ids sort by sending time); unreadable entries are forgotten. */
  async * kept (): AsyncGenerator<KeptEnvelope> {
    const bad: string[] = []
    for await (const { key, value } of this.local.entries<StoredEntry>(this.prefix)) {
      let envelope: Envelope
      try {
        envelope = decodeEnvelope(value.envelope)
      } catch (err: any) {
        this.log('dropped an unreadable journal entry %s: %s', key, err.message)
        bad.push(key.slice(this.prefix.length))
        continue
      }
      yield { envelope, sender: value.sender }
    }
    for (const id of bad) await this.forget(id)
  }

  private key (id: string): string { return this.prefix + id }
}
