/**
 * Verified profiles (public keys) of users by name, read from their user records and
 * kept: a name's key never changes, so a profile once verified needs no second read.
 */
import type { AbortOptions } from '@libp2p/interface'
import { UnknownUserError } from '../errors.js'
import type { UserProfile } from './accounts.js'

export interface ProfilesComponents {
  /** Reads a user's profile from the DHT (undefined: no such account). */
  lookup: (username: string, options?: AbortOptions) => Promise<UserProfile | undefined>
}

export class Profiles {
  private readonly lookup: ProfilesComponents['lookup']
  private readonly known = new Map<string, UserProfile>()

  constructor (components: ProfilesComponents) {
    this.lookup = components.lookup
  }

  /** The verified profile of `username`. Throws UnknownUserError when there is no such account. */
  async get (username: string, options: AbortOptions = {}): Promise<UserProfile> {
    const cached = this.known.get(username)
    if (cached != null) return cached
    const profile = await this.lookup(username, options)
    if (profile == null) throw new UnknownUserError(username)
    this.known.set(username, profile)
    return profile
  }

  /** Keep a profile verified elsewhere (the user's own, at login). */
  remember (profile: UserProfile): void {
    this.known.set(profile.username, profile)
  }

  /** Forget a cached profile (the next `get` reads the DHT again). */
  forget (username: string): void {
    this.known.delete(username)
  }
}
