/**
 * The work a name costs: a memory-hard proof of work bound to the name and the key that
 * claims it, so that squatting names costs what registering them costs.
 *
 * A claim of `/cc-user/<name>` carries `work`, a number such that Argon2id (1 pass over
 * 8 MiB, libsodium's `crypto_pwhash`) of the name, the claiming key and that number
 * starts with `NAME_WORK_BITS` zero bits: 2^7 = 128 tries on average; on this machine
 * 2.0 s of CPU a name (two tries at a time, ~13 ms each; 0.7 s to register, median), over
 * four times what the password's Argon2id and bcrypt of a registration cost besides, so a
 * squatter pays more for each name than a real user's registration used to cost in all.
 * Checking it is one try (8 ms). Every holder checks it before it stores a new claim of
 * a name (protocol's checkUpdate), and every reader before it counts a claim: a name
 * squatter pays the work for each name, and an attacker serving forged claims to make a
 * name look contested pays it for each claim. Memory-hard, so a GPU gains little over a
 * core.
 *
 * Tests lower the bits with the environment variable CONF_CHAT_NAME_WORK_BITS (0: one
 * try); every peer of one network must use the same value.
 */
import sodium from 'sodium-native'
import { createHash, randomBytes } from 'node:crypto'

const MiB = 1024 * 1024
const DOMAIN = 'conf-chat:name-work:1'
const STRANGER_DOMAIN = 'conf-chat:stranger-work:1'

/** One try: Argon2id with these parameters. */
export const NAME_WORK_PARAMS = { opsLimit: 1, memLimit: 8 * MiB } as const

export const DEFAULT_NAME_WORK_BITS = 7

function bitsFromEnv (): number {
  const raw = process.env.CONF_CHAT_NAME_WORK_BITS
  if (raw == null || raw.trim() === '') return DEFAULT_NAME_WORK_BITS
  const n = Number(raw)
  if (!Number.isInteger(n) || n < 0 || n > 24) throw new Error(`CONF_CHAT_NAME_WORK_BITS must be a whole number from 0 to 24, not ${raw}`)
  return n
}

/** The zero bits a name's work must start with, on this network. */
export const NAME_WORK_BITS = bitsFromEnv()

/** The largest `work` a record may carry. */
export const MAX_NAME_WORK = Number.MAX_SAFE_INTEGER

/** What a name's work is bound to: the name and the key that claims it. */
function nameClaim (username: string, signPublic: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from(`${DOMAIN}\0${username}\0`), Buffer.from(signPublic)])
}

/** What a stranger's work is bound to: the mailbox and the key its sealed item is signed by. */
function strangerClaim (writer: Uint8Array, mailboxKeyId: string): Buffer {
  return Buffer.concat([Buffer.from(`${STRANGER_DOMAIN}\0${mailboxKeyId}\0`), Buffer.from(writer)])
}

function inputs (claim: Buffer, work: number): { password: Buffer, salt: Buffer } {
  const nonce = Buffer.alloc(8)
  nonce.writeBigUInt64BE(BigInt(work))
  return {
    password: Buffer.concat([claim, nonce]),
    salt: createHash('sha256').update(claim).digest().subarray(0, 16)
  }
}

function leadingZeroBits (bytes: Uint8Array): number {
  let bits = 0
  for (const b of bytes) {
    if (b === 0) { bits += 8; continue }
    return bits + Math.clz32(b) - 24
  }
  return bits
}

/** Whether `work` is a valid proof for `username` claimed by `signPublic` (one Argon2id run, on this thread). */
export function checkNameWork (username: string, signPublic: Uint8Array, work: number, bits = NAME_WORK_BITS): boolean {
  if (!Number.isSafeInteger(work) || work < 0) return false
  const { password, salt } = inputs(nameClaim(username, signPublic), work)
  const out = Buffer.alloc(32)
  sodium.crypto_pwhash(out, password, salt, NAME_WORK_PARAMS.opsLimit, NAME_WORK_PARAMS.memLimit, sodium.crypto_pwhash_ALG_ARGON2ID13)
  return leadingZeroBits(out) >= bits
}

async function tryWork (claim: Buffer, work: number, bits: number): Promise<boolean> {
  if (!Number.isSafeInteger(work) || work < 0) return false
  const { password, salt } = inputs(claim, work)
  const out = Buffer.alloc(32)
  await new Promise<void>((resolve, reject) => {
    sodium.crypto_pwhash_async(out, password, salt, NAME_WORK_PARAMS.opsLimit, NAME_WORK_PARAMS.memLimit, sodium.crypto_pwhash_ALG_ARGON2ID13,
      (err?: Error | null) => { if (err != null) reject(err); else resolve() })
  })
  return leadingZeroBits(out) >= bits
}

export interface NameWorkOptions {
  bits?: number
  /** Tries run at once (libuv's thread pool runs them). @default 2 */
  lanes?: number
  signal?: AbortSignal
}

/**
 * Find a proof for `username` claimed by `signPublic`: tries from a random start, off the
 * event loop, `lanes` at a time. Returns the work and the tries it took.
 */
export async function doNameWork (username: string, signPublic: Uint8Array, options: NameWorkOptions = {}): Promise<{ work: number, tries: number }> {
  return await doWork(nameClaim(username, signPublic), options)
}

/**
 * A stranger's work: what a sealed item from a sender the mailbox's owner does not list
 * carries (sealed-envelope.ts), bound to the mailbox and the item's signing key, at the
 * cost of a name. Holders limit strangers per signing key; with this, a new key costs
 * what a new account costs, as when they limited strangers per account.
 */
export async function doStrangerWork (writer: Uint8Array, mailboxKeyId: string, options: NameWorkOptions = {}): Promise<{ work: number, tries: number }> {
  return await doWork(strangerClaim(writer, mailboxKeyId), options)
}

/** Whether `work` is a valid stranger's work for `writer` into the mailbox of `mailboxKeyId` (one Argon2id run, off the event loop). */
export async function checkStrangerWork (writer: Uint8Array, mailboxKeyId: string, work: number, bits = NAME_WORK_BITS): Promise<boolean> {
  return await tryWork(strangerClaim(writer, mailboxKeyId), work, bits)
}

async function doWork (claim: Buffer, options: NameWorkOptions): Promise<{ work: number, tries: number }> {
  const bits = options.bits ?? NAME_WORK_BITS
  const lanes = options.lanes ?? 2
  let next = randomBytes(4).readUInt32BE() * 1024
  let tries = 0
  let found: number | undefined
  const lane = async (): Promise<void> => {
    while (found == null) {
      options.signal?.throwIfAborted()
      const work = next++
      tries++
      if (await tryWork(claim, work, bits)) found ??= work
    }
  }
  await Promise.all(Array.from({ length: lanes }, lane))
  return { work: found as number, tries }
}
