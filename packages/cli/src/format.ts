/** How events and messages read as plain lines (command mode, and notices in the UI). */
import type { ChatMessage, Delivery } from '@conf-chat/node'

/** Local wall-clock time, HH:MM:SS. */
export function clock (ms: number): string {
  const d = new Date(ms)
  return [d.getHours(), d.getMinutes(), d.getSeconds()].map(n => String(n).padStart(2, '0')).join(':')
}

/** A direct message as it arrives live: `[DM from alice] (12:00:01) hi`. */
export function liveDmLine (m: Pick<ChatMessage, 'from' | 'sentAt' | 'text'>): string {
  return `[DM from ${m.from}] (${clock(m.sentAt)}) ${m.text}`
}

/** The `[offline]` listing shown at login: a header, then one indented line per message, oldest first. */
export function offlineLines (messages: Array<Pick<ChatMessage, 'from' | 'sentAt' | 'text'> & { label?: string }>): string[] {
  return [
    `[offline] You have ${messages.length} message(s):`,
    ...messages.map(m => `  [${clock(m.sentAt)}] [${m.label ?? `DM from ${m.from}`}] ${m.text}`)
  ]
}

/** What happened to a message or request the user sent. */
export function deliveryText (d: Delivery): string {
  if (d.status === 'delivered') return 'delivered'
  if (d.status === 'queued') return d.where === 'mailbox' ? 'queued for offline delivery' : 'queued on this peer: will be sent when the network is reachable'
  return `failed: ${d.reason ?? 'unknown reason'}`
}
