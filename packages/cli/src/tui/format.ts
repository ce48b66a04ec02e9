/** How the terminal UI writes times, messages and delivery results. */
import type { ChatMessage, Delivery, MessageStateInfo } from '@conf-chat/node'
import type { Colors } from 'picocolors/types.js'

import { clock, printable } from '../format.js'

export { clock }

const pad = (n: number): string => String(n).padStart(2, '0')

/** Local date and time for history older than today, YYYY-MM-DD HH:MM:SS. */
export function stamp (ms: number, now = Date.now()): string {
  const d = new Date(ms)
  const today = new Date(now)
  if (d.toDateString() === today.toDateString()) return clock(ms)
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${clock(ms)}`
}

/** One message of a conversation: `[12:00:01] bob: hi` (the user's own as `you`). */
export function messageLine (c: Colors, m: Pick<ChatMessage, 'from' | 'text' | 'sentAt' | 'direction'>, now = Date.now()): string {
  const who = m.direction === 'out' ? c.cyan('you') : c.magenta(m.from)
  return `${c.dim(`[${stamp(m.sentAt, now)}]`)} ${who}: ${printable(m.text)}`
}

/** The state of a message the user sent, as the tail of its line: ` · delivered`. */
export function stateTail (c: Colors, s: MessageStateInfo | undefined): string {
  switch (s?.state) {
    case undefined: return ''
    case 'sending': return c.dim(' · sending')
    case 'queued': return c.yellow(s.where === 'mailbox' ? ' · in their mailbox' : ' · queued here')
    case 'delivered': return c.green(' · delivered')
    case 'read': return c.green(' · read')
    case 'failed': return c.red(' · not sent')
  }
}

/**
 * A conference message's state from its copies' (one per member): read or delivered by
 * all, read by some (`· read by 2 of 3`), waiting in mailboxes, not sent.
 */
export function copiesTail (c: Colors, copies: ReadonlyMap<string, MessageStateInfo>): string {
  const all = [...copies.values()]
  const read = all.filter(s => s.state === 'read').length
  const reached = all.filter(s => s.state === 'read' || s.state === 'delivered').length
  if (all.length === 0) return ''
  if (read === all.length) return stateTail(c, { state: 'read' })
  if (read > 0) return c.green(` · read by ${read} of ${all.length}`)
  if (reached === all.length) return stateTail(c, { state: 'delivered' })
  if (all.every(s => s.state === 'failed')) return stateTail(c, { state: 'failed' })
  if (all.some(s => s.state === 'sending')) return stateTail(c, { state: 'sending' })
  return stateTail(c, all.some(s => s.state === 'queued' && s.where === 'mailbox') ? { state: 'queued', where: 'mailbox' } : { state: 'queued', where: 'outbox' })
}

/** What became of a message the user sent, as a short tail for its line. */
export function deliveryNote (c: Colors, to: string, d: Pick<Delivery, 'status' | 'where' | 'reason'>): string {
  if (d.status === 'delivered') return c.green('✓')
  if (d.status === 'queued' && d.where === 'mailbox') return c.yellow(`(${to} is offline: left in their mailbox)`)
  if (d.status === 'queued') return c.yellow('(kept in the outbox: sent when the network answers)')
  return c.red(`✖ not sent${d.reason != null ? `: ${d.reason}` : ''}`)
}

export function plural (n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`
}
