/**
 * Accounts over a stand-in for the record store whose reads can be told to come back
 * "unknown" (as RecordStore.get does when the network could not tell): a read that
 * could not tell is never "no such user" and never "the name is free".
 */
import { describe, it, expect } from 'vitest'
import bcrypt from 'bcryptjs'
import * as cborg from 'cborg'
import {
  verifyRecordValue, checkUpdate, userKey, selectRecord, fingerprintOf, derivePasswordKeys, openWithPasswordKey, paramsOf,
  generateAccountKeys, encryptWithPassword, createSignedRecord, encodeSignedRecord, decodeCbor, bytesEqual, PWHASH_BOUNDS,
  type VerifiedRecord, type AccountPayload, type PwhashParams
} from '@conf-chat/protocol'
import { defaultLogger } from '@libp2p/logger'
import { Accounts, type AccountsComponents } from '../../../src/account/accounts.js'
import { UnknownRecordError } from '../../../src/network/records/index.js'

class MemoryRecords {
  readonly stored = new Map<string, VerifiedRecord>()
  readonly puts: string[] = []
  /** Reads cannot tell (the network is slow). */
  unknown = false

  async put (key: string, value: Uint8Array): Promise<{ replicas: number, refused: number }> {
    const incoming = verifyRecordValue(key, value)
    checkUpdate(this.stored.get(key), incoming)
    this.puts.push(key)
    this.stored.set(key, incoming)
    return { replicas: 1, refused: 0 }
  }

  /** What other holders (another owner's peers) answer for a key, next to what `stored` holds. */
  readonly others = new Map<string, VerifiedRecord[]>()

  reads = 0
  /**
   * As RecordStore.read: our own copy, then the others' in the order they answer, up to
   * the quorum (7, as for names), the one the selector picks, and the outcome.
   */
  async read<P> (key: string, quorum = 7): Promise<{ status: 'found' | 'absent' | 'unknown', best?: VerifiedRecord<P>, all: Array<VerifiedRecord<P>>, answers: { none: number, failed: number } }> {
    this.reads++
    if (this.unknown) return { status: 'unknown', all: [], answers: { none: 0, failed: 3 } }
    const own = this.stored.get(key)
    const all = [...(own != null ? [own] : []), ...(this.others.get(key) ?? [])].slice(0, quorum) as Array<VerifiedRecord<P>>
    const best = all[selectRecord(key, all.map(r => r.value))]
    return { status: best != null ? 'found' : 'absent', ...(best != null ? { best } : {}), all, answers: { none: 0, failed: 0 } }
  }

  /** As RecordStore.getAll: `read` of every replica that answers. */
  async getAll<P> (key: string): Promise<{ status: 'found' | 'absent' | 'unknown', best?: VerifiedRecord<P>, all: Array<VerifiedRecord<P>>, answers: { none: number, failed: number } }> {
    return await this.read<P>(key, Infinity)
  }

  async getLocal<P> (key: string): Promise<VerifiedRecord<P> | undefined> {
    return this.stored.get(key) as VerifiedRecord<P> | undefined
  }
}

/** The least Argon2id a record may ask for: fast enough for unit tests. */
const CHEAP: PwhashParams = { opsLimit: 1, memLimit: PWHASH_BOUNDS.memMin }

function accountsOver (records: MemoryRecords, onRetry?: AccountsComponents['onRetry'], pwhash = CHEAP): Accounts {
  return new Accounts({ records: records as unknown as AccountsComponents['records'], onRetry, logger: defaultLogger() }, { bcryptCost: 4, pwhash, nameReadRetryMs: 1 })
}

const input = { username: 'alice', password: 'correct horse', fullName: 'Alice A.' }

describe('accounts when the network cannot tell', () => {
  it('registration claims nothing when its read cannot tell whether the name is free', async () => {
    const records = new MemoryRecords()
    const retries: string[] = []
    const accounts = accountsOver(records, (username, attempt, ms) => { retries.push(`${username} ${attempt} ${ms}`) })
    records.unknown = true
    await expect(accounts.register(input)).rejects.toMatchObject({ name: 'UnknownRecordError' })
    expect(records.puts).toEqual([])
    // it read the name three times before giving up, and said so before each new read
    expect(records.reads).toBe(3)
    expect(retries).toEqual(['alice 1 1', 'alice 2 2'])
    // the same read telling "absent" lets the registration go on
    records.unknown = false
    const account = await accounts.register(input)
    expect(records.puts).toEqual([userKey('alice')])
    expect(account.username).toBe('alice')
  })

  it('a login whose read cannot tell is not "unknown user"; a lookup that tells "absent" is', async () => {
    const records = new MemoryRecords()
    const accounts = accountsOver(records)
    await accounts.register(input)
    records.unknown = true
    await expect(accounts.login('alice', input.password)).rejects.toMatchObject({ name: 'UnknownRecordError' })
    await expect(accounts.profile('alice')).rejects.toMatchObject({ name: 'UnknownRecordError' })
    records.unknown = false
    await expect(accounts.login('nobody', input.password)).rejects.toMatchObject({ name: 'UnknownUserError' })
    expect((await accounts.login('alice', input.password)).account.username).toBe('alice')
  })
})

describe('login', () => {
  it('tells whom it found before the password is checked (the session\'s lookups start then), and nobody for an unknown name', async () => {
    const records = new MemoryRecords()
    const found: string[] = []
    const accounts = new Accounts({
      records: records as unknown as AccountsComponents['records'],
      onFound: profile => { found.push(profile.keyId) },
      logger: defaultLogger()
    }, { bcryptCost: 4, pwhash: CHEAP, nameReadRetryMs: 1 })
    const account = await accounts.register(input)
    await expect(accounts.login('nobody', input.password)).rejects.toMatchObject({ name: 'UnknownUserError' })
    expect(found).toEqual([])
    // before the check: a wrong password is told too
    await expect(accounts.login('alice', 'wrong horse battery')).rejects.toMatchObject({ name: 'WrongPasswordError' })
    expect(found).toEqual([account.keyId])
    await accounts.login('alice', input.password)
    expect(found).toEqual([account.keyId, account.keyId])
  })
})

describe('accounts when the replicas of a name disagree', () => {
  it('a name two keys claim is contested: no login with either password, no profile, no registration; never a majority pick', async () => {
    const honest = new MemoryRecords()
    const real = await accountsOver(honest).register(input)
    // another key's account under the same name, held by more peers than the real one
    const attacker = new MemoryRecords()
    const forged = await accountsOver(attacker).register({ ...input, password: 'attacker password' })
    const key = userKey('alice')
    honest.others.set(key, [forged.record, forged.record, forged.record] as VerifiedRecord[])
    const accounts = accountsOver(honest)
    const contested = {
      name: 'ContestedNameError',
      fingerprints: expect.toSatisfy((f: string[]) => f.length === 2 && f.includes(fingerprintOf(real.keyId)) && f.includes(fingerprintOf(forged.keyId))),
      message: expect.stringMatching(/^name contested: 2 keys claim alice \([0-9a-f ]+; [0-9a-f ]+\)/)
    }
    await expect(accounts.login('alice', 'attacker password')).rejects.toMatchObject(contested)
    await expect(accounts.login('alice', input.password)).rejects.toMatchObject(contested)
    await expect(accounts.profile('alice')).rejects.toMatchObject(contested)
    await expect(accounts.register({ ...input, password: 'another password' })).rejects.toMatchObject(contested)
    // once the other claim is gone (released, or never there), the name is the real owner's again
    honest.others.delete(key)
    expect((await accounts.login('alice', input.password)).account.keyId).toBe(real.keyId)
  })

  it('a peer with no copy of its own, whose first 7 answers are all the attacker\'s: still contested, from every replica', async () => {
    const honest = new MemoryRecords()
    const real = await accountsOver(honest).register(input)
    const attacker = new MemoryRecords()
    const forged = await accountsOver(attacker).register({ ...input, password: 'attacker password' })
    const fresh = new MemoryRecords()
    // the attacker's 7 peers answer first; the honest holders after them
    fresh.others.set(userKey('alice'), [...Array(7).fill(forged.record), real.record, real.record] as VerifiedRecord[])
    const accounts = accountsOver(fresh)
    await expect(accounts.login('alice', 'attacker password')).rejects.toMatchObject({ name: 'ContestedNameError' })
    await expect(accounts.profile('alice')).rejects.toMatchObject({ name: 'ContestedNameError' })
  })
})

describe('passwords', () => {
  const stored = (records: MemoryRecords): VerifiedRecord<AccountPayload> => records.stored.get(userKey('alice')) as VerifiedRecord<AccountPayload>

  it('a record gives a guesser no oracle cheaper than one Argon2id: the bcrypt verifier and the keys both need its output', async () => {
    const records = new MemoryRecords()
    const account = await accountsOver(records).register(input)
    const { payload } = stored(records)
    const sealed = payload.secretKeys
    if (sealed.kdf !== 'argon2id') throw new Error(`sealed with ${sealed.kdf}`)
    // the parameters are in the record, so that they can be raised later
    expect(paramsOf(sealed)).toEqual(CHEAP)
    // bcrypt over the password itself (the old record's oracle) says nothing
    expect(await bcrypt.compare(input.password, payload.passwordHash)).toBe(false)
    const derived = await derivePasswordKeys(input.password, sealed.salt, paramsOf(sealed))
    expect(await bcrypt.compare(derived.verifier, payload.passwordHash)).toBe(true)
    const secrets = decodeCbor(openWithPasswordKey(sealed, derived.key)) as { signSecret: Uint8Array }
    expect(bytesEqual(secrets.signSecret, account.keys.signSecret)).toBe(true)
    // a wrong guess opens neither
    const wrong = await derivePasswordKeys('correct horsf', sealed.salt, paramsOf(sealed))
    expect(await bcrypt.compare(wrong.verifier, payload.passwordHash)).toBe(false)
    expect(() => openWithPasswordKey(sealed, wrong.key)).toThrow(/Wrong password/)
  })

  it('refuses a short or guessable password at registration and at a change, saying why', async () => {
    const records = new MemoryRecords()
    const accounts = accountsOver(records)
    await expect(accounts.register({ ...input, password: 'violet kett' })).rejects.toMatchObject({ name: 'InvalidInputError', message: expect.stringMatching(/too short: at least 12/) })
    await expect(accounts.register({ ...input, password: 'password1234' })).rejects.toMatchObject({ name: 'InvalidInputError', message: expect.stringMatching(/too weak/) })
    // the user's own name counts as a known word
    await expect(accounts.register({ ...input, password: 'alicealice12' })).rejects.toMatchObject({ message: expect.stringMatching(/too weak/) })
    expect(records.puts).toEqual([])
    const account = await accounts.register(input)
    await expect(accounts.changePassword(account, input.password, 'qwertyuiop12')).rejects.toMatchObject({ message: expect.stringMatching(/too weak/) })
    expect(records.puts).toEqual([userKey('alice')])
  })

  it('an account made before Argon2id (bcrypt of the password, keys under scrypt) logs in and is upgraded: same keys, next version', async () => {
    const records = new MemoryRecords()
    const keys = generateAccountKeys()
    const now = Date.now()
    const legacy: AccountPayload = {
      type: 'account',
      username: 'alice',
      fullName: 'Alice A.',
      boxPublic: keys.boxPublic,
      passwordHash: await bcrypt.hash(input.password, 4),
      secretKeys: await encryptWithPassword(cborg.encode({ signSecret: keys.signSecret, boxSecret: keys.boxSecret }), input.password, { N: 1024, r: 8, p: 1 }),
      createdAt: now,
      updatedAt: now
    }
    // held since before names cost work (a new claim without work is refused now)
    records.stored.set(userKey('alice'), verifyRecordValue(userKey('alice'), encodeSignedRecord(createSignedRecord(userKey('alice'), 1, legacy, keys))))
    const accounts = accountsOver(records)
    await expect(accounts.login('alice', 'correct horsf')).rejects.toMatchObject({ name: 'WrongPasswordError' })
    expect(stored(records).record.seq).toBe(1)
    const { account } = await accountsOver(records).login('alice', input.password)
    expect(bytesEqual(account.keys.signSecret, keys.signSecret)).toBe(true)
    const upgraded = stored(records)
    expect(upgraded.record.seq).toBe(2)
    expect(upgraded.payload.secretKeys.kdf).toBe('argon2id')
    expect(upgraded.payload.work).toEqual(expect.any(Number))
    expect(await bcrypt.compare(input.password, upgraded.payload.passwordHash)).toBe(false)
    expect(account.record.record.seq).toBe(2)
    // and the upgraded record logs in with the same password, with nothing more to write
    const again = await accountsOver(records).login('alice', input.password)
    expect(bytesEqual(again.account.keys.boxSecret, keys.boxSecret)).toBe(true)
    expect(stored(records).record.seq).toBe(2)
  })

  it('a record made with less work than this peer asks for is written again with its parameters at login', async () => {
    const records = new MemoryRecords()
    await accountsOver(records).register(input)
    const stronger = { opsLimit: 2, memLimit: PWHASH_BOUNDS.memMin }
    await accountsOver(records, undefined, stronger).login('alice', input.password)
    const sealed = stored(records).payload.secretKeys
    expect(sealed.kdf === 'argon2id' && paramsOf(sealed)).toEqual(stronger)
    expect(stored(records).record.seq).toBe(2)
    // a peer with weaker parameters does not lower them
    await accountsOver(records).login('alice', input.password)
    expect(stored(records).record.seq).toBe(2)
  })
})
