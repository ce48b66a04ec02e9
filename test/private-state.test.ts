/**
 * A private state larger than one record (128 KiB), on real nodes: a user with 800
 * friends (with the longest notes) saves it in pages, and logs in on another peer with
 * every friend there. One record once made such a state unwritable: a flood of requests
 * or a few hundred friends, and a fresh peer showed "0 friends".
 */
import { describe, it, expect, afterAll } from 'vitest'
import { randomBytes } from 'node:crypto'
import { stateKey, keyIdOf, MAX_FRIEND_NOTE_CHARS, MAX_RECORD_BYTES, type FriendEntry, type StatePayload } from '@conf-chat/protocol'
import type { ChatNode } from '@conf-chat/node'
import { startChatNetwork, type ChatNetwork } from './helpers/chat.js'
import { registerUser, PASSWORD } from './helpers/friends.js'
import { internalsOf } from './helpers/internals.js'

const FRIENDS = 800

describe('a private state in pages', () => {
  let net: ChatNetwork | undefined
  afterAll(async () => { await net?.cleanup() })

  it(`keeps ${FRIENDS} friends: written in pages, read whole at login on another peer`, { timeout: 120_000 }, async () => {
    net = await startChatNetwork(2, { mailboxPollMs: 0 })
    const [first, second] = net.nodes as [ChatNode, ChatNode]
    await registerUser(first, 'popular')
    const keyId = first.session!.account.keyId
    const friends: FriendEntry[] = Array.from({ length: FRIENDS }, (_, i) => {
      const signPublic = new Uint8Array(randomBytes(32))
      return { username: `friend${i}`, keyId: keyIdOf(signPublic), signPublic, boxPublic: new Uint8Array(randomBytes(32)), since: Date.now(), note: 'n'.repeat(MAX_FRIEND_NOTE_CHARS) }
    })
    await internalsOf(first).messaging.active!.state.update(s => { s.friends.push(...friends) })
    expect(await first.flush()).toBe(true)
    // what another peer reads: a head naming its pages, each record within the limit holders take
    const head = await second.peer.records.get<StatePayload>(stateKey(keyId))
    expect(head!.payload.pages!.count).toBeGreaterThanOrEqual(3)
    expect(head!.value.length).toBeLessThanOrEqual(MAX_RECORD_BYTES)
    await first.logout()
    await second.login('popular', PASSWORD)
    const state = internalsOf(second).messaging.active!.state.state
    expect(state.friends).toHaveLength(FRIENDS)
    expect(state.friends.map(f => f.username)).toEqual(friends.map(f => f.username))
  })
})
