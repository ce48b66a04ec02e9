/**
 * A look inside a running ChatNode, for the tests that must reach below its interface
 * (a stubbed DHT read, a raw envelope over the chat protocol, an uncached user lookup).
 * Programs never do this: they have the ChatNode interface only.
 */
import type { ChatNode } from '@conf-chat/node'
import type { PrivateState } from '@conf-chat/protocol'

export interface ChatNodeInternals {
  accounts: { profile: (username: string) => Promise<{ keyId: string, fullName: string } | undefined>, lookup: (username: string) => Promise<any> }
  profiles: { forget: (username: string) => void }
  presence: { read: (...args: any[]) => Promise<any>, publish: (...args: any[]) => Promise<any> }
  messenger: { send: (peerId: string, addrs: string[], envelope: any) => Promise<{ delivered: boolean, reason?: string, code?: string, final?: boolean }> }
  /** The logged-in user's parts (its private state), while someone is logged in. */
  messaging: { active?: { state: { state: PrivateState, update: (mutate: (state: PrivateState) => void) => Promise<boolean> } } }
}

export function internalsOf (node: ChatNode): ChatNodeInternals {
  const parts = (node as unknown as { parts?: ChatNodeInternals }).parts
  if (parts == null) throw new Error('the node is not started')
  return parts
}
