/** Friends and direct messages: friend-add/-requests/-accept/-reject/-remove, friends, online-friends, msg, history. */
import { UsageError } from '../errors.js'
import { clock, deliveryText, historyAsFarAsKnown, printable, stateText, unreadPagesText } from '../format.js'
import type { Command } from './types.js'

function oneUser (args: string[]): string {
  if (args.length !== 1 || args[0] === '') throw new UsageError()
  return args[0]!.toLowerCase()
}

export const friendAdd: Command = {
  usage: 'friend-add <user> [note...]',
  summary: 'ask a user to be your friend (accepts if they already asked you)',
  async run (args, ctx) {
    if (args.length === 0) throw new UsageError()
    const [user, ...note] = args
    const r = await ctx.app.node.addFriend(user!.toLowerCase(), note.length > 0 ? note.join(' ') : undefined)
    if (r.action === 'accepted') ctx.print(`[friends] You and ${r.username} are now friends (${deliveryText(r.delivery)})`)
    else ctx.print(`[friends] Friend request sent to ${r.username} (${deliveryText(r.delivery)})`)
  }
}

export const friendRequests: Command = {
  usage: 'friend-requests',
  summary: 'friend requests you received and sent',
  async run (args, ctx) {
    if (args.length > 0) throw new UsageError()
    const { incoming, outgoing } = await ctx.app.node.friendRequests()
    ctx.print(`[friend-requests] ${incoming.length} incoming, ${outgoing.length} outgoing`)
    for (const r of incoming) ctx.print(`  from ${r.username}${r.note != null ? `: ${r.note}` : ''}`)
    for (const r of outgoing) ctx.print(`  to ${r.username}${r.note != null ? `: ${r.note}` : ''}`)
  }
}

export const friendAccept: Command = {
  usage: 'friend-accept <user>',
  summary: 'accept a friend request',
  async run (args, ctx) {
    const r = await ctx.app.node.acceptFriend(oneUser(args))
    ctx.print(`[friends] You and ${r.username} are now friends (${deliveryText(r.delivery)})`)
  }
}

export const friendReject: Command = {
  usage: 'friend-reject <user>',
  summary: 'turn down a friend request',
  async run (args, ctx) {
    const r = await ctx.app.node.rejectFriend(oneUser(args))
    ctx.print(`[friends] Rejected the friend request of ${r.username}`)
  }
}

export const friendRemove: Command = {
  usage: 'friend-remove <user>',
  summary: 'remove a friend (or withdraw your request)',
  async run (args, ctx) {
    const r = await ctx.app.node.removeFriend(oneUser(args))
    ctx.print(`[friends] Removed ${r.username} from your friends`)
  }
}

export const friends: Command = {
  usage: 'friends',
  summary: 'your friends, online or offline',
  async run (args, ctx) {
    if (args.length > 0) throw new UsageError()
    const list = await ctx.app.node.friends()
    ctx.print(`[friends] ${list.length} friend${list.length === 1 ? '' : 's'}`)
    for (const f of list) ctx.print(`  ${f.username} (${f.online ? 'online' : 'offline'})`)
  }
}

export const onlineFriends: Command = {
  usage: 'online-friends',
  summary: 'your friends who are online now',
  async run (args, ctx) {
    if (args.length > 0) throw new UsageError()
    const list = await ctx.app.node.onlineFriends()
    ctx.print(`[online-friends] ${list.length} online`)
    for (const f of list) ctx.print(`  ${f.username}`)
  }
}

export const msg: Command = {
  usage: 'msg <friend> <text...>',
  summary: 'send a direct message (to the mailbox if your friend is offline)',
  async run (args, ctx) {
    if (args.length < 2) throw new UsageError()
    const [user, ...words] = args
    const d = await ctx.app.node.sendMessage(user!.toLowerCase(), words.join(' '))
    ctx.print(`[msg] to ${user!.toLowerCase()}: ${deliveryText(d)}`)
  }
}

export const history: Command = {
  usage: 'history <friend>',
  summary: 'your conversation with a friend, both directions, from any peer; tells them you read it (unless --no-read-receipts)',
  async run (args, ctx) {
    const user = oneUser(args)
    const { messages, unreadPages } = await historyAsFarAsKnown(ctx.app.node.history(user))
    ctx.print(`[history] ${messages.length} message(s) with ${user}`)
    // a message sent from this peer says what became of it
    for (const m of messages) ctx.print(`  [${clock(m.sentAt)}] ${m.from}: ${printable(m.text)}${m.state != null ? ` (${stateText({ ...m, state: m.state })})` : ''}`)
    if (unreadPages > 0) ctx.print(`[history] ${unreadPagesText(unreadPages)}`)
    await ctx.app.node.markRead(user)
  }
}
