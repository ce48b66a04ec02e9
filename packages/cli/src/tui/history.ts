/** History: pick a friend or a conference, read the whole conversation (local times). */
import { select, Separator } from './screen.js'
import type { ChatMessage } from '@conf-chat/node'
import { flushNotices, print, promptContext, withSpinner, type TuiContext } from './context.js'
import { messageLine, plural, stateTail } from './format.js'
import { historyAsFarAsKnown, unreadPagesText } from '../format.js'

type HistoryChoice = { type: 'friend', username: string } | { type: 'conference', id: string } | { type: 'back' }

export async function historyScreen (ctx: TuiContext): Promise<void> {
  const io = promptContext(ctx, AbortSignal.any([ctx.signal, ctx.inbox.sessionSignal]))
  flushNotices(ctx)
  const [friends, conferences] = await withSpinner(ctx, 'Reading your friends and conferences…',
    Promise.all([ctx.node.friends(), ctx.node.conferences()]))
  if (friends.length + conferences.length === 0) {
    print(ctx, 'No history yet: conversations are with friends (send a friend request from the list).')
    return
  }
  const choice = await select<HistoryChoice>({
    message: 'Whose conversation?',
    choices: [
      ...friends.map(f => ({ value: { type: 'friend', username: f.username } as const, name: f.username })),
      ...(conferences.length > 0 ? [new Separator('Conferences')] : []),
      ...conferences.map(c => ({ value: { type: 'conference', id: c.id } as const, name: `# ${c.name}  ${ctx.colors.dim(c.id)}` })),
      { value: { type: 'back' } as const, name: 'Back' }
    ],
    pageSize: 12
  }, io)
  if (choice.type === 'back') return
  let title: string
  let messages: ChatMessage[]
  let unreadPages = 0
  if (choice.type === 'friend') {
    title = choice.username
    ;({ messages, unreadPages } = await withSpinner(ctx, `Reading the conversation with ${choice.username}…`, historyAsFarAsKnown(ctx.node.history(choice.username))))
  } else {
    const found = await withSpinner(ctx, 'Reading the conference…', ctx.node.conferenceHistory(choice.id))
    title = `# ${found.conference.name}`
    messages = found.messages
  }
  print(ctx, ctx.colors.bold(`── History with ${title}: ${plural(messages.length, 'message')} ──`))
  // a message sent from this peer with its state
  for (const m of messages) print(ctx, messageLine(ctx.colors, m) + (m.state != null ? stateTail(ctx.colors, { state: m.state, ...(m.where != null ? { where: m.where } : {}) }) : ''))
  if (unreadPages > 0) print(ctx, ctx.colors.yellow(unreadPagesText(unreadPages)))
  print(ctx, ctx.colors.bold('── end ──'))
}
