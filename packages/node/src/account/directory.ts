/**
 * The user directory: who is registered, for `users` and `search`. Many peers write it
 * at once, so it is not one DHT value but append-only sets (a few shards, by hash of the
 * username) on the peers closest to each shard's key. Entries are signed by their
 * user; a reader trusts an entry only if the name's owner (the user record) signed it.
 */
import type { AbortOptions, ComponentLogger, Logger } from '@libp2p/interface'
import pMap from 'p-map'
import {
  createDirectoryItem, decodeDirectoryItem, directorySetKey, directoryShardOf, allDirectoryShards, bytesEqual, keyIdOf,
  type SetItem, type AccountKeys, type DirectoryEntry
} from '@conf-chat/protocol'
import type { UserProfile } from './accounts.js'

/** How many DHT reads one listing runs at once (a network of a few peers shares two cores). */
const LOOKUP_CONCURRENCY = 8

/** What the directory needs of the set store. */
export interface DirectorySets {
  add: (setKey: string, items: SetItem[], options?: AbortOptions) => Promise<unknown>
  list: (setKey: string, options?: AbortOptions) => Promise<SetItem[]>
}

export interface DirectoryUser {
  username: string
  fullName: string
  online: boolean
}

export interface DirectoryComponents {
  sets: DirectorySets
  /** The verified owner of a name (undefined: no such account). */
  profile: (username: string, options?: AbortOptions) => Promise<UserProfile | undefined>
  /** Whether the account with this key id is online now. */
  online: (keyId: string, options?: AbortOptions) => Promise<boolean>
  logger: ComponentLogger
}

export class Directory {
  private readonly sets: DirectorySets
  private readonly lookups: Pick<DirectoryComponents, 'profile' | 'online'>
  private readonly log: Logger

  constructor (components: DirectoryComponents) {
    this.sets = components.sets
    this.lookups = components
    this.log = components.logger.forComponent('conf-chat:account:directory')
  }

  /** List the account in its shard. Idempotent: the item id is fixed by the key and creation time. */
  async publish (account: { username: string, fullName: string, createdAt: number, keys: AccountKeys }, options: AbortOptions = {}): Promise<void> {
    const item = createDirectoryItem({ username: account.username, fullName: account.fullName, createdAt: account.createdAt }, account.keys)
    await this.sets.add(directorySetKey(directoryShardOf(account.username)), [item], options)
  }

  /** Registered users whose name starts with `prefix`, online first, then by name. */
  async list (prefix = '', options: AbortOptions = {}): Promise<DirectoryUser[]> {
    const p = prefix.toLowerCase()
    return await this.resolve((await this.entries(options)).filter(e => e.username.startsWith(p)), options)
  }

  /** Users whose username starts with `text` or whose full name contains it (any case). */
  async search (text: string, options: AbortOptions = {}): Promise<DirectoryUser[]> {
    const t = text.toLowerCase().trim()
    if (t === '') return await this.list('', options)
    const entries = await this.entries(options)
    return await this.resolve(entries.filter(e => e.username.startsWith(t) || e.fullName.toLowerCase().includes(t)), options)
  }

  /** Every verified entry of every shard. A shard that cannot be read is skipped; if none
   * can be read the error is thrown, so an unreachable network never looks like "no users". */
  private async entries (options: AbortOptions): Promise<DirectoryEntry[]> {
    const failures: Error[] = []
    const lists = await Promise.all(allDirectoryShards().map(async shard => {
      const key = directorySetKey(shard)
      try {
        // a shard whose holders could not be found or read (a busy moment) is tried twice
        const items = await this.sets.list(key, options).catch(async (err: Error) => {
          options.signal?.throwIfAborted()
          this.log('listing shard %s failed (%s); trying again', shard, err.message)
          return await this.sets.list(key, options)
        })
        return items.flatMap(item => {
          try { return [decodeDirectoryItem(key, item)] } catch (err: any) { this.log('ignored a directory item: %s', err.message); return [] }
        })
      } catch (err: any) {
        this.log('could not list shard %s: %s', shard, err.message)
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
  private async resolve (entries: DirectoryEntry[], options: AbortOptions): Promise<DirectoryUser[]> {
    const byName = new Map<string, DirectoryEntry[]>()
    for (const e of entries) {
      const list = byName.get(e.username) ?? []
      if (!list.some(c => bytesEqual(c.signPublic, e.signPublic))) list.push(e)
      byName.set(e.username, list)
    }
    const users = await pMap(byName.entries(), async ([username, candidates]) => {
      let entry = candidates[0]
      if (candidates.length > 1) {
        const owner = await this.lookups.profile(username, options).catch(() => undefined)
        entry = owner == null ? undefined : candidates.find(c => bytesEqual(c.signPublic, owner.signPublic))
      }
      if (entry == null) return undefined
      const online = await this.lookups.online(keyIdOf(entry.signPublic), options).catch(() => false)
      return { username, fullName: entry.fullName, online }
    }, { concurrency: LOOKUP_CONCURRENCY, signal: options.signal })
    // a read cut short by the caller is no "offline"
    options.signal?.throwIfAborted()
    return users
      .filter((u): u is DirectoryUser => u != null)
      .sort((a, b) => Number(b.online) - Number(a.online) || a.username.localeCompare(b.username))
  }
}
