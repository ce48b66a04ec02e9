/**
 * Friend requests: the incoming ones (accept or reject), the user's own that wait for an
 * answer (withdraw), and a way to ask someone new. Also the small screen shown when a
 * user who is not a friend is picked in the list.
 */
import { select, input, confirm } from './screen.js'
import { checkUsername, checkFriendNote } from '@conf-chat/protocol'
import type { FriendActionResult, FriendRequests } from '@conf-chat/node'
import { errorLine, flushNotices, isQuit, print, promptContext, validator, withSpinner, type TuiContext } from './context.js'
import { stamp } from './format.js'

type RequestChoice =
  | { type: 'incoming', username: string }
  | { type: 'outgoing', username: string }
  | { type: 'add' }
  | { type: 'back' }

/** One line for what a friend action did and how the other side was told. */
export function friendResultLine (r: FriendActionResult): string {
  const told = r.delivery.status === 'delivered'
    ? 'told at once'
    : r.delivery.status === 'queued' ? 'they will be told when they log in' : `could not tell them${r.delivery.reason != null ? `: ${r.delivery.reason}` : ''}`
  switch (r.action) {
    case 'requested': return `Friend request sent to ${r.username} (${told})`
    case 'accepted': return `You and ${r.username} are friends now (${told})`
    case 'rejected': return `Turned down ${r.username}'s request (${told})`
    case 'removed': return `${r.username} removed from your friends and requests (${told})`
  }
}

/** Run one friend action with a spinner; a refusal (not a friend, unknown user...) is one line. */
async function act (ctx: TuiContext, text: string, work: Promise<FriendActionResult>): Promise<void> {
  try {
    await withSpinner(ctx, text, work, friendResultLine)
  } catch (err) {
    if (isQuit(err)) throw err
  }
}

export async function friendRequestsScreen (ctx: TuiContext): Promise<void> {
  const io = promptContext(ctx, AbortSignal.any([ctx.signal, ctx.inbox.sessionSignal]))
  for (;;) {
    flushNotices(ctx)
    const requests: FriendRequests = await withSpinner(ctx, 'Reading friend requests…', ctx.node.friendRequests())
    ctx.inbox.setIncomingRequests(requests.incoming.map(r => r.username))
    const choice = await select<RequestChoice>({
      message: requests.incoming.length + requests.outgoing.length === 0 ? 'No friend requests' : 'Friend requests',
      choices: [
        ...requests.incoming.map(r => ({
          value: { type: 'incoming', username: r.username } as const,
          short: r.username,
          name: `${ctx.colors.yellow('?')} ${r.username} asks to be friends${r.note != null ? `: "${r.note}"` : ''} ${ctx.colors.dim(`(${stamp(r.at)})`)}`
        })),
        ...requests.outgoing.map(r => ({
          value: { type: 'outgoing', username: r.username } as const,
          short: r.username,
          name: `${ctx.colors.dim('…')} you asked ${r.username} ${ctx.colors.dim(`(${stamp(r.at)}), waiting for an answer`)}`
        })),
        { value: { type: 'add' } as const, name: 'Send a friend request…' },
        { value: { type: 'back' } as const, name: 'Back' }
      ],
      pageSize: 12
    }, io)
    if (choice.type === 'back') return
    if (choice.type === 'add') {
      const username = (await input({ message: 'Username to ask', validate: validator(checkUsername) }, io)).trim()
      await askToBeFriends(ctx, username)
    } else if (choice.type === 'incoming') {
      const answer = await select({
        message: `${choice.username} asks to be friends`,
        choices: [{ value: 'accept', name: 'Accept' }, { value: 'reject', name: 'Reject' }, { value: 'later', name: 'Decide later' }]
      }, io)
      if (answer === 'accept') await act(ctx, `Accepting ${choice.username}…`, ctx.node.acceptFriend(choice.username))
      if (answer === 'reject' && await sure(`Turn down ${choice.username}? They are told.`, io)) await act(ctx, `Turning down ${choice.username}…`, ctx.node.rejectFriend(choice.username))
    } else {
      const answer = await select({
        message: `Your request to ${choice.username}`,
        choices: [{ value: 'keep', name: 'Keep waiting' }, { value: 'withdraw', name: 'Withdraw it' }]
      }, io)
      if (answer === 'withdraw' && await sure(`Withdraw your request to ${choice.username}?`, io)) await act(ctx, `Withdrawing the request to ${choice.username}…`, ctx.node.removeFriend(choice.username))
    }
  }
}

/** Ask `username` to be friends, with an optional note. */
export async function askToBeFriends (ctx: TuiContext, username: string): Promise<void> {
  const io = promptContext(ctx, AbortSignal.any([ctx.signal, ctx.inbox.sessionSignal]))
  const note = (await input({ message: 'A note with the request (optional)', validate: validator(checkFriendNote) }, io)).trim()
  await act(ctx, `Asking ${username}…`, ctx.node.addFriend(username, note === '' ? undefined : note))
}

/** Picked in the list but not a friend: offer to ask (or to answer their request). */
export async function strangerScreen (ctx: TuiContext, username: string): Promise<void> {
  const io = promptContext(ctx, AbortSignal.any([ctx.signal, ctx.inbox.sessionSignal]))
  let requests: FriendRequests
  try {
    requests = await withSpinner(ctx, `Looking up ${username}…`, ctx.node.friendRequests())
  } catch (err) {
    if (isQuit(err)) throw err
    print(ctx, errorLine(ctx, err))
    return
  }
  if (requests.incoming.some(r => r.username === username)) {
    const answer = await select({
      message: `${username} asked to be friends`,
      choices: [{ value: 'accept', name: 'Accept' }, { value: 'reject', name: 'Reject' }, { value: 'back', name: 'Back' }]
    }, io)
    if (answer === 'accept') await act(ctx, `Accepting ${username}…`, ctx.node.acceptFriend(username))
    if (answer === 'reject' && await sure(`Turn down ${username}? They are told.`, io)) await act(ctx, `Turning down ${username}…`, ctx.node.rejectFriend(username))
    return
  }
  if (requests.outgoing.some(r => r.username === username)) {
    print(ctx, `You asked ${username} to be friends; you can chat once they accept.`)
    return
  }
  const answer = await select({
    message: `${username} is not your friend yet: messages go to friends only`,
    choices: [{ value: 'ask', name: `Send ${username} a friend request` }, { value: 'back', name: 'Back' }]
  }, io)
  if (answer === 'ask') await askToBeFriends(ctx, username)
}

/** What cannot be undone is confirmed first (no is the default). */
async function sure (message: string, io: ReturnType<typeof promptContext>): Promise<boolean> {
  return await confirm({ message, default: false }, io)
}
