/** A test set namespace, signed test items, and the set protocol spoken by hand (as a buggy or hostile peer would). */
import * as cborg from 'cborg'
import { lpStream } from '@libp2p/utils'
import type { PeerId } from '@libp2p/interface'
import {
  SET_PROTOCOL, MAX_SET_FRAME_BYTES, KEY_ID_PATTERN, InvalidSetKeyError, InvalidSetItemError, RemoveNotAuthorizedError,
  keyIdOf, sign, verify, createSetItem, decodeSetResponse,
  type AccountKeys, type AccountPayload, type SetItem, type SetNamespaceRules, type SetResponse
} from '@conf-chat/protocol'
import type { ChatPeer } from '@conf-chat/node/network'

const TEST_DOMAIN = 'conf-chat:test-item:1'

/** A registered account's payload for `username` (its work: any number, as the tests run with CONF_CHAT_NAME_WORK_BITS=0). */
export function accountOf (username: string, keys: AccountKeys): AccountPayload {
  return {
    type: 'account',
    username,
    fullName: username,
    boxPublic: keys.boxPublic,
    passwordHash: '$2b$04$' + 'a'.repeat(53),
    secretKeys: { kdf: 'scrypt', N: 1024, r: 8, p: 1, salt: new Uint8Array(16), nonce: new Uint8Array(24), ciphertext: new Uint8Array(80) },
    work: 0,
    createdAt: Date.now(),
    updatedAt: Date.now()
  }
}

/** A test namespace: `/cc-test/<owner keyId>`; items are signed by their writer; only the owner removes. */
export const testRules: SetNamespaceRules = {
  checkKey: parts => {
    if (parts.length !== 1 || !KEY_ID_PATTERN.test(parts[0] ?? '')) throw new InvalidSetKeyError('a test key is /cc-test/<keyId>')
  },
  validateItem: (setKey, item) => {
    let d: any
    try { d = cborg.decode(item.data) } catch { throw new InvalidSetItemError('not CBOR') }
    if (!(d?.pub instanceof Uint8Array) || !(d?.msg instanceof Uint8Array) || !(d?.sig instanceof Uint8Array) ||
      !verify(d.sig, cborg.encode([TEST_DOMAIN, setKey, item.id, d.msg]), d.pub)) {
      throw new InvalidSetItemError('bad item signature')
    }
  },
  authorizeRemove: (setKey, _ids, auth) => {
    if (keyIdOf(auth.pub) !== setKey.split('/')[2]) throw new RemoveNotAuthorizedError('only the owner removes')
  }
}

export function signedItem (writer: AccountKeys, setKey: string, text: string, options: { now?: number, id?: string } = {}): SetItem {
  const item = createSetItem(new Uint8Array(), options)
  const msg = new TextEncoder().encode(text)
  const sig = sign(cborg.encode([TEST_DOMAIN, setKey, item.id, msg]), writer.signSecret)
  return { ...item, data: cborg.encode({ pub: writer.signPublic, msg, sig }) }
}

export const textOf = (item: SetItem): string => new TextDecoder().decode((cborg.decode(item.data) as { msg: Uint8Array }).msg)

/** A peer speaking the set protocol by hand, as a buggy or hostile peer would. */
export async function rawRequest (from: ChatPeer, to: PeerId, frame: Uint8Array): Promise<SetResponse> {
  const signal = AbortSignal.timeout(10_000)
  const stream = await from.libp2p.dialProtocol(to, SET_PROTOCOL, { signal })
  try {
    const lp = lpStream(stream, { maxDataLength: MAX_SET_FRAME_BYTES })
    await lp.write(frame, { signal })
    const res = decodeSetResponse((await lp.read({ signal })).subarray())
    await stream.close({ signal })
    return res
  } catch (err: any) {
    stream.abort(err)
    throw err
  }
}

