/** What a running node program holds; commands and modes get it through their context. */
import type { ChatPeer } from '@conf-chat/node'

export interface NodeApp {
  peer: ChatPeer
  dataDir: string
  /** The bootstrap addresses the peer was started with, and where they came from. */
  bootstrap: { addrs: string[], source: string }
  /** Set once the peer has joined the network. */
  joinedVia?: string
}
