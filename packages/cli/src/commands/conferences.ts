/**
 * Conferences: conf-create, conf-list, conf-send, conf-invite, conf-remove, conf-leave,
 * conf-members, conf-history; and the lines that tell of conference events. A conference
 * id may be shortened to any unique start of it (`conf-3fa9`).
 */
import { isConferenceMessage, type ChatNode, type ConferenceDelivery, type ConferenceInfo, type IncomingMessage } from '@conf-chat/node'
import { UsageError } from '../errors.js'
import { clock, printable } from '../format.js'
import type { Command } from './types.js'

const names = (args: string[]): string[] => args.map(a => a.toLowerCase())
const title = (c: Pick<ConferenceInfo, 'id' | 'name'>): string => `${c.id} (${c.name})`

/** How a message reached the members: `2 delivered, 1 queued for offline delivery`. */
export function fanOutText (deliveries: ConferenceDelivery[]): string {
  if (deliveries.length === 0) return 'no other member'
  const delivered = deliveries.filter(d => d.delivery.status === 'delivered').length
  const mailbox = deliveries.filter(d => d.delivery.status === 'queued' && d.delivery.where === 'mailbox').length
  const outbox = deliveries.filter(d => d.delivery.status === 'queued' && d.delivery.where !== 'mailbox')
  const failed = deliveries.filter(d => d.delivery.status === 'failed')
  const parts = [`${delivered} delivered`]
  if (mailbox > 0) parts.push(`${mailbox} queued for offline delivery`)
  if (outbox.length > 0) parts.push(`${outbox.length} queued on this peer (${outbox.map(d => d.username).join(', ')})`)
  if (failed.length > 0) parts.push(`${failed.length} failed (${failed.map(d => `${d.username}: ${d.delivery.reason ?? 'unknown reason'}`).join('; ')})`)
  return parts.join(', ')
}

/** A conference message as it arrives live: `[CONF conf-3fa9... / from alice] (12:00:01) hi`. */
export function liveConferenceLine (m: { conference: { id: string }, from: string, sentAt: number, text: string }): string {
  return `[CONF ${m.conference.id} / from ${m.from}] (${clock(m.sentAt)}) ${printable(m.text)}`
}

/** The label of a message in the `[offline]` listing: conference messages name their conference. */
export function withConferenceLabel<M extends IncomingMessage> (m: M): M & { label?: string } {
  return isConferenceMessage(m) ? { ...m, label: `CONF ${m.conference.id} / from ${m.from}` } : m
}

/** Conference events as notice lines (command mode). */
export function subscribeConferenceNotices (node: ChatNode, notice: (line: string) => void): void {
  node.addEventListener('conference:invited', ({ detail }) => { notice(`[conf] ${detail.by} invited you to conference ${title(detail.conference)}`) })
  node.addEventListener('conference:message', ({ detail }) => { notice(liveConferenceLine(detail)) })
  node.addEventListener('conference:joined', ({ detail }) => {
    notice(`[conf] ${detail.by} added ${detail.usernames.join(', ')} to conference ${title(detail.conference)}`)
  })
  node.addEventListener('conference:left', ({ detail }) => { notice(`[conf] ${detail.username} left conference ${title(detail.conference)}`) })
  node.addEventListener('conference:removed', ({ detail }) => {
    notice(`[conf] ${detail.by} removed ${detail.you ? 'you' : detail.usernames.join(', ')} from conference ${title(detail.conference)}`)
  })
}

export const confCreate: Command = {
  usage: 'conf-create <name> <friend...>',
  summary: 'create a conference with friends (each is invited, live or at their next login)',
  async run (args, ctx) {
    if (args.length < 2) throw new UsageError()
    const [name, ...users] = args
    const { conference } = await ctx.app.node.createConference(name!, names(users))
    ctx.print(`[conf-create] Created conference ${title(conference)} with participants: ${conference.members.join(', ')}`)
  }
}

export const confList: Command = {
  usage: 'conf-list',
  summary: 'your conferences: id, name, owner, members, how many are online',
  async run (args, ctx) {
    if (args.length > 0) throw new UsageError()
    const list = await ctx.app.node.conferences()
    ctx.print(`[conf-list] ${list.length} conference(s)`)
    for (const c of list) {
      ctx.print(`  ${c.id}  ${c.name}  owner: ${c.owner}  members: ${c.members.join(', ')}  online: ${c.online ?? 0}/${c.members.length}`)
    }
  }
}

export const confSend: Command = {
  usage: 'conf-send <conf-id> <text...>',
  summary: 'send to every member of a conference (mailboxes for those offline)',
  async run (args, ctx) {
    if (args.length < 2) throw new UsageError()
    const [id, ...words] = args
    const r = await ctx.app.node.sendConferenceMessage(id!, words.join(' '))
    ctx.print(`[conf-send] to ${r.conference}: ${fanOutText(r.deliveries)}`)
  }
}

export const confInvite: Command = {
  usage: 'conf-invite <conf-id> <friend...>',
  summary: 'invite more friends to your conference (the owner only); they see what is sent from now on',
  async run (args, ctx) {
    if (args.length < 2) throw new UsageError()
    const [id, ...users] = args
    const r = await ctx.app.node.inviteToConference(id!, names(users))
    ctx.print(`[conf-invite] Invited ${r.usernames.join(', ')} to conference ${title(r.conference)}`)
  }
}

export const confRemove: Command = {
  usage: 'conf-remove <conf-id> <member...>',
  summary: 'remove members from your conference (the owner only)',
  async run (args, ctx) {
    if (args.length < 2) throw new UsageError()
    const [id, ...users] = args
    const r = await ctx.app.node.removeFromConference(id!, names(users))
    ctx.print(`[conf-remove] Removed ${r.usernames.join(', ')} from conference ${title(r.conference)}`)
  }
}

export const confLeave: Command = {
  usage: 'conf-leave <conf-id>',
  summary: 'leave a conference (the others are told; you get nothing sent afterwards)',
  async run (args, ctx) {
    if (args.length !== 1) throw new UsageError()
    const r = await ctx.app.node.leaveConference(args[0]!)
    ctx.print(`[conf-leave] Left conference ${title(r.conference)}`)
  }
}

export const confMembers: Command = {
  usage: 'conf-members <conf-id>',
  summary: 'the members of a conference, online or offline',
  async run (args, ctx) {
    if (args.length !== 1) throw new UsageError()
    const { conference, members } = await ctx.app.node.conferenceMembers(args[0]!)
    ctx.print(`[conf-members] ${members.length} member(s) in ${title(conference)}`)
    for (const m of members) ctx.print(`  ${m.username} (${[...(m.owner ? ['owner'] : []), m.online ? 'online' : 'offline'].join(', ')})`)
  }
}

export const confHistory: Command = {
  usage: 'conf-history <conf-id>',
  summary: 'the messages you sent and received in a conference, from any peer; tells the members you read them (unless --no-read-receipts)',
  async run (args, ctx) {
    if (args.length !== 1) throw new UsageError()
    const { conference, messages } = await ctx.app.node.conferenceHistory(args[0]!)
    ctx.print(`[conf-history] ${messages.length} message(s) in ${title(conference)}`)
    for (const m of messages) ctx.print(`  [${clock(m.sentAt)}] ${m.from}: ${printable(m.text)}`)
    // its members are told what was read (unless --no-read-receipts)
    await ctx.app.node.markConferenceRead(conference.id)
  }
}
