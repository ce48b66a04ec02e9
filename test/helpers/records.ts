/** Records put into a peer's store without its checks: what an attacker's peer holds, or a record from before a rule. */
import { Libp2pRecord } from '@libp2p/record'
import { Key } from 'interface-datastore'
import { fromString as bytesFromString, toString as bytesToString } from 'uint8arrays'
import { DHT_RECORD_PREFIX, type ChatDatastore, type ChatPeer } from '@conf-chat/node/network'

/** Hold `value` under `key` in `peer`'s store, whatever was there, with its write guard off from now on. */
export async function storeUnchecked (peer: ChatPeer, key: string, value: Uint8Array): Promise<void> {
  const ds = (peer as unknown as { datastore: ChatDatastore }).datastore
  ds.recordGuard = undefined
  const dsKey = new Key(`${DHT_RECORD_PREFIX}/${bytesToString(bytesFromString(key), 'base32')}`, false)
  await ds.put(dsKey, new Libp2pRecord(bytesFromString(key), value, new Date()).serialize())
}
