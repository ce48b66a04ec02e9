/**
 * A direct chat with one friend (a conversation screen): says whether they are online;
 * to a friend who is offline, messages go to their mailbox, and the screen says so.
 */
import { conversationScreen, type ChatResult, type ConversationHandle } from './conversation.js'
import { deliveryNote } from './format.js'
import { historyAsFarAsKnown, unreadPagesText } from '../format.js'
import { stateOfDelivery } from '@conf-chat/node'
import type { TuiContext } from './context.js'
import { coalesced } from './coalesced.js'

export type { ChatResult } from './conversation.js'

export async function chatScreen (ctx: TuiContext, username: string, fullName = ''): Promise<ChatResult> {
  const c = ctx.colors
  let screen: ConversationHandle | undefined
  const read = coalesced(async () => { await ctx.node.markRead(username) })
  try {
    return await conversationScreen(ctx, {
      focus: {
        username,
        onPresence: online => {
          if (!online) screen?.notice(c.dim(`  what you send now goes to ${username}'s mailbox`))
        }
      },
      title: `Chat with ${username}${fullName !== '' ? ` (${fullName})` : ''}`,
      opening: `Opening the chat with ${username}…`,
      unread: ctx.inbox.unread(username),
      load: async () => {
        const [{ messages: history, unreadPages }, presence] = await Promise.all([
          historyAsFarAsKnown(ctx.node.history(username)),
          ctx.node.presenceOf(username).catch(() => undefined)
        ])
        const online = presence?.online === true
        return {
          history,
          status: online ? c.green('online') : c.dim('offline'),
          notes: [
            ...(unreadPages > 0 ? [c.yellow(unreadPagesText(unreadPages))] : []),
            ...(online ? [] : [c.yellow(`${username} is offline: what you send goes to their mailbox, and they get it at their next login.`)])
          ]
        }
      },
      send: async text => {
        const delivery = await ctx.node.sendMessage(username, text)
        return {
          id: delivery.id,
          state: stateOfDelivery(delivery),
          // the line's state says "delivered"; the rest needs a word of explanation
          note: delivery.status !== 'delivered' ? deliveryNote(c, username, delivery) : undefined
        }
      },
      // what is shown here is read: the friend is told (unless read receipts are off)
      seen: () => { read.run() },
      names: () => [username],
      states: true
    }, handle => { screen = handle })
  } finally {
    ctx.inbox.markRead(username)
  }
}
