/** What a logged-in peer does after its process stood still. */
import type { Logger } from '@libp2p/interface'

/**
 * This process stood still (stopped, or starved) for longer than this: senders found no
 * ack within their 5 s (DEFAULT_ACK_TIMEOUT_MS) and put into the mailbox meanwhile. A
 * little under that limit, as a stall seen from here starts after the sender's send.
 */
export const STALL_MS = 3_000

/**
 * After this process stood still: what senders gave up on meanwhile waits in the mailbox,
 * and what this peer failed to send waits in the outbox. A login elsewhere may have taken
 * the account meanwhile without being able to tell this peer: the session is checked
 * first, so that it does not read the mailbox the new one reads (both would show its
 * messages); a check that fails still lets the read go on.
 */
export async function afterStall (steps: { checkSession?: () => Promise<void>, readMailbox: () => void, retryOutbox: () => void }, log: Logger): Promise<void> {
  steps.retryOutbox()
  try {
    await steps.checkSession?.()
  } catch (err: any) {
    log('checking the session after a stall: %s', err.message)
  }
  steps.readMailbox()
}
