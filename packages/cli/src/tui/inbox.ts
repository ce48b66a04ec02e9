/**
 * Everything that arrives on its own while the user is somewhere in the menus: direct
 * messages, friend requests and answers, friends coming and going, delivery results of
 * queued messages, the program's own notices. Nothing is dropped: messages are counted
 * unread per user until their chat is opened, notices wait in a queue until a screen
 * shows them. An open chat screen takes its partner's messages (and the notices) live.
 */
import { DM_KIND } from '@conf-chat/protocol'
import type { IncomingMessage, MessageStatus, FriendRequestInfo } from '@conf-chat/node'
import type { Colors } from 'picocolors/types.js'
import { SessionEndedError, type TuiNode } from './context.js'
import { clock, plural } from './format.js'

/** An open chat screen: its partner's messages and every notice go to it as they come. */
export interface ChatFocus {
  username: string
  onMessage: (message: IncomingMessage) => void
  onNotice: (line: string) => void
  /** The partner came online or went offline. */
  onPresence?: (online: boolean) => void
}

type Listener = () => void

export class Inbox {
  private readonly node: TuiNode
  private readonly c: Colors
  private readonly unreadCounts = new Map<string, number>()
  private readonly presence = new Map<string, boolean>()
  private readonly incoming = new Set<string>()
  /** Waiting notices; `from`: a message notice, needless once that user's chat is open. */
  private readonly queue: Array<{ line: string, from?: string }> = []
  private readonly listeners = new Set<Listener>()
  private readonly unsubscribe: Array<() => void> = []
  private focused?: ChatFocus
  private session = new AbortController()
  private friendChanges = 0

  constructor (node: TuiNode, colors: Colors) {
    this.node = node
    this.c = colors
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
    this.on('presence', ({ detail }) => { this.onPresence(detail.username, detail.online) })
    this.on('message:status', ({ detail }) => { this.onStatus(detail) })
    this.on('session:started', () => {
      this.session = new AbortController()
      this.changed()
    })
    this.on('session:ended', ({ detail }) => {
      if (detail.reason === 'takeover') this.notice(`${this.c.yellow('!')} logged out: your account logged in on another peer`)
      this.session.abort(new SessionEndedError(detail.reason === 'takeover' ? 'your account logged in on another peer' : 'logged out'))
      this.unreadCounts.clear()
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
    if (this.unreadCounts.delete(username)) this.changed()
  }

  /** The latest presence a friend announced since the list was loaded, if any. */
  onlineNow (username: string): boolean | undefined { return this.presence.get(username) }

  /** A fresh list was loaded: it is newer than the announcements so far. */
  forgetPresence (): void { this.presence.clear() }

  /** Grows when a friendship begins or ends on the other side's word: a loaded list is stale. */
  get friendsVersion (): number { return this.friendChanges }

  /** Incoming friend requests, as loaded plus those that arrived since. */
  get requestCount (): number { return this.incoming.size }

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
  notice (line: string, from?: string): void {
    if (this.focused != null) {
      this.focused.onNotice(line)
    } else {
      this.queue.push({ line, from })
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
    for (const n of this.queue.splice(0)) {
      if (n.from !== focus.username) focus.onNotice(n.line) // the chat shows that user's messages itself
    }
    this.unreadCounts.delete(focus.username)
    this.changed()
    return () => {
      if (this.focused === focus) this.focused = undefined
      this.changed()
    }
  }

  // ------------------------------------------------------------ events

  private onMessage (m: IncomingMessage): void {
    if (this.focused?.username === m.from) {
      this.focused.onMessage(m)
      return
    }
    this.unreadCounts.set(m.from, this.unread(m.from) + 1)
    this.notice(`${this.c.dim(`[${clock(m.sentAt)}]`)} ${this.c.bold(`✉ ${m.from}`)}: ${m.text}`, m.from)
  }

  private onOfflineMessages (messages: IncomingMessage[]): void {
    const others = new Map<string, number>()
    for (const m of messages) {
      if (this.focused?.username === m.from) {
        this.focused.onMessage(m)
      } else {
        this.unreadCounts.set(m.from, this.unread(m.from) + 1)
        others.set(m.from, (others.get(m.from) ?? 0) + 1)
      }
    }
    if (others.size === 0) return
    const total = [...others.values()].reduce((a, b) => a + b, 0)
    const who = [...others].map(([u, n]) => `${u} (${n})`).join(', ')
    this.notice(`${this.c.bold('✉')} while you were away: ${plural(total, 'message')} from ${who}`)
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
