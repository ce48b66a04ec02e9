import type { ChatNode, ChatNodeEvents } from '@conf-chat/node'
import { eventually } from './chat.js'

export const PASSWORD = 'correct horse battery'

/** Everything a node emits of one event type, in order (listeners stay for the node's life). */
export function collect<K extends keyof ChatNodeEvents> (node: ChatNode, type: K): Array<ChatNodeEvents[K]['detail']> {
  const list: Array<ChatNodeEvents[K]['detail']> = []
  node.addEventListener(type, (evt: any) => { list.push(evt.detail) })
  return list
}

/** Make two logged-in, online users friends through the real request/accept flow. */
export async function makeFriends (a: ChatNode, b: ChatNode): Promise<void> {
  const aName = a.whoami().username
  const bName = b.whoami().username
  const requests = collect(b, 'friend:request')
  const accepted = collect(a, 'friend:accepted')
  await a.addFriend(bName)
  await eventually(() => requests.some(r => r.username === aName))
  await b.acceptFriend(aName)
  await eventually(() => accepted.some(r => r.username === bName))
}

/** Register `username` on `node` (logged in afterwards). */
export async function registerUser (node: ChatNode, username: string): Promise<void> {
  await node.register({ username, password: PASSWORD, fullName: username.toUpperCase() })
}
