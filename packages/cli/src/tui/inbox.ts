/**
 * Everything that arrives on its own while the user is somewhere in the menus: direct
 * and conference messages, friend requests and answers, conference invites and member
 * changes, friends coming and going, delivery results of queued messages, the program's
 * own notices. Nothing is dropped: messages are counted unread per user (or conference)
 * until its chat is opened, notices wait in a queue until a screen shows them. An open
 * chat screen takes its own messages (and the notices) live.
 */
import { DM_KIND } from '@conf-chat/protocol'
import type { IncomingMessage, MessageStatus, MessageStateChange, FriendRequestInfo } from '@conf-chat/node'
import type { Colors } from 'picocolors/types.js'
import { SessionEndedError } from './errors.js'
import type { TuiNode } from './tui-node.js'
import { clock, plural } from './format.js'
import { keyChangedLine, printable } from '../format.js'

/** A conference message carries its conference (the core's ConferenceMessage). */
export type ShownMessage = IncomingMessage & { conference?: { id: string, name: string } }

/** An open chat screen: its messages and every notice go to it as they come. */
export interface ChatFocus {
  /** The friend of a direct chat. */
  username?: string
  /** The conference id of a conference chat. */
  conference?: string
  onMessage: (message: ShownMessage) => void
  onNotice: (line: string) => void
  /** The partner came online or went offline. */
  onPresence?: (online: boolean) => void
  /** A message the user sent to the partner moved to a new state. */
  onState?: (change: MessageStateChange) => void
}

type Listener = () => void

export class Inbox {
  private readonly node: TuiNode
  private readonly c: Colors
  private readonly unreadCounts = new Map<string, number>()
  private readonly unreadConferences = new Map<string, number>()
  private readonly presence = new Map<string, boolean>()
  private readonly incoming = new Set<string>()
  /** Waiting notices; `chat`: a message notice, needless once that chat is open. */
  private readonly queue: Array<{ line: string, chat?: string }> = []
  private readonly listeners = new Set<Listener>()
  private readonly unsubscribe: Array<() => void> = []
  private focused?: ChatFocus
  private session = new AbortController()
  private friendChanges = 0
  private conferenceChanges = 0

  /** Conversations with unread messages, oldest activity first (`@user`, `#conference`). */
  private readonly activity: string[] = []
  private readonly bell: () => void

  /** `bell`: rings the terminal for a message not on screen (the caller decides whether it is on). */
  constructor (node: TuiNode, colors: Colors, bell: () => void = () => {}) {
    this.node = node
    this.c = colors
    this.bell = bell
  }

  /** Listen to the node's events (until `stop()`). */
  start (): void {
    this.on('message', ({ detail }) => { this.onMessage(detail) })
    this.on('messages:offline', ({ detail }) => { this.onOfflineMessages(detail.messages) })
    this.on('friend:request', ({ detail }) => { this.onFriendRequest(detail) })
    this.on('friend:accepted', ({ detail }) => {
      this.incoming.delete(detail.username)
      this.friendChanges++
      this.notice(`${this.c.green('★')} ${detail.username} and you are friends now`)
    })
    this.on('friend:rejected', ({ detail }) => { this.notice(`${detail.username} turned down your friend request`) })
    this.on('friend:removed', ({ detail }) => {
      this.incoming.delete(detail.username)
      this.friendChanges++
      this.notice(`${detail.username} is no longer your friend`)
    })
    this.on('friend:key-changed', ({ detail }) => { this.notice(this.c.red(keyChangedLine(detail))) })
    this.on('presence', ({ detail }) => { this.onPresence(detail.username, detail.online) })
    this.on('conference:message', ({ detail }) => { this.onMessage(detail) })
    this.on('conference:invited', ({ detail }) => {
      this.conferenceChanges++
      this.notice(`${this.c.green('★')} ${detail.by} invited you to the conference ${detail.conference.name} (${detail.conference.id})`)
    })
    this.on('conference:joined', ({ detail }) => {
      this.conferenceChanges++
      this.notice(`${detail.usernames.join(', ')} joined ${detail.conference.name} (invited by ${detail.by})`)
    })
    this.on('conference:left', ({ detail }) => {
      this.conferenceChanges++
      this.notice(`${detail.username} left ${detail.conference.name}`)
    })
    this.on('conference:removed', ({ detail }) => {
      this.conferenceChanges++
      if (detail.you === true) { this.unreadConferences.delete(detail.conference.id); this.quiet(`#${detail.conference.id}`) }
      this.notice(detail.you === true
        ? `${this.c.yellow('!')} ${detail.by} removed you from ${detail.conference.name}`
        : `${detail.by} removed ${detail.usernames.join(', ')} from ${detail.conference.name}`)
    })
    this.on('message:status', ({ detail }) => { this.onStatus(detail) })
    this.on('message:state', ({ detail }) => {
      const focused = this.focused
      if (focused == null) return
      // a direct message's, or a copy of a conference message's
      if (detail.conference != null ? focused.conference === detail.conference : focused.username === detail.to) focused.onState?.(detail)
    })
    this.on('session:started', () => {
      this.session = new AbortController()
      this.changed()
    })
    this.on('session:ended', ({ detail }) => {
      if (detail.reason === 'takeover') this.notice(`${this.c.yellow('!')} logged out: your account logged in on another peer`)
      this.session.abort(new SessionEndedError(detail.reason === 'takeover' ? 'your account logged in on another peer' : 'logged out'))
      this.unreadCounts.clear()
      this.unreadConferences.clear()
      this.activity.length = 0
      this.presence.clear()
      this.incoming.clear()
      this.changed()
    })
  }

  stop (): void {
    for (const off of this.unsubscribe.splice(0)) off()
    this.listeners.clear()
  }

  /** Aborted when the current session ends (a logout, or a login of the account elsewhere). */
  get sessionSignal (): AbortSignal { return this.session.signal }

  // ------------------------------------------------------------ what screens read

  unread (username: string): number { return this.unreadCounts.get(username) ?? 0 }

  get unreadTotal (): number {
    let n = 0
    for (const v of this.unreadCounts.values()) n += v
    return n
  }

  markRead (username: string): void {
    this.quiet(`@${username}`)
    if (this.unreadCounts.delete(username)) this.changed()
  }

  /** The conversation with unread messages that has waited longest (WeeChat's hotlist). */
  nextActivity (): { username: string } | { conference: string } | undefined {
    const next = this.activity[0]
    if (next == null) return undefined
    return next.startsWith('@') ? { username: next.slice(1) } : { conference: next.slice(1) }
  }

  private quiet (chat: string): void {
    const at = this.activity.indexOf(chat)
    if (at !== -1) this.activity.splice(at, 1)
  }

  conferenceUnread (id: string): number { return this.unreadConferences.get(id) ?? 0 }

  get conferenceUnreadTotal (): number {
    let n = 0
    for (const v of this.unreadConferences.values()) n += v
    return n
  }

  markConferenceRead (id: string): void {
    this.quiet(`#${id}`)
    if (this.unreadConferences.delete(id)) this.changed()
  }

  /** Grows with every invite, join, leave and removal: a loaded conference list is stale. */
  get conferencesVersion (): number { return this.conferenceChanges }

  /** The latest presence a friend announced since the list was loaded, if any. */
  onlineNow (username: string): boolean | undefined { return this.presence.get(username) }

  /** A fresh list was loaded: it is newer than the announcements so far. */
  forgetPresence (): void { this.presence.clear() }

  /** Grows when a friendship begins or ends on the other side's word: a loaded list is stale. */
  get friendsVersion (): number { return this.friendChanges }

  /** Incoming friend requests, as loaded plus those that arrived since. */
  get requestCount (): number { return this.incoming.size }

  /** The users who asked to be friends (as loaded plus those that arrived since). */
  get incomingRequests (): string[] { return [...this.incoming] }

  setIncomingRequests (usernames: string[]): void {
    this.incoming.clear()
    for (const u of usernames) this.incoming.add(u)
    this.changed()
  }

  /** Notices not yet shown for good (a screen that shows them calls `takeNotices`). */
  get pendingNotices (): readonly string[] { return this.queue.map(n => n.line) }

  takeNotices (): string[] {
    const taken = this.queue.splice(0)
    if (taken.length > 0) this.changed()
    return taken.map(n => n.line)
  }

  /** A line for the user: straight to an open chat screen, else queued for the next screen. */
  notice (line: string, chat?: string): void {
    if (this.focused != null) {
      this.focused.onNotice(line)
    } else {
      this.queue.push({ line, chat })
      this.changed()
    }
  }

  /** Re-render whatever shows the inbox; returns the unsubscribe function. */
  subscribe (listener: Listener): () => void {
    this.listeners.add(listener)
    return () => { this.listeners.delete(listener) }
  }

  /** A chat screen opens: it gets its partner's messages and all notices until the returned function is called. */
  focus (focus: ChatFocus): () => void {
    this.focused = focus
    const chat = chatOf(focus)
    for (const n of this.queue.splice(0)) {
      if (n.chat !== chat) focus.onNotice(n.line) // the chat shows its messages itself
    }
    if (focus.username != null) this.unreadCounts.delete(focus.username)
    if (focus.conference != null) this.unreadConferences.delete(focus.conference)
    this.quiet(chat)
    this.changed()
    return () => {
      if (this.focused === focus) this.focused = undefined
      this.changed()
    }
  }

  // ------------------------------------------------------------ events

  private onMessage (m: ShownMessage): void {
    if (this.isFocused(m)) {
      this.focused!.onMessage(m)
      return
    }
    const where = m.conference != null ? ` in ${m.conference.name}` : ''
    if (this.count(m)) this.bell()
    this.notice(`${this.c.dim(`[${clock(m.sentAt)}]`)} ${this.c.bold(`✉ ${m.from}${where}`)}: ${printable(m.text)}`, chatOf(m))
  }

  private onOfflineMessages (messages: ShownMessage[]): void {
    const senders = new Map<string, number>()
    const conferences = new Map<string, number>()
    let news = false
    for (const m of messages) {
      if (this.isFocused(m)) {
        this.focused!.onMessage(m)
        continue
      }
      if (this.count(m)) news = true
      if (m.conference != null) conferences.set(m.conference.name, (conferences.get(m.conference.name) ?? 0) + 1)
      else senders.set(m.from, (senders.get(m.from) ?? 0) + 1)
    }
    const parts: string[] = []
    const total = (counts: Map<string, number>): number => [...counts.values()].reduce((a, b) => a + b, 0)
    const list = (counts: Map<string, number>): string => [...counts].map(([k, n]) => `${k} (${n})`).join(', ')
    if (senders.size > 0) parts.push(`${plural(total(senders), 'message')} from ${list(senders)}`)
    if (conferences.size > 0) parts.push(`${plural(total(conferences), 'conference message')} in ${list(conferences)}`)
    if (parts.length > 0) {
      if (news) this.bell()
      this.notice(`${this.c.bold('✉')} while you were away: ${parts.join('; ')}`)
    }
  }

  private isFocused (m: ShownMessage): boolean {
    const f = this.focused
    if (f == null) return false
    return m.conference != null ? f.conference === m.conference.id : f.username === m.from
  }

  /**
   * Count a message unread; true when its conversation had none unread yet (the bell rings
   * once a conversation, until it is opened: a friend's 200 messages ring it once).
   */
  private count (m: ShownMessage): boolean {
    if (m.conference != null) this.unreadConferences.set(m.conference.id, this.conferenceUnread(m.conference.id) + 1)
    else this.unreadCounts.set(m.from, this.unread(m.from) + 1)
    const chat = chatOf(m)
    if (this.activity.includes(chat)) return false
    this.activity.push(chat)
    return true
  }

  private onFriendRequest (r: FriendRequestInfo): void {
    this.incoming.add(r.username)
    const note = r.note != null && r.note !== '' ? `: "${r.note}"` : ''
    this.notice(`${this.c.yellow('?')} friend request from ${r.username}${note} (see Friend requests)`)
  }

  private onPresence (username: string, online: boolean): void {
    this.presence.set(username, online)
    this.notice(online ? `${this.c.green('●')} ${username} is online` : `${this.c.dim('○')} ${username} went offline`)
    if (this.focused?.username === username) this.focused.onPresence?.(online)
  }

  private onStatus (s: MessageStatus): void {
    if (s.kind !== DM_KIND) return // friend requests and answers say nothing on their way
    if (this.focused?.username === s.to && this.focused.onState != null) return // its line on the open chat says it
    if (s.status === 'delivered') this.notice(`${this.c.green('✓')} your queued message to ${s.to} was delivered`)
    else if (s.status === 'queued' && s.where === 'mailbox') this.notice(`your queued message to ${s.to} is in their mailbox`)
    else if (s.status === 'failed') this.notice(`${this.c.red('✖')} your message to ${s.to} could not be sent${s.reason != null ? `: ${s.reason}` : ''}`)
  }

  private on (type: string, handler: (evt: CustomEvent<any>) => void): void {
    const listener = handler as (evt: Event) => void
    this.node.addEventListener(type as any, listener as any)
    this.unsubscribe.push(() => { this.node.removeEventListener(type as any, listener as any) })
  }

  private changed (): void {
    for (const l of [...this.listeners]) l()
  }
}

/** The key of a chat: `@user` for a direct chat, `#id` for a conference. */
function chatOf (x: { username?: string, from?: string, conference?: string | { id: string } }): string {
  if (x.conference != null) return `#${typeof x.conference === 'string' ? x.conference : x.conference.id}`
  return `@${x.username ?? x.from ?? ''}`
}
