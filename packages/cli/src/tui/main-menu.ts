/**
 * The main menu loop after login: the user list (user-list.ts), and the screens its
 * entries open. It ends when the user logs out or quits, or when the session ends on its
 * own (the account logged in on another peer).
 */
import type { DirectoryUser, FriendInfo } from '@conf-chat/node'
import {
  errorLine, flushNotices, isQuit, isSessionEnded, print, withSpinner, type TuiContext
} from './context.js'
import { userListPrompt, orderUsers, type MenuAction, type UserEntry } from './user-list.js'
import { chatScreen } from './chat-screen.js'
import { friendRequestsScreen, strangerScreen } from './friend-requests.js'
import { historyScreen } from './history.js'
import { conferencesScreen } from './conferences.js'
import { passwdScreen } from './passwd.js'
import { redrawing } from './screen.js'

export type MainMenuResult = 'logged-out' | 'quit' | 'session-ended'

interface Loaded {
  users: DirectoryUser[]
  friends: FriendInfo[]
  /** The inbox's friendsVersion when loaded. */
  version: number
}

/** Users, friends and requests from the network; a part that fails is reported and left empty. */
async function load (ctx: TuiContext): Promise<Loaded> {
  const version = ctx.inbox.friendsVersion // taken first: a change while loading means load again
  ctx.inbox.forgetPresence() // announcements from here on are at least as new as what is read
  const [users, friends, requests] = await withSpinner(ctx, 'Looking for users…', Promise.allSettled([
    ctx.node.users(''),
    ctx.node.friends(),
    ctx.node.friendRequests()
  ]))
  for (const r of [users, friends, requests]) {
    if (r.status === 'rejected') print(ctx, errorLine(ctx, r.reason))
  }
  if (requests.status === 'fulfilled') ctx.inbox.setIncomingRequests(requests.value.incoming.map(r => r.username))
  return {
    users: users.status === 'fulfilled' ? users.value : [],
    friends: friends.status === 'fulfilled' ? friends.value : [],
    version
  }
}

/** The list as it is now: loaded entries with presence announced since, and unread counts. */
export function currentUsers (ctx: TuiContext, loaded: Loaded, me: string): UserEntry[] {
  const friends = loaded.friends.map(f => ({ ...f, online: ctx.inbox.onlineNow(f.username) ?? f.online }))
  return orderUsers(loaded.users, friends, me, u => ctx.inbox.unread(u))
}

export async function mainMenu (ctx: TuiContext): Promise<MainMenuResult> {
  const me = ctx.node.whoami()
  let loaded = await load(ctx)
  let last: string | undefined
  for (;;) {
    const session = ctx.inbox.sessionSignal
    if (session.aborted) return 'session-ended'
    if (loaded.version !== ctx.inbox.friendsVersion) loaded = await load(ctx)
    flushNotices(ctx)
    let action: MenuAction
    // a friendship that begins or ends while the list waits moves that user at once
    let rerender: (() => void) | undefined
    let reloading = false
    const stopWatching = ctx.inbox.subscribe(() => {
      if (reloading || loaded.version === ctx.inbox.friendsVersion) return
      reloading = true
      const version = ctx.inbox.friendsVersion
      ctx.node.friends()
        .then(friends => { loaded = { ...loaded, friends, version }; rerender?.() })
        .catch(() => {}) // the next load tells
        .finally(() => { reloading = false })
    })
    try {
      // drawn again, for the new size, when the terminal changes size (an attach)
      action = await redrawing(io => userListPrompt({
        message: `${me.username} (${me.fullName}) · pick a user to chat with`,
        view: () => ({
          users: currentUsers(ctx, loaded, me.username),
          requestCount: ctx.inbox.requestCount,
          conferenceUnread: ctx.inbox.conferenceUnreadTotal,
          notices: ctx.inbox.pendingNotices
        }),
        subscribe: onChange => {
          rerender = onChange
          const off = ctx.inbox.subscribe(onChange)
          return () => { rerender = undefined; off() }
        },
        colors: ctx.colors,
        default: last,
        pageSize: Math.max(8, (ctx.output.rows ?? 24) - 10)
      }, io), { input: ctx.input, output: ctx.output, signal: AbortSignal.any([ctx.signal, session]) })
    } catch (err) {
      if (isSessionEnded(err)) return 'session-ended'
      throw err
    } finally {
      stopWatching()
    }
    // the cursor comes back to what was opened; refreshing (r) leaves it where it was
    if (action.type !== 'refresh') last = action.type === 'chat' ? action.username : action.type
    try {
      switch (action.type) {
        case 'quit':
          return 'quit'
        case 'logout':
          await withSpinner(ctx, 'Logging out…', ctx.node.logout(), () => `Logged out ${me.username}`)
          return 'logged-out'
        case 'refresh':
          loaded = await load(ctx)
          break
        case 'chat': {
          const friend = loaded.friends.some(f => f.username === action.username)
          if (friend) {
            const fullName = loaded.users.find(u => u.username === action.username)?.fullName
            if (await chatScreen(ctx, action.username, fullName) === 'quit') return 'quit'
          } else {
            await strangerScreen(ctx, action.username)
            loaded = await load(ctx)
          }
          break
        }
        case 'requests':
          await friendRequestsScreen(ctx)
          loaded = await load(ctx)
          break
        case 'conferences':
          if (await conferencesScreen(ctx) === 'quit') return 'quit'
          break
        case 'history':
          await historyScreen(ctx)
          break
        case 'passwd':
          await passwdScreen(ctx)
          break
      }
    } catch (err) {
      if (isSessionEnded(err) || session.aborted) return 'session-ended'
      if (isQuit(err)) throw err
      print(ctx, errorLine(ctx, err))
    }
  }
}
