/**
 * The commands of command mode. To add one: write `commands/<name>.ts` exporting a
 * `Command`, and add it to the table below (the order is the order of `help`).
 */
import { help } from './help.js'
import { peers } from './peers.js'
import { quit } from './quit.js'
import { whoami } from './whoami.js'
import { register, login, logout, passwd, users, search } from './accounts.js'
import { friendAdd, friendRequests, friendAccept, friendReject, friendRemove, friends, onlineFriends, msg, history } from './messaging.js'
import { confCreate, confList, confSend, confInvite, confRemove, confLeave, confMembers, confHistory } from './conferences.js'
import type { Command, CommandTable } from './types.js'

export type { Command, CommandContext, CommandTable } from './types.js'

export function defaultCommands (): Map<string, Command> {
  return new Map<string, Command>([
    ['help', help],
    ['register', register],
    ['login', login],
    ['logout', logout],
    ['passwd', passwd],
    ['whoami', whoami],
    ['users', users],
    ['search', search],
    ['friends', friends],
    ['online-friends', onlineFriends],
    ['friend-requests', friendRequests],
    ['friend-add', friendAdd],
    ['friend-accept', friendAccept],
    ['friend-reject', friendReject],
    ['friend-remove', friendRemove],
    ['msg', msg],
    ['history', history],
    ['conf-create', confCreate],
    ['conf-list', confList],
    ['conf-send', confSend],
    ['conf-invite', confInvite],
    ['conf-remove', confRemove],
    ['conf-leave', confLeave],
    ['conf-members', confMembers],
    ['conf-history', confHistory],
    ['peers', peers],
    ['quit', quit]
  ])
}

export const commands: CommandTable = defaultCommands()
