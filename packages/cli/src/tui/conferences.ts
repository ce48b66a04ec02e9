/**
 * Conferences: the user's group chats with members, online counts and unread counts; a
 * conference opens its chat (a conversation screen), its member list, invitations (the
 * owner invites friends) or leaving it. A new one is made from a name and some friends.
 */
import { select, input, checkbox, confirm } from './screen.js'
import { checkConferenceName } from '@conf-chat/protocol'
import { stateOfDelivery, type ConferenceInfo, type ConferenceMemberInfo, type ConferenceChangeResult, type ConferenceDelivery, type MessageStateInfo } from '@conf-chat/node'
import { flushNotices, isQuit, print, promptContext, validator, withSpinner, type TuiContext } from './context.js'
import { conversationScreen, type ChatResult } from './conversation.js'
import { plural } from './format.js'
import { coalesced } from './coalesced.js'

type ListChoice = { type: 'open', id: string } | { type: 'create' } | { type: 'back' }
type ConferenceChoice = 'chat' | 'members' | 'invite' | 'leave' | 'back'

/** How the members were told, or what became of a message: only what did not go live is named. */
export function deliveriesNote (deliveries: ConferenceDelivery[]): string | undefined {
  const live = deliveries.filter(d => d.delivery.status === 'delivered').map(d => d.username)
  const mailbox = deliveries.filter(d => d.delivery.status === 'queued').map(d => d.username)
  const failed = deliveries.filter(d => d.delivery.status === 'failed')
  if (mailbox.length === 0 && failed.length === 0) return undefined
  return [
    live.length > 0 ? `delivered to ${live.join(', ')}` : '',
    mailbox.length > 0 ? `left for ${mailbox.join(', ')} (offline)` : '',
    ...failed.map(d => `✖ not sent to ${d.username}${d.delivery.reason != null ? `: ${d.delivery.reason}` : ''}`)
  ].filter(s => s !== '').join('; ')
}

/**
 * A conference message's state on its line: delivered once every member's peer has it,
 * waiting in mailboxes while some copy does, not sent when no copy could be (the note
 * under it names who is where).
 */
export function conferenceState (deliveries: ConferenceDelivery[]): MessageStateInfo {
  const statuses = deliveries.map(d => d.delivery.status)
  if (statuses.every(s => s === 'delivered')) return { state: 'delivered' }
  if (statuses.every(s => s === 'failed')) return { state: 'failed' }
  return deliveries.some(d => d.delivery.status === 'queued' && d.delivery.where === 'mailbox') ? { state: 'queued', where: 'mailbox' } : { state: 'queued', where: 'outbox' }
}

function changeLine (what: string, r: ConferenceChangeResult): string {
  const note = deliveriesNote(r.deliveries)
  return `${what}${note != null ? ` (${note})` : ''}`
}

export async function conferencesScreen (ctx: TuiContext): Promise<ChatResult> {
  const io = promptContext(ctx, AbortSignal.any([ctx.signal, ctx.inbox.sessionSignal]))
  let last: ListChoice | undefined
  for (;;) {
    flushNotices(ctx)
    const list = await withSpinner(ctx, 'Reading your conferences…', ctx.node.conferences())
    const choices = [
      ...list.map(conf => {
        const unread = ctx.inbox.conferenceUnread(conf.id)
        const counts = `${plural(conf.members.length, 'member')}, ${conf.online ?? 0} online · owner ${conf.owner}`
        return {
          value: { type: 'open', id: conf.id } as const,
          short: conf.name,
          name: `# ${conf.name}  ${ctx.colors.dim(`${conf.id} · ${counts}`)}${unread > 0 ? ` ${ctx.colors.bold(ctx.colors.yellow(`${unread} new`))}` : ''}`
        }
      }),
      { value: { type: 'create' } as const, name: 'Create a conference…' },
      { value: { type: 'back' } as const, name: 'Back' }
    ]
    const choice: ListChoice = await select<ListChoice>({
      message: list.length === 0 ? 'No conferences yet' : 'Conferences',
      choices,
      default: choices.find(c => last != null && JSON.stringify(c.value) === JSON.stringify(last))?.value,
      pageSize: 12
    }, io)
    last = choice
    if (choice.type === 'back') return 'back'
    if (choice.type === 'create') {
      await createConference(ctx)
      continue
    }
    const conference = list.find(c => c.id === choice.id)!
    if (await conferenceMenu(ctx, conference) === 'quit') return 'quit'
  }
}

async function createConference (ctx: TuiContext): Promise<void> {
  const io = promptContext(ctx, AbortSignal.any([ctx.signal, ctx.inbox.sessionSignal]))
  const friends = await withSpinner(ctx, 'Reading your friends…', ctx.node.friends())
  if (friends.length === 0) {
    print(ctx, 'A conference is made with friends: send a friend request from the list first.')
    return
  }
  const name = (await input({ message: 'Conference name', validate: validator(checkConferenceName) }, io)).trim()
  const members = await checkbox({
    message: 'Invite which friends? (space to pick, enter when done)',
    choices: friends.map(f => ({ value: f.username, short: f.username, name: `${f.online ? ctx.colors.green('●') : ctx.colors.dim('○')} ${f.username}` })),
    validate: picked => picked.length > 0 || 'pick at least one friend',
    pageSize: 12
  }, io)
  await act(ctx, `Creating ${name}…`, ctx.node.createConference(name, members),
    r => changeLine(`Created conference ${r.conference.id} (${r.conference.name}) with participants: ${r.conference.members.join(', ')}`, r))
}

/** One conference's own menu; returns 'quit' if its chat was left with Ctrl+C. */
async function conferenceMenu (ctx: TuiContext, conference: ConferenceInfo): Promise<ChatResult> {
  const io = promptContext(ctx, AbortSignal.any([ctx.signal, ctx.inbox.sessionSignal]))
  const owner = ctx.node.whoami().username === conference.owner
  const choice = await select<ConferenceChoice>({
    message: `# ${conference.name} (${conference.id})`,
    choices: [
      { value: 'chat', name: 'Open the chat' },
      { value: 'members', name: 'Members' },
      ...(owner ? [{ value: 'invite' as const, name: 'Invite friends…' }] : []),
      { value: 'leave', name: 'Leave the conference' },
      { value: 'back', name: 'Back' }
    ]
  }, io)
  switch (choice) {
    case 'chat':
      return await conferenceChatScreen(ctx, conference)
    case 'members': {
      const { members } = await withSpinner(ctx, 'Reading the members…', ctx.node.conferenceMembers(conference.id))
      print(ctx, ctx.colors.bold(`── ${conference.name}: ${plural(members.length, 'member')} ──`))
      for (const m of members) {
        print(ctx, `${m.online ? ctx.colors.green('●') : ctx.colors.dim('○')} ${m.username}${m.owner ? ctx.colors.dim(' (owner)') : ''}  ${m.online ? 'online' : ctx.colors.dim('offline')}`)
      }
      return 'back'
    }
    case 'invite': {
      const friends = await withSpinner(ctx, 'Reading your friends…', ctx.node.friends())
      const outside = friends.filter(f => !conference.members.includes(f.username))
      if (outside.length === 0) {
        print(ctx, 'All your friends are in this conference already.')
        return 'back'
      }
      const picked = await checkbox({
        message: 'Invite which friends? (space to pick, enter when done)',
        choices: outside.map(f => ({ value: f.username, short: f.username, name: `${f.online ? ctx.colors.green('●') : ctx.colors.dim('○')} ${f.username}` })),
        validate: p => p.length > 0 || 'pick at least one friend'
      }, io)
      await act(ctx, 'Inviting…', ctx.node.inviteToConference(conference.id, picked), r => changeLine(`Invited ${r.usernames.join(', ')} to ${conference.name}`, r))
      return 'back'
    }
    case 'leave': {
      if (await confirm({ message: `Leave ${conference.name}? You get nothing sent there afterwards.`, default: false }, io)) {
        await act(ctx, `Leaving ${conference.name}…`, ctx.node.leaveConference(conference.id), r => changeLine(`Left ${conference.name}`, r))
      }
      return 'back'
    }
    case 'back':
      return 'back'
  }
}

/** A conference's chat: every member gets what is sent, live if online, else in their mailbox. */
export async function conferenceChatScreen (ctx: TuiContext, conference: ConferenceInfo): Promise<ChatResult> {
  const c = ctx.colors
  const read = coalesced(async () => { await ctx.node.markConferenceRead(conference.id) })
  let names: string[] = conference.members
  const memberLines = (members: ConferenceMemberInfo[]): string[] =>
    [`${plural(members.length, 'member')}:`, ...members.map(m => `  ${m.online ? c.green('●') : c.dim('○')} ${m.username}${m.owner ? c.dim(' (owner)') : ''}`)]
  try {
    return await conversationScreen(ctx, {
      focus: { conference: conference.id },
      names: () => names,
      commands: {
        '/members': {
          usage: '/members',
          summary: 'who is in the conference, and who is online',
          run: async () => {
            const { members } = await ctx.node.conferenceMembers(conference.id)
            names = members.map(m => m.username)
            return memberLines(members)
          }
        }
      },
      title: `# ${conference.name} (${conference.id})`,
      opening: `Opening ${conference.name}…`,
      unread: ctx.inbox.conferenceUnread(conference.id),
      load: async () => {
        const [{ messages }, { members }] = await Promise.all([
          ctx.node.conferenceHistory(conference.id),
          ctx.node.conferenceMembers(conference.id)
        ])
        const me = ctx.node.whoami().username
        names = members.map(m => m.username)
        const others = members.filter(m => m.username !== me)
        const offline = others.filter(m => !m.online).map(m => m.username)
        return {
          history: messages,
          status: `${plural(members.length, 'member')}, ${members.filter(m => m.online).length} online`,
          notes: [
            c.dim(`members: ${members.map(m => `${m.online ? c.green('●') : '○'} ${m.username}`).join('  ')}`),
            ...(offline.length > 0 ? [c.yellow(`offline: ${offline.join(', ')}: they get what you send at their next login.`)] : [])
          ]
        }
      },
      send: async text => {
        const result = await ctx.node.sendConferenceMessage(conference.id, text)
        const copies = new Map(result.deliveries.map(d => [d.username, stateOfDelivery(d.delivery)]))
        return { id: result.id, state: conferenceState(result.deliveries), copies, note: deliveriesNote(result.deliveries) }
      },
      states: true,
      // what is shown here is read: each member whose messages it shows is told
      seen: () => { read.run() }
    })
  } finally {
    ctx.inbox.markConferenceRead(conference.id)
  }
}

async function act<T> (ctx: TuiContext, text: string, work: Promise<T>, done: (r: T) => string): Promise<void> {
  try {
    await withSpinner(ctx, text, work, done)
  } catch (err) {
    if (isQuit(err)) throw err // a refusal (not a friend, not the owner...) is on the spinner's line
  }
}
