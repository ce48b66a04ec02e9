/** History: pick a friend, read the whole conversation (both directions, local times). */
import { select } from '@inquirer/prompts'
import { flushNotices, print, promptContext, withSpinner, type TuiContext } from './context.js'
import { messageLine, plural } from './format.js'

export async function historyScreen (ctx: TuiContext): Promise<void> {
  const io = promptContext(ctx, AbortSignal.any([ctx.signal, ctx.inbox.sessionSignal]))
  flushNotices(ctx)
  const friends = await withSpinner(ctx, 'Reading your friends…', ctx.node.friends())
  if (friends.length === 0) {
    print(ctx, 'No history yet: conversations are with friends (send a friend request from the list).')
    return
  }
  const BACK = '\u0000back'
  const username = await select<string>({
    message: 'Whose conversation?',
    choices: [...friends.map(f => ({ value: f.username, name: f.username })), { value: BACK, name: 'Back' }],
    pageSize: 12
  }, io)
  if (username === BACK) return
  const history = await withSpinner(ctx, `Reading the conversation with ${username}…`, ctx.node.history(username))
  print(ctx, ctx.colors.bold(`── History with ${username}: ${plural(history.length, 'message')} ──`))
  for (const m of history) print(ctx, messageLine(ctx.colors, m))
  print(ctx, ctx.colors.bold('── end ──'))
}
