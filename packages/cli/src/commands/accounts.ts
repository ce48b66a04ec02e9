/** Account commands: register, login, logout, passwd, users, search. */
import { UsageError } from '../errors.js'
import type { Command, CommandContext } from './types.js'
import type { DirectoryUser } from '@conf-chat/node'

/** A value from the command line if given, else from the next input line. */
async function argOrAsk (ctx: CommandContext, given: string | undefined, prompt: string, secret = false): Promise<string> {
  if (given != null) return given
  return (await ctx.ask(prompt, { secret })).trim()
}

export const register: Command = {
  usage: 'register [username]  (then: password, full name on the next lines)',
  summary: 'create an account in the network and log in',
  async run (args, ctx) {
    if (args.length > 1) throw new UsageError()
    const username = await argOrAsk(ctx, args[0], 'username: ')
    const password = await ctx.ask('password: ', { secret: true })
    const fullName = await ctx.ask('full name: ')
    const profile = await ctx.app.node.register({ username, password, fullName })
    ctx.print(`[register] Registered ${profile.username} (${profile.fullName}); logged in`)
  }
}

export const login: Command = {
  usage: 'login [username]  (then: password on the next line)',
  summary: 'log in to your account, from any peer',
  async run (args, ctx) {
    if (args.length > 1) throw new UsageError()
    const username = await argOrAsk(ctx, args[0], 'username: ')
    const password = await ctx.ask('password: ', { secret: true })
    const { profile } = await ctx.app.node.login(username, password)
    ctx.print(`[login] Logged in as ${profile.username} (${profile.fullName})`)
  }
}

export const logout: Command = {
  usage: 'logout',
  summary: 'log out (friends see you offline at once)',
  async run (args, ctx) {
    if (args.length > 0) throw new UsageError()
    const username = ctx.app.node.whoami().username
    await ctx.app.node.logout()
    ctx.print(`[logout] Logged out ${username}`)
  }
}

export const passwd: Command = {
  usage: 'passwd  (then: old password, new password on the next lines)',
  summary: 'change your password (your identity keys stay the same)',
  async run (args, ctx) {
    if (args.length > 0) throw new UsageError()
    ctx.app.node.whoami()
    const oldPassword = await ctx.ask('old password: ', { secret: true })
    const newPassword = await ctx.ask('new password: ', { secret: true })
    await ctx.app.node.changePassword(oldPassword, newPassword)
    ctx.print('[passwd] Password changed')
  }
}

function printUsers (ctx: CommandContext, tag: string, users: DirectoryUser[]): void {
  ctx.print(`[${tag}] ${users.length} user${users.length === 1 ? '' : 's'}`)
  const width = Math.max(0, ...users.map(u => u.username.length))
  for (const u of users) ctx.print(`  ${u.online ? 'online ' : 'offline'}  ${u.username.padEnd(width)}  ${u.fullName}`)
}

export const users: Command = {
  usage: 'users [prefix]',
  summary: 'registered users with full names and online status, online first',
  async run (args, ctx) {
    if (args.length > 1) throw new UsageError()
    printUsers(ctx, 'users', await ctx.app.node.users(args[0] ?? ''))
  }
}

export const search: Command = {
  usage: 'search <text>',
  summary: 'find users by username prefix or a part of the full name',
  async run (args, ctx) {
    if (args.length === 0) throw new UsageError()
    printUsers(ctx, 'search', await ctx.app.node.searchUsers(args.join(' ')))
  }
}
