/** How events and messages read as plain lines (command mode, and notices in the UI). */
import { IncompleteHistoryError, type ChatMessage, type Delivery, type MessageStateChange } from '@conf-chat/node'

/** Local wall-clock time, HH:MM:SS. */
export function clock (ms: number): string {
  const d = new Date(ms)
  return [d.getHours(), d.getMinutes(), d.getSeconds()].map(n => String(n).padStart(2, '0')).join(':')
}

/**
 * Text from another user as it may go to a terminal: control characters (a line break,
 * an escape sequence that would move the cursor, retitle the window or write the
 * clipboard) shown as the Unicode control pictures (␊, ␛...), never sent as they are.
 */
export function printable (text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, ch => {
    const code = ch.charCodeAt(0)
    return code < 0x20 ? String.fromCharCode(0x2400 + code) : code === 0x7f ? '\u2421' : '\ufffd'
  })
}

/** A direct message as it arrives live: `[DM from alice] (12:00:01) hi`. */
export function liveDmLine (m: Pick<ChatMessage, 'from' | 'sentAt' | 'text'>): string {
  return `[DM from ${m.from}] (${clock(m.sentAt)}) ${printable(m.text)}`
}

/** The `[offline]` listing shown at login: a header, then one indented line per message, oldest first. */
export function offlineLines (messages: Array<Pick<ChatMessage, 'from' | 'sentAt' | 'text'> & { label?: string }>): string[] {
  return [
    `[offline] You have ${messages.length} message(s):`,
    ...messages.map(m => `  [${clock(m.sentAt)}] [${m.label ?? `DM from ${m.from}`}] ${printable(m.text)}`)
  ]
}

/** What happened to a message or request the user sent. */
export function deliveryText (d: Delivery): string {
  if (d.status === 'delivered') return 'delivered'
  if (d.status === 'queued') return d.where === 'mailbox' ? 'queued for offline delivery' : 'queued on this peer: will be sent when the network is reachable'
  return `failed: ${d.reason ?? 'unknown reason'}`
}

/** A message state as a word (command mode's `[msg]` lines, `history`). */
export function stateText (s: Pick<MessageStateChange, 'state' | 'where' | 'reason'>): string {
  if (s.state === 'queued') return s.where === 'mailbox' ? 'queued for offline delivery' : 'queued on this peer'
  if (s.state === 'failed') return `failed${s.reason != null ? `: ${s.reason}` : ''}`
  return s.state
}

/**
 * A conversation's history as far as the network lets it be read now: `unreadPages` > 0
 * when some older pages could not be read (the messages are what is known; a later read
 * tries those pages again).
 */
export async function historyAsFarAsKnown (reading: Promise<ChatMessage[]>): Promise<{ messages: ChatMessage[], unreadPages: number }> {
  try {
    return { messages: await reading, unreadPages: 0 }
  } catch (err) {
    if (!(err instanceof IncompleteHistoryError)) throw err
    return { messages: err.entries as ChatMessage[], unreadPages: err.unreadPages }
  }
}

/** The line that says a history is missing pages. */
export function unreadPagesText (unreadPages: number): string {
  return `${unreadPages} page(s) of older messages could not be read from the network now: read the history again`
}

/** A friend envelope refused because it came under another key than the one first known (both fingerprints). */
export function keyChangedLine (d: { username: string, pinned: string, found: string }): string {
  return `${d.username}'s key changed: you know them as ${d.pinned}, this came from ${d.found}; refused`
}
