/** What a running node program holds; commands and modes get it through their context. */
import type { ChatNode, ChatPeer } from '@conf-chat/node'

export interface NodeApp {
  /** The core library object: accounts, friends, messages, conferences. */
  node: ChatNode
  /** `node.peer`: the libp2p peer under it. */
  peer: ChatPeer
  dataDir: string
  /** The bootstrap addresses the peer was started with, and where they came from. */
  bootstrap: { addrs: string[], source: string }
  /** Set once the peer has joined the network. */
  joinedVia?: string
  /** The menus ring the terminal bell for a message that is not on screen (`--no-bell`: false). @default true */
  bell?: boolean
}
