/** Records put into a peer's store without its checks: what an attacker's peer holds, or a record from before a rule. */
import { Libp2pRecord } from '@libp2p/record'
import { Key } from 'interface-datastore'
import { fromString as bytesFromString, toString as bytesToString, concat } from 'uint8arrays'
import { lpStream } from '@libp2p/utils'
import type { Libp2p, PeerId } from '@libp2p/interface'
import { createSignedRecord, encodeSignedRecord, type AccountKeys } from '@conf-chat/protocol'
import { DHT_PROTOCOL, DHT_RECORD_PREFIX, type ChatDatastore, type ChatPeer } from '@conf-chat/node/network'

/** Hold `value` under `key` in `peer`'s store, whatever was there, with its write guard off from now on. */
export async function storeUnchecked (peer: ChatPeer, key: string, value: Uint8Array): Promise<void> {
  const ds = (peer as unknown as { datastore: ChatDatastore }).datastore
  ds.recordGuard = undefined
  const dsKey = new Key(`${DHT_RECORD_PREFIX}/${bytesToString(bytesFromString(key), 'base32')}`, false)
  await ds.put(dsKey, new Libp2pRecord(bytesFromString(key), value, new Date()).serialize())
}

function varint (n: number): Uint8Array {
  const out: number[] = []
  for (; n > 0x7f; n >>>= 7) out.push((n & 0x7f) | 0x80)
  out.push(n)
  return Uint8Array.from(out)
}

const field = (tag: number, bytes: Uint8Array): Uint8Array => concat([Uint8Array.of(tag), varint(bytes.length), bytes])

/** Send one kad-dht PUT_VALUE message (type 0, key, record) straight to one peer: it
 * echoes the message when it stored the record and resets the stream when it refused. */
export async function sendPut (from: Libp2p, to: PeerId, key: string, value: Uint8Array): Promise<'stored' | 'refused'> {
  const keyBytes = bytesFromString(key)
  const message = concat([Uint8Array.of(0x08, 0x00), field(0x12, keyBytes), field(0x1a, new Libp2pRecord(keyBytes, value, new Date()).serialize())])
  const signal = AbortSignal.timeout(20_000)
  const stream = await from.dialProtocol(to, DHT_PROTOCOL, { signal })
  const lp = lpStream(stream)
  await lp.write(message, { signal })
  try {
    await lp.read({ signal })
  } catch (err: any) {
    if (signal.aborted) throw err
    return 'refused'
  }
  await stream.close().catch(() => {})
  return 'stored'
}

/** A presence payload for `username` (fields in `extra` replace or add to the defaults). */
export const presence = (username: string, extra: object = {}): object =>
  ({ username, status: 'online', peerId: '12D3KooWtest', addrs: [], expiresAt: Date.parse('2100-01-01'), updatedAt: 1, ...extra })

/** The encoded record for `payload` under `key`, signed by `keys`. */
export const signed = (key: string, seq: number, payload: unknown, keys: Pick<AccountKeys, 'signPublic' | 'signSecret'>): Uint8Array =>
  encodeSignedRecord(createSignedRecord(key, seq, payload, keys))
