/**
 * Names against peers that lie, on real nodes: attacker peers near `/cc-user/alice`
 * serve a record of the name signed by the attacker's own key, outnumbering the honest
 * holders. No reader may pick the attacker's claim by counting replicas: the name reads
 * as contested (a clear error), nobody logs in with the attacker's password, and a
 * friend request never goes to the attacker's key.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { Libp2pRecord } from '@libp2p/record'
import { Key } from 'interface-datastore'
import { fromString as bytesFromString, toString as bytesToString } from 'uint8arrays'
import { userKey, fingerprintOf } from '@conf-chat/protocol'
import type { ChatNode } from '@conf-chat/node'
import { DHT_RECORD_PREFIX, type ChatDatastore, type ChatPeer } from '@conf-chat/node/network'
import { startChatNetwork, type ChatNetwork } from './helpers/chat.js'
import { registerUser, PASSWORD } from './helpers/friends.js'

const ATTACKER_PASSWORD = 'the attacker knows this one'

/** What an attacker's own peer does with its store: hold `value` under `key`, whatever was there. */
async function holdAsAttacker (peer: ChatPeer, key: string, value: Uint8Array): Promise<void> {
  const ds = (peer as unknown as { datastore: ChatDatastore }).datastore
  ds.recordGuard = undefined
  const dsKey = new Key(`${DHT_RECORD_PREFIX}/${bytesToString(bytesFromString(key), 'base32')}`, false)
  await ds.put(dsKey, new Libp2pRecord(bytesFromString(key), value, new Date()).serialize())
}

describe('names against a Sybil majority', () => {
  let net: ChatNetwork
  let elsewhere: ChatNetwork | undefined
  let honest: ChatNode[]
  let attackers: ChatNode[]
  beforeAll(async () => {
    net = await startChatNetwork(7, { mailboxPollMs: 0 })
    honest = net.nodes.slice(0, 2)
    attackers = net.nodes.slice(2)
  })
  afterAll(async () => {
    await elsewhere?.cleanup()
    await net?.cleanup()
  })

  it('five attacker peers holding their own claim of alice against three honest holders: contested, never a login with their password', async () => {
    const [n0, n1] = honest as [ChatNode, ChatNode]
    await registerUser(n0, 'alice')
    const aliceKeyId = n0.session!.account.keyId
    await n0.logout()
    await registerUser(n1, 'bob')
    // the attacker registers "alice" on a network of its own, then serves that record from its five peers here
    elsewhere = await startChatNetwork(1)
    const forger = elsewhere.nodes[0]!
    await forger.register({ username: 'alice', password: ATTACKER_PASSWORD, fullName: 'ALICE' })
    const forgedKeyId = forger.session!.account.keyId
    const forged = await forger.peer.records.getLocal(userKey('alice'))
    for (const a of attackers) await holdAsAttacker(a.peer, userKey('alice'), forged!.value)

    const contested = {
      name: 'ContestedNameError',
      fingerprints: expect.toSatisfy((f: string[]) => f.length === 2 && f.includes(fingerprintOf(aliceKeyId)) && f.includes(fingerprintOf(forgedKeyId)))
    }
    // from an honest peer, with the attacker's password: refused, not "logged in as alice"
    await expect(n0.login('alice', ATTACKER_PASSWORD)).rejects.toMatchObject(contested)
    expect(n0.session).toBeUndefined()
    // bob's request goes to nobody rather than to the attacker's key
    await expect(n1.addFriend('alice')).rejects.toMatchObject(contested)
    expect((await n1.friendRequests()).outgoing).toEqual([])
    // the real alice is told why she cannot log in now (not "wrong password")
    await expect(n0.login('alice', PASSWORD)).rejects.toMatchObject(contested)
  })
})
