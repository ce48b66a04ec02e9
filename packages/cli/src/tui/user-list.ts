/**
 * The user selection screen (the main menu): users with online/offline marks, friends
 * first, then the others, each with its unread count; below them the other screens.
 * `a` opens the next conversation with unread messages, `r` refreshes, `q` quits. It is an inquirer prompt of its own (built with
 * @inquirer/core) so that it can re-render while it waits: notices and counters that
 * arrive meanwhile show at once, and the cursor stays on its entry.
 */
import {
  createPrompt, useState, useKeypress, usePrefix, usePagination, useEffect, useMemo,
  isEnterKey, isUpKey, isDownKey, makeTheme, Separator, type Theme
} from '@inquirer/core'
import type { DirectoryUser, FriendInfo } from '@conf-chat/node'
import type { Colors } from 'picocolors/types.js'

export interface UserEntry {
  username: string
  fullName: string
  online: boolean
  friend: boolean
  unread: number
}

export type MenuAction =
  | { type: 'chat', username: string }
  | { type: 'activity' }
  | { type: 'requests' }
  | { type: 'conferences' }
  | { type: 'history' }
  | { type: 'passwd' }
  | { type: 'settings' }
  | { type: 'refresh' }
  | { type: 'logout' }
  | { type: 'quit' }

/** What the screen shows now; read again at each render. */
export interface UserListView {
  users: UserEntry[]
  requestCount: number
  /** Unread conference messages, all conferences together. */
  conferenceUnread?: number
  /** Unread messages, direct and conference, all together (the Activity entry). */
  unreadTotal?: number
  /** Notices that arrived and are not yet printed for good, oldest first. */
  notices: readonly string[]
}

export interface UserListConfig {
  /** The first line, e.g. who is logged in. */
  message: string
  view: () => UserListView
  /** Called with a function to call whenever the view may have changed; returns the unsubscribe. */
  subscribe: (onChange: () => void) => () => void
  colors: Colors
  /** Entry to put the cursor on first (a username or an action type). */
  default?: string
  /** Lines of the list shown at once. @default 14 */
  pageSize?: number
  /** Notices shown at most (the newest). @default 5 */
  maxNotices?: number
  theme?: Partial<Theme>
}

/** Friends first, then the others; within each, online first, then by name. Without the user. */
export function orderUsers (users: DirectoryUser[], friends: FriendInfo[], me: string, unread: (u: string) => number = () => 0): UserEntry[] {
  const byName = new Map(users.map(u => [u.username, u]))
  const friendNames = new Set(friends.map(f => f.username))
  const entries: UserEntry[] = friends.map(f => ({
    username: f.username,
    fullName: byName.get(f.username)?.fullName ?? '',
    // the friend list reads presence itself; the directory may lag
    online: f.online,
    friend: true,
    unread: unread(f.username)
  }))
  for (const u of users) {
    if (u.username === me || friendNames.has(u.username)) continue
    entries.push({ username: u.username, fullName: u.fullName, online: u.online, friend: false, unread: unread(u.username) })
  }
  const rank = (e: UserEntry): number => (e.friend ? 0 : 2) + (e.online ? 0 : 1)
  return entries.sort((a, b) => rank(a) - rank(b) || a.username.localeCompare(b.username))
}

interface Item {
  key: string
  action: MenuAction
  label: (c: Colors) => string
  short: string
}

const ACTIONS: Array<{ type: Exclude<MenuAction['type'], 'chat'>, label: string }> = [
  { type: 'requests', label: 'Friend requests' },
  { type: 'conferences', label: 'Conferences' },
  { type: 'activity', label: 'Activity  (a)' },
  { type: 'history', label: 'History' },
  { type: 'passwd', label: 'Change password' },
  { type: 'settings', label: 'Settings' },
  { type: 'refresh', label: 'Refresh  (r)' },
  { type: 'logout', label: 'Log out' },
  { type: 'quit', label: 'Quit  (q)' }
]

function userItems (users: UserEntry[], nameWidth: number, fullWidth: number): Item[] {
  return users.map(u => ({
    key: u.username,
    action: { type: 'chat', username: u.username },
    short: u.username,
    label: c => {
      const mark = u.online ? c.green('●') : c.dim('○')
      const status = u.online ? c.green('online ') : c.dim('offline')
      const unread = u.unread > 0 ? ` ${c.bold(c.yellow(`${u.unread} new`))}` : ''
      return `${mark} ${u.username.padEnd(nameWidth)}  ${u.fullName.slice(0, fullWidth).padEnd(fullWidth)}  ${status}${unread}`
    }
  }))
}

export function menuItems (view: UserListView): Array<Item | Separator> {
  const friends = view.users.filter(u => u.friend)
  const others = view.users.filter(u => !u.friend)
  const nameWidth = Math.max(8, ...view.users.map(u => u.username.length))
  const fullWidth = Math.min(24, Math.max(0, ...view.users.map(u => u.fullName.length)))
  const items: Array<Item | Separator> = []
  if (friends.length > 0) items.push(new Separator('Friends'), ...userItems(friends, nameWidth, fullWidth))
  items.push(new Separator(friends.length > 0 ? 'Others' : 'Users'))
  if (others.length > 0) items.push(...userItems(others, nameWidth, fullWidth))
  else items.push(new Separator('  (nobody else yet: the list shows users as they join)'))
  items.push(new Separator('──────────────'))
  for (const a of ACTIONS) {
    const count = a.type === 'requests' && view.requestCount > 0
      ? ` (${view.requestCount})`
      : a.type === 'conferences' && (view.conferenceUnread ?? 0) > 0
        ? ` (${view.conferenceUnread ?? 0} new)`
        : a.type === 'activity' && (view.unreadTotal ?? 0) > 0 ? ` (${view.unreadTotal ?? 0} new)` : ''
    items.push({ key: a.type, action: { type: a.type } as MenuAction, short: a.label.replace(/\s+\(.\)$/, ''), label: c => `${a.label}${count !== '' ? c.yellow(count) : ''}` })
  }
  return items
}

const CURSOR_HIDE = '\u001b[?25l'

export const userListPrompt = createPrompt<MenuAction, UserListConfig>((config, done) => {
  const { colors: c, pageSize = 14, maxNotices = 5 } = config
  const theme = makeTheme(config.theme)
  const [status, setStatus] = useState<'idle' | 'done'>('idle')
  const [version, setVersion] = useState(0)
  const [activeKey, setActiveKey] = useState<string | undefined>(config.default)
  const [answer, setAnswer] = useState('')
  const prefix = usePrefix({ status, theme })

  useEffect(() => config.subscribe(() => { setVersion(v => v + 1) }), [])

  const view = useMemo(() => config.view(), [version])
  const items = useMemo(() => menuItems(view), [view])
  const selectable = items.flatMap((item, index) => Separator.isSeparator(item) ? [] : [index])
  const found = items.findIndex(item => !Separator.isSeparator(item) && item.key === activeKey)
  const active = found !== -1 ? found : selectable[0]!
  const current = items[active] as Item

  const finish = (item: Item): void => {
    setAnswer(item.short)
    setStatus('done')
    done(item.action)
  }

  useKeypress((key, rl) => {
    if (isEnterKey(key)) {
      finish(current)
      return
    }
    rl.clearLine(0) // letters are keys here, not text
    if (isUpKey(key) || isDownKey(key)) {
      const at = selectable.indexOf(active)
      const next = selectable[(at + (isUpKey(key) ? -1 : 1) + selectable.length) % selectable.length]!
      setActiveKey((items[next] as Item).key)
    } else if (key.name === 'r' || key.name === 'q' || key.name === 'a') {
      const target = key.name === 'r' ? 'refresh' : key.name === 'q' ? 'quit' : 'activity'
      finish(items.find(i => !Separator.isSeparator(i) && i.key === target) as Item)
    }
  })

  const page = usePagination({
    items,
    active,
    pageSize,
    loop: false,
    renderItem ({ item, isActive }) {
      if (Separator.isSeparator(item)) return ` ${c.dim(item.separator)}`
      const line = `${isActive ? '❯' : ' '} ${item.label(c)}`
      return isActive ? c.cyan(line) : line
    }
  })
  const message = theme.style.message(config.message, status)
  if (status === 'done') return `${prefix} ${message} ${theme.style.answer(answer)}`

  const shown = view.notices.slice(-maxNotices)
  const hidden = view.notices.length - shown.length
  const notices = [
    ...(hidden > 0 ? [c.dim(`  … ${hidden} earlier notice${hidden === 1 ? '' : 's'}`)] : []),
    ...shown.map(line => `  ${line}`)
  ]
  const help = c.dim('↑↓ move · ⏎ open · a next unread · r refresh · q quit')
  return `${[`${prefix} ${message}`, ...notices, page, ' ', help].join('\n')}${CURSOR_HIDE}`
})
