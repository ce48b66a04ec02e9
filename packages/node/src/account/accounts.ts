/**
 * Accounts in the DHT: registration (first come, first served names), login from any
 * peer (one Argon2id over the password gives the bcrypt verifier's input and the key
 * that decrypts the private keys: protocol's password.ts), and password change (the same
 * keys re-encrypted: the identity does not change). A login upgrades a record made with
 * less work than this peer's parameters (or before Argon2id) by writing it again.
 */
import bcrypt from 'bcryptjs'
import * as cborg from 'cborg'
import { z } from 'zod'
import type { AbortOptions, ComponentLogger, Logger } from '@libp2p/interface'
import {
  generateAccountKeys, keyIdOf, decryptWithPassword, createSignedRecord, encodeSignedRecord,
  userKey, checkUsername, checkNewPassword, checkFullName, bytesEqual, decodeCbor, nameClaimants, fingerprintOf,
  sealWithPassword, derivePasswordKeys, openWithPasswordKey, paramsOf, weakerThan, doNameWork, DEFAULT_PWHASH,
  type AccountKeys, type AccountPayload, type UserPayload, type VerifiedRecord, type PwhashParams
} from '@conf-chat/protocol'
import { UnknownRecordError, type RecordStore } from '../network/index.js'
import { ContestedNameError, NameTakenError, UnknownUserError, WrongPasswordError } from '../errors.js'
import { DEFAULT_BCRYPT_COST, LOGIN_THROTTLE_BASE_MS, LOGIN_THROTTLE_MAX_MS } from '../constants.js'
import { delay } from '../utils/index.js'

/** Reads of a name before it is claimed: a claim never rests on a read that could not tell. */
const NAME_READ_ATTEMPTS = 3

export interface AccountsInit {
  /** bcrypt cost factor. @default 10 */
  bcryptCost?: number
  /** Argon2id parameters for passwords set on this peer. @default 3 passes over 128 MiB */
  pwhash?: PwhashParams
  /** Wait before reading a name again when a read could not tell (registration, login). @default 1000 ms */
  nameReadRetryMs?: number
}

/** A user as others see them: from the user record. */
export interface UserProfile {
  username: string
  fullName: string
  keyId: string
  signPublic: Uint8Array
  boxPublic: Uint8Array
}

export interface Account extends UserProfile {
  keys: AccountKeys
  record: VerifiedRecord<AccountPayload>
}

/** Time spent in each part of a login, for the figures. */
export interface LoginTimings {
  networkMs: number
  /** Argon2id (scrypt for a record made before it). */
  kdfMs: number
  bcryptMs: number
  /** Writing the record again with this peer's parameters (0 if it needed none). */
  upgradeMs: number
}

const secretKeysSchema = z.object({
  signSecret: z.custom<Uint8Array>(v => v instanceof Uint8Array && v.length === 64),
  boxSecret: z.custom<Uint8Array>(v => v instanceof Uint8Array && v.length === 32)
}).strict()

export function profileOf (record: VerifiedRecord<AccountPayload>): UserProfile {
  return {
    username: record.payload.username,
    fullName: record.payload.fullName,
    keyId: keyIdOf(record.record.pub),
    signPublic: record.record.pub,
    boxPublic: record.payload.boxPublic
  }
}

export interface AccountsComponents {
  records: Pick<RecordStore, 'read' | 'getAll' | 'getLocal' | 'put'>
  /** A read of `username` could not tell and is made again in `retryInMs` (a slow network: the user is told). */
  onRetry?: (username: string, attempt: number, retryInMs: number) => void
  /**
   * A login found its account and now checks the password: work the session will need
   * that takes no keys (a DHT lookup) can start alongside.
   */
  onFound?: (profile: UserProfile) => void
  logger: ComponentLogger
}

export class Accounts {
  private readonly records: AccountsComponents['records']
  private readonly onRetry?: AccountsComponents['onRetry']
  private readonly onFound?: AccountsComponents['onFound']
  private readonly log: Logger
  private readonly bcryptCost: number
  private readonly pwhash: PwhashParams
  private readonly nameReadRetryMs: number
  private readonly failures = new Map<string, { count: number, until: number }>()

  constructor (components: AccountsComponents, init: AccountsInit = {}) {
    this.records = components.records
    this.onRetry = components.onRetry
    this.onFound = components.onFound
    this.log = components.logger.forComponent('conf-chat:account:accounts')
    this.bcryptCost = init.bcryptCost ?? DEFAULT_BCRYPT_COST
    this.pwhash = init.pwhash ?? DEFAULT_PWHASH
    this.nameReadRetryMs = init.nameReadRetryMs ?? 1_000
  }

  /**
   * The live account record for a name, read from every replica that answers (no quorum
   * to stop at: attacker peers that answer first must not hide the honest holders);
   * undefined if there is none. Throws UnknownRecordError when the read could not tell (a
   * slow network is not "no such user"), and ContestedNameError when the replicas read
   * disagree about which key owns the name: never a majority pick, which a few attacker
   * peers near the key would decide.
   */
  async lookup (username: string, options: AbortOptions = {}): Promise<VerifiedRecord<AccountPayload> | undefined> {
    const key = userKey(username)
    const read = await this.records.getAll<UserPayload>(key, options)
    if (read.status === 'unknown') throw new UnknownRecordError(key, `${read.answers.none} answered, ${read.answers.failed} did not`)
    const claimants = nameClaimants(key, read.all.map(r => r.value))
    if (claimants.length > 1) {
      this.log('%s is contested by %d keys', username, claimants.length)
      throw new ContestedNameError(username, claimants.map(pub => fingerprintOf(keyIdOf(pub))))
    }
    const found = read.best
    if (found == null || found.payload.type !== 'account') return undefined
    return found as VerifiedRecord<AccountPayload>
  }

  /**
   * `lookup`, read again (after `nameReadRetryMs`, then twice that) while the network cannot
   * tell: a busy network answers the next read more often than not. Throws
   * UnknownRecordError after the last attempt.
   */
  private async lookupRetrying (username: string, options: AbortOptions): Promise<VerifiedRecord<AccountPayload> | undefined> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.lookup(username, options)
      } catch (err: any) {
        if (err.name !== 'UnknownRecordError' || attempt >= NAME_READ_ATTEMPTS) throw err
        this.log('%s: %s (attempt %d), reading again', username, err.message, attempt)
        this.onRetry?.(username, attempt, attempt * this.nameReadRetryMs)
        await delay(attempt * this.nameReadRetryMs, options)
      }
    }
  }

  async profile (username: string, options: AbortOptions = {}): Promise<UserProfile | undefined> {
    const record = await this.lookup(username, options)
    return record == null ? undefined : profileOf(record)
  }

  /**
   * Create an account. Names are first come, first served: a name already held is
   * refused, and of two peers racing for one name the one most replicas hold wins;
   * the loser gives the name up with a signed tombstone and is told it is taken. Throws
   * UnknownRecordError, and claims nothing, when the first read could not tell whether
   * the name is free.
   */
  async register (input: { username: string, password: string, fullName: string }, options: AbortOptions = {}): Promise<Account> {
    checkUsername(input.username)
    const fullName = checkFullName(input.fullName)
    await checkNewPassword(input.password, [input.username, fullName])
    const key = userKey(input.username)
    if (await this.lookupRetrying(input.username, options) != null) throw new NameTakenError(input.username)

    const keys = generateAccountKeys()
    const { work, tries } = await doNameWork(input.username, keys.signPublic, options)
    this.log('proof of work for %s: %d tries', input.username, tries)
    const now = Date.now()
    const payload: AccountPayload = {
      type: 'account',
      username: input.username,
      fullName,
      boxPublic: keys.boxPublic,
      work,
      ...await this.credentials(keys, input.password),
      createdAt: now,
      updatedAt: now
    }
    const record = createSignedRecord(key, 1, payload, keys)
    try {
      await this.records.put(key, encodeSignedRecord(record), options)
    } catch (err: any) {
      if (err.name === 'RecordConflictError') throw new NameTakenError(input.username)
      throw err
    }
    // every replica our put reached has now decided: read them all (no quorum) to see who won
    const { best, all } = await this.records.getAll<UserPayload>(key, options)
    if (best == null || !bytesEqual(best.record.pub, keys.signPublic)) {
      this.log('lost the race for %s; releasing it', input.username)
      const released = createSignedRecord(key, 2, { type: 'released', username: input.username, updatedAt: Date.now() }, keys)
      await this.records.put(key, encodeSignedRecord(released), options).catch(() => {})
      throw new NameTakenError(input.username)
    }
    if (all.some(r => !bytesEqual(r.record.pub, keys.signPublic))) {
      // replicas that held the loser's claim take ours once it is released
      setTimeout(() => { this.records.put(key, best.value).catch(() => {}) }, 3_000).unref()
    }
    const verified = best as VerifiedRecord<AccountPayload>
    return { ...profileOf(verified), keys, record: verified }
  }

  /**
   * Check the password and decrypt the account's keys: one Argon2id, then bcrypt over its
   * first half. A record made with less work than this peer's parameters is written again
   * with them (the same keys, the next sequence number) before the login returns; if that
   * write fails the login still succeeds, and the next one tries again.
   */
  async login (username: string, password: string, options: AbortOptions = {}): Promise<{ account: Account, timings: LoginTimings }> {
    checkUsername(username)
    await this.throttle(username, options)
    let t = performance.now()
    const record = await this.lookupRetrying(username, options)
    const networkMs = performance.now() - t
    if (record == null) throw new UnknownUserError(username)
    this.onFound?.(profileOf(record))
    const { keys, kdfMs, bcryptMs } = await this.unlock(username, record, password)
    this.failures.delete(username)
    this.log('%s: account record found in %d ms, password checked in %d ms (Argon2id %d, bcrypt %d)', username, Math.round(networkMs), Math.round(kdfMs + bcryptMs), Math.round(kdfMs), Math.round(bcryptMs))
    t = performance.now()
    let account: Account = { ...profileOf(record), keys, record }
    if (weakerThan(record.payload.secretKeys, this.pwhash) || record.payload.work == null) {
      try {
        account = await this.publishCredentials(account, record, password, options)
        this.log('%s: record upgraded (Argon2id %d x %d MiB, proof of work for the name)', username, this.pwhash.opsLimit, this.pwhash.memLimit / 2 ** 20)
      } catch (err: any) {
        this.log('%s: could not upgrade the password record (%s); next login tries again', username, err.message)
      }
    }
    return { account, timings: { networkMs, kdfMs, bcryptMs, upgradeMs: performance.now() - t } }
  }

  /** Re-encrypt the same keys under a new password and publish the next version. */
  async changePassword (account: Account, oldPassword: string, newPassword: string, options: AbortOptions = {}): Promise<Account> {
    await checkNewPassword(newPassword, [account.username, account.fullName])
    const current = await this.lookup(account.username, options) ?? account.record
    if (!bytesEqual(current.record.pub, account.signPublic)) throw new NameTakenError(account.username)
    await this.unlock(account.username, current, oldPassword)
    return await this.publishCredentials(account, current, newPassword, options)
  }

  /** The verifier and the sealed keys for `password`, with this peer's Argon2id parameters. */
  private async credentials (keys: AccountKeys, password: string): Promise<Pick<AccountPayload, 'passwordHash' | 'secretKeys'>> {
    const { sealed, verifier } = await sealWithPassword(cborg.encode({ signSecret: keys.signSecret, boxSecret: keys.boxSecret }), password, this.pwhash)
    return { passwordHash: await bcrypt.hash(verifier, this.bcryptCost), secretKeys: sealed }
  }

  /** The next version of the account record, with `password`'s credentials, written to the DHT. */
  private async publishCredentials (account: Account, current: VerifiedRecord<AccountPayload>, password: string, options: AbortOptions): Promise<Account> {
    // a record made before names cost work gets its proof now: holders it has not reached yet need it
    const work = current.payload.work ?? (await doNameWork(account.username, account.signPublic, options)).work
    const payload: AccountPayload = { ...current.payload, ...await this.credentials(account.keys, password), work, updatedAt: Date.now() }
    const key = userKey(account.username)
    const record = createSignedRecord(key, current.record.seq + 1, payload, account.keys)
    await this.records.put(key, encodeSignedRecord(record), options)
    const verified = (await this.records.getLocal<AccountPayload>(key)) ?? current
    return { ...account, record: verified }
  }

  /** The account's keys, if `password` is its password; else WrongPasswordError (counted by the throttle). */
  private async unlock (username: string, record: VerifiedRecord<AccountPayload>, password: string): Promise<{ keys: AccountKeys, kdfMs: number, bcryptMs: number }> {
    const sealed = record.payload.secretKeys
    let t = performance.now()
    let verifierInput = password
    let open: () => Promise<Uint8Array>
    if (sealed.kdf === 'argon2id') {
      const derived = await derivePasswordKeys(password, sealed.salt, paramsOf(sealed))
      verifierInput = derived.verifier
      open = async () => openWithPasswordKey(sealed, derived.key)
    } else {
      open = async () => await decryptWithPassword(sealed, password)
    }
    let kdfMs = performance.now() - t
    t = performance.now()
    const ok = await bcrypt.compare(verifierInput, record.payload.passwordHash)
    const bcryptMs = performance.now() - t
    if (!ok) {
      this.recordFailure(username)
      throw new WrongPasswordError()
    }
    t = performance.now()
    const plain = await open()
    kdfMs += performance.now() - t
    const secrets = secretKeysSchema.parse(decodeCbor(plain))
    return { keys: { signPublic: record.record.pub, signSecret: secrets.signSecret, boxPublic: record.payload.boxPublic, boxSecret: secrets.boxSecret }, kdfMs, bcryptMs }
  }

  /** Wrong passwords on this peer slow the next attempt down: 0.5 s, 1 s, 2 s, ... 30 s. */
  private async throttle (username: string, options: AbortOptions): Promise<void> {
    const f = this.failures.get(username)
    const wait = f == null ? 0 : f.until - Date.now()
    if (wait > 0) await delay(wait, options)
  }

  private recordFailure (username: string): void {
    const count = (this.failures.get(username)?.count ?? 0) + 1
    const delay = Math.min(LOGIN_THROTTLE_BASE_MS * 2 ** (count - 1), LOGIN_THROTTLE_MAX_MS)
    this.failures.set(username, { count, until: Date.now() + delay })
  }
}
