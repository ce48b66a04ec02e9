/** Valid payloads and signed records for the protocol's unit tests. */
import {
  createSignedRecord, encodeSignedRecord, keyIdOf, presenceKey, userKey,
  type AccountKeys, type AccountPayload, type PresencePayload, type ReleasedPayload
} from '../src/index.js'

export type SignKeys = Pick<AccountKeys, 'signPublic' | 'signSecret'>

/** A string in bcrypt's format; the record rules check its shape, not the password. */
export const FAKE_BCRYPT = '$2b$10$' + 'a'.repeat(53)

export function accountPayload (username: string, extra: Partial<AccountPayload> = {}): AccountPayload {
  return {
    type: 'account',
    username,
    fullName: `Full ${username}`,
    boxPublic: new Uint8Array(32).fill(7),
    passwordHash: FAKE_BCRYPT,
    secretKeys: { kdf: 'scrypt', N: 1024, r: 8, p: 1, salt: new Uint8Array(16), nonce: new Uint8Array(24), ciphertext: new Uint8Array(80) },
    // a proof of work for any name: the unit tests run with CONF_CHAT_NAME_WORK_BITS=0 (vitest.unit.config.ts)
    work: 0,
    createdAt: 1,
    updatedAt: 1,
    ...extra
  }
}

export function releasedPayload (username: string, updatedAt = 2): ReleasedPayload {
  return { type: 'released', username, updatedAt }
}

export function presencePayload (extra: Partial<PresencePayload> = {}): PresencePayload {
  return { username: 'alice', status: 'online', peerId: '12D3KooWtest', addrs: ['/ip4/127.0.0.1/tcp/1'], expiresAt: Date.parse('2100-01-01'), updatedAt: 1, ...extra }
}

export function userValue (keys: SignKeys, username: string, seq: number, payload: unknown = accountPayload(username)): Uint8Array {
  return encodeSignedRecord(createSignedRecord(userKey(username), seq, payload, keys))
}

export function presenceValue (keys: SignKeys, seq: number, payload: unknown = presencePayload()): Uint8Array {
  return encodeSignedRecord(createSignedRecord(presenceKey(keyIdOf(keys.signPublic)), seq, payload, keys))
}
