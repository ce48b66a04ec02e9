/**
 * The owner-signed membership records of conferences (`/cc-conf/<ownerKeyId>/<localId>`):
 * the newest verified one of each conference in memory (with the members' keys), a copy
 * in this peer's local store, reads from and writes to the DHT. Every change is a new
 * record with a higher sequence number; only the owner's key can sign one.
 */
import type { AbortOptions, Logger } from '@libp2p/interface'
import {
  conferenceKey, createSignedRecord, encodeSignedRecord, verifyConferenceRecord,
  type AccountKeys, type ConferenceEntry, type ConferencePayload, type ConferenceRef, type VerifiedRecord
} from '@conf-chat/protocol'
import type { ConferencesComponents } from './types.js'

export type ConferenceRecord = VerifiedRecord<ConferencePayload>

export interface ConferenceRecordsComponents {
  /** This user's key id: the local cache is kept per account. */
  me: { keyId: string }
  keys: Pick<AccountKeys, 'signPublic' | 'signSecret'>
  records: ConferencesComponents['records']
  local: ConferencesComponents['local']
  now: () => number
  log: Logger
}

/** The DHT key of a conference's record. */
export function refKey (ref: ConferenceRef): string {
  return conferenceKey(ref.owner, ref.local)
}

export class ConferenceRecords {
  private readonly components: ConferenceRecordsComponents
  /** The newest verified record of each conference, with the members' keys. */
  private readonly newest = new Map<string, ConferenceRecord>()

  constructor (components: ConferenceRecordsComponents) {
    this.components = components
  }

  /** The newest record held in memory for the conference `id`. */
  held (id: string): ConferenceRecord | undefined {
    return this.newest.get(id)
  }

  /** Keep `record` if it is newer than the one held (in memory and in this peer's cache). */
  async keep (id: string, record: ConferenceRecord, options: AbortOptions = {}): Promise<void> {
    const held = this.newest.get(id)
    if (held != null && held.record.seq >= record.record.seq) return
    this.newest.set(id, record)
    await this.components.local.put(this.cacheKey(id), record.value, options)
  }

  /**
   * The conference's record in the DHT; undefined if the holders answered that there is
   * none. Throws UnknownRecordError when the network could not tell: a caller that would
   * refuse a member's message on the answer must not refuse on that.
   */
  async read (ref: ConferenceRef, options: AbortOptions = {}): Promise<ConferenceRecord | undefined> {
    return await this.components.records.get<ConferencePayload>(refKey(ref), options)
  }

  /** The newest record we hold for a conference: in memory, this peer's cache, or the DHT. */
  async find (entry: ConferenceEntry, options: AbortOptions = {}): Promise<ConferenceRecord | undefined> {
    const held = this.newest.get(entry.id)
    if (held != null && held.record.seq >= entry.seq) return held
    const cached = await this.components.local.get<Uint8Array>(this.cacheKey(entry.id), options)
    if (cached instanceof Uint8Array) {
      try {
        const r = verifyConferenceRecord(entry.ref, cached)
        if (r.record.seq >= entry.seq) { this.newest.set(entry.id, r); return r }
      } catch (err: any) {
        this.components.log('cached record of %s unusable: %s', entry.id, err.message)
      }
    }
    const found = await this.read(entry.ref, options).catch(() => undefined)
    if (found != null && found.record.seq >= (held?.record.seq ?? 0)) this.newest.set(entry.id, found)
    return this.newest.get(entry.id)
  }

  /**
   * The owner writes a new version of the record, on the newest it can find (another
   * session of the owner, on another peer, may have written one): `mutate` changes a copy.
   * Throws UnknownRecordError, writing nothing, when the DHT could not tell whether a
   * newer version exists (a version built on an older one would drop its changes).
   */
  async change (entry: ConferenceEntry, mutate: (p: ConferencePayload) => void, options: AbortOptions = {}): Promise<ConferenceRecord> {
    let base = await this.find(entry, options)
    const found = await this.read(entry.ref, options)
    if (found != null && (base == null || found.record.seq > base.record.seq)) base = found
    const payload: ConferencePayload = base != null
      ? structuredClone(base.payload)
      : { name: entry.name, owner: entry.owner, members: entry.members.map(m => ({ ...m })), left: entry.left.map(l => ({ ...l })), createdAt: entry.createdAt, updatedAt: 0 }
    mutate(payload)
    payload.updatedAt = this.components.now()
    return await this.put(entry.ref, Math.max(base?.record.seq ?? 0, entry.seq) + 1, payload, options)
  }

  /** Sign `payload` as version `seq` of the record and store it in the DHT. */
  async put (ref: ConferenceRef, seq: number, payload: ConferencePayload, options: AbortOptions = {}): Promise<ConferenceRecord> {
    const key = refKey(ref)
    const value = encodeSignedRecord(createSignedRecord(key, seq, payload, this.components.keys))
    const record = verifyConferenceRecord(ref, value)
    const result = await this.components.records.put(key, value, options)
    // the envelopes carry the record: members get it even if no DHT peer took it now (holders republish our copy)
    if (result.replicas === 0) this.components.log('conference record %s seq %d stored on no other peer yet', key, seq)
    return record
  }

  private cacheKey (id: string): string {
    return `/conf/${this.components.me.keyId}/${id}`
  }
}
