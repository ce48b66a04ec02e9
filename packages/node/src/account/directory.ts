/**
 * The user directory: who is registered, for `users` and `search`. Many peers write it
 * at once, so it is not one DHT value but append-only sets (a few shards, by hash of the
 * username) on the peers closest to each shard's key. Entries are signed by their
 * user; a reader trusts an entry only if the name's owner (the user record) signed it.
 */
import { logger } from '@libp2p/logger'
import pMap from 'p-map'
import {
  createDirectoryItem, decodeDirectoryItem, directorySetKey, directoryShardOf, allDirectoryShards, bytesEqual, keyIdOf,
  type SetItem, type AccountKeys, type DirectoryEntry
} from '@conf-chat/protocol'
import type { UserProfile } from './accounts.js'

const log = logger('conf-chat:directory')

/** How many DHT reads one listing runs at once (a network of a few peers shares two cores). */
const LOOKUP_CONCURRENCY = 8

/** What the directory needs of the set store. */
export interface DirectorySets {
  add: (setKey: string, items: SetItem[], options?: { signal?: AbortSignal }) => Promise<unknown>
  list: (setKey: string, options?: { signal?: AbortSignal }) => Promise<SetItem[]>
}

export interface DirectoryUser {
  username: string
  fullName: string
  online: boolean
}

export interface DirectoryLookups {
  /** The verified owner of a name (undefined: no such account). */
  profile: (username: string) => Promise<UserProfile | undefined>
  /** Whether the account with this key id is online now. */
  online: (keyId: string) => Promise<boolean>
}

export class Directory {
  private readonly sets: DirectorySets
  private readonly lookups: DirectoryLookups

  constructor (sets: DirectorySets, lookups: DirectoryLookups) {
    this.sets = sets
    this.lookups = lookups
  }

  /** List the account in its shard. Idempotent: the item id is fixed by the key and creation time. */
  async publish (account: { username: string, fullName: string, createdAt: number, keys: AccountKeys }): Promise<void> {
    const item = createDirectoryItem({ username: account.username, fullName: account.fullName, createdAt: account.createdAt }, account.keys)
    await this.sets.add(directorySetKey(directoryShardOf(account.username)), [item])
  }

  /** Registered users whose name starts with `prefix`, online first, then by name. */
  async list (prefix = ''): Promise<DirectoryUser[]> {
    const p = prefix.toLowerCase()
    return await this.resolve((await this.entries()).filter(e => e.username.startsWith(p)))
  }

  /** Users whose username starts with `text` or whose full name contains it (any case). */
  async search (text: string): Promise<DirectoryUser[]> {
    const t = text.toLowerCase().trim()
    if (t === '') return await this.list()
    const entries = await this.entries()
    return await this.resolve(entries.filter(e => e.username.startsWith(t) || e.fullName.toLowerCase().includes(t)))
  }

  /** Every verified entry of every shard. A shard that cannot be read is skipped; if none
   * can be read the error is thrown, so an unreachable network never looks like "no users". */
  private async entries (): Promise<DirectoryEntry[]> {
    const failures: Error[] = []
    const lists = await Promise.all(allDirectoryShards().map(async shard => {
      const key = directorySetKey(shard)
      try {
        // a shard whose holders could not be found or read (a busy moment) is tried twice
        const items = await this.sets.list(key).catch(async (err: Error) => {
          log('listing shard %s failed (%s); trying again', shard, err.message)
          return await this.sets.list(key)
        })
        return items.flatMap(item => {
          try { return [decodeDirectoryItem(key, item)] } catch (err: any) { log('ignored a directory item: %s', err.message); return [] }
        })
      } catch (err: any) {
        log('could not list shard %s: %s', shard, err.message)
        failures.push(err)
        return []
      }
    }))
    if (failures.length === lists.length && failures[0] != null) throw failures[0]
    return lists.flat()
  }

  /**
   * One entry per name, with online status. A name with one entry needs no further
   * read: the entry is signed by its key. Where several keys list one name, the name's
   * owner (the user record) decides; a name with no account behind it is dropped.
   */
  private async resolve (entries: DirectoryEntry[]): Promise<DirectoryUser[]> {
    const byName = new Map<string, DirectoryEntry[]>()
    for (const e of entries) {
      const list = byName.get(e.username) ?? []
      if (!list.some(c => bytesEqual(c.signPublic, e.signPublic))) list.push(e)
      byName.set(e.username, list)
    }
    const users = await pMap(byName.entries(), async ([username, candidates]) => {
      let entry = candidates[0]
      if (candidates.length > 1) {
        const owner = await this.lookups.profile(username).catch(() => undefined)
        entry = owner == null ? undefined : candidates.find(c => bytesEqual(c.signPublic, owner.signPublic))
      }
      if (entry == null) return undefined
      const online = await this.lookups.online(keyIdOf(entry.signPublic)).catch(() => false)
      return { username, fullName: entry.fullName, online }
    }, { concurrency: LOOKUP_CONCURRENCY })
    return users
      .filter((u): u is DirectoryUser => u != null)
      .sort((a, b) => Number(b.online) - Number(a.online) || a.username.localeCompare(b.username))
  }
}
