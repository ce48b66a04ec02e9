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
import { chatScreen, type ChatResult } from './chat-screen.js'
import { friendRequestsScreen, strangerScreen } from './friend-requests.js'
import { historyScreen } from './history.js'
import { conferencesScreen, conferenceChatScreen } from './conferences.js'
import { passwdScreen } from './passwd.js'
import { settingsScreen } from './settings.js'
import { redrawing } from './screen.js'

export type MainMenuResult = 'logged-out' | 'quit' | 'session-ended'

/**
 * How often the open list reads the users again (new users, who is online): a directory
 * read while a user looks at the list, never while nobody does.
 */
export const USER_LIST_REFRESH_MS = 20_000

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
  /** Requesters the list did not have, read for once. */
  const lookedFor = new Set<string>()
  for (;;) {
    const session = ctx.inbox.sessionSignal
    if (session.aborted) return 'session-ended'
    if (loaded.version !== ctx.inbox.friendsVersion) loaded = await load(ctx)
    flushNotices(ctx)
    let action: MenuAction
    // the list follows the network while it waits, the cursor staying on its user: a
    // friendship that begins or ends, or a request from a user the list does not have yet,
    // reloads it at once; new users and who is online, every USER_LIST_REFRESH_MS
    let rerender: (() => void) | undefined
    let reloading = false
    let waiting = true // a read that ends after the list closed must not replace a newer load
    const reload = (): void => {
      if (reloading) return
      reloading = true
      const version = ctx.inbox.friendsVersion
      ctx.inbox.forgetPresence()
      Promise.allSettled([ctx.node.users(''), ctx.node.friends()])
        .then(([users, friends]) => {
          if (!waiting) return
          // a part that failed keeps what the list had (the next load tells)
          loaded = {
            users: users.status === 'fulfilled' ? users.value : loaded.users,
            friends: friends.status === 'fulfilled' ? friends.value : loaded.friends,
            version: friends.status === 'fulfilled' ? version : loaded.version
          }
          rerender?.()
        })
        .finally(() => { reloading = false })
    }
    const stopWatching = ctx.inbox.subscribe(() => {
      // once for each requester the list lacks (the directory may not list them yet)
      const stranger = ctx.inbox.incomingRequests.filter(u => !loaded.users.some(x => x.username === u) && !lookedFor.has(u))
      for (const u of stranger) lookedFor.add(u)
      if (loaded.version !== ctx.inbox.friendsVersion || stranger.length > 0) reload()
    })
    const refresher = setInterval(reload, ctx.listRefreshMs ?? USER_LIST_REFRESH_MS)
    try {
      // drawn again, for the new size, when the terminal changes size (an attach)
      action = await redrawing(io => userListPrompt({
        message: `${me.username} (${me.fullName}) · pick a user to chat with`,
        view: () => ({
          users: currentUsers(ctx, loaded, me.username),
          requestCount: ctx.inbox.requestCount,
          conferenceUnread: ctx.inbox.conferenceUnreadTotal,
          unreadTotal: ctx.inbox.unreadTotal + ctx.inbox.conferenceUnreadTotal,
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
      waiting = false
      stopWatching()
      clearInterval(refresher)
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
        case 'settings':
          await settingsScreen(ctx)
          break
        case 'activity':
          if (await openNextActivity(ctx, loaded) === 'quit') return 'quit'
          break
      }
    } catch (err) {
      if (isSessionEnded(err) || session.aborted) return 'session-ended'
      if (isQuit(err)) throw err
      print(ctx, errorLine(ctx, err))
    }
  }
}

/** Activity: the conversation with unread messages that has waited longest (WeeChat's hotlist). */
async function openNextActivity (ctx: TuiContext, loaded: Loaded): Promise<ChatResult> {
  const next = ctx.inbox.nextActivity()
  if (next == null) {
    print(ctx, ctx.colors.dim('No unread messages.'))
    return 'back'
  }
  if ('username' in next) return await chatScreen(ctx, next.username, loaded.users.find(u => u.username === next.username)?.fullName)
  const conference = (await ctx.node.conferences()).find(c => c.id === next.conference)
  if (conference == null) {
    ctx.inbox.markConferenceRead(next.conference) // left or removed meanwhile
    return 'back'
  }
  return await conferenceChatScreen(ctx, conference)
}
