import type { ChatNode, ChatNodeEvents } from '@conf-chat/node'
import { eventually, startChatNetwork, type ChatNetwork } from './chat.js'

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

/**
 * Four nodes whose mailboxes are read at login only: alice on the first, bob on the second,
 * friends; carol on the third, a stranger to both; the fourth free for a login elsewhere.
 */
export async function aliceBobAndCarol (): Promise<ChatNetwork> {
  const net = await startChatNetwork(4, { mailboxPollMs: 0 })
  const [n0, n1, n2] = net.nodes as [ChatNode, ChatNode, ChatNode]
  await registerUser(n0, 'alice')
  await registerUser(n1, 'bob')
  await registerUser(n2, 'carol')
  await makeFriends(n0, n1)
  return net
}
