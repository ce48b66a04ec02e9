/**
 * The conference messages read from the mailbox while a batch is open: shown with the
 * direct ones in one `messages:offline` listing, oldest first.
 */
import { compareEntries } from '../history.js'
import type { ConferenceMessage } from './types.js'

export class OfflineBatch {
  private messages?: ConferenceMessage[]

  /** Collect mailbox messages from here on. */
  begin (): void {
    this.messages = []
  }

  /** Whether a batch is open. */
  get open (): boolean {
    return this.messages != null
  }

  /** Add `message` to the open batch; false when none is open (the caller shows it alone). */
  add (message: ConferenceMessage): boolean {
    if (this.messages == null) return false
    this.messages.push(message)
    return true
  }

  /** Close the batch: its messages, oldest first (by sent time, then id). */
  end (): ConferenceMessage[] {
    const batch = this.messages ?? []
    this.messages = undefined
    return batch.sort(compareEntries)
  }
}
