/**
 * Data directories of peers: `<root>/peers/peer-N`, the first N not in use by a running
 * peer, so that several peers on one machine need no flags and each keeps its identity
 * across restarts. "In use" is a lock file holding the owner's pid; a dead pid is stale.
 */
import { mkdir, readFile, rm, rmdir, stat, unlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { logger } from '@libp2p/logger'
import { DataDirInUseError } from './errors.js'

const log = logger('conf-chat:cli:data-dir')

export const LOCK_FILE = 'peer.lock'
/** Held (as a directory, created atomically) only while a peer picks its peer-N. */
const ALLOCATE_MUTEX = '.allocate.lock'
/** A mutex older than this was left by a process that died while picking. */
const MUTEX_STALE_MS = 10_000
const MAX_PEER_DIRS = 1000

export interface DataDirLock {
  dir: string
  release: () => Promise<void>
}

export function isProcessAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err: any) {
    return err.code === 'EPERM' // alive, owned by another user
  }
}

/** The pid of the running process holding `dir`, or undefined if it is free. */
async function lockHolder (dir: string): Promise<number | undefined> {
  let text: string
  try {
    text = await readFile(join(dir, LOCK_FILE), 'utf8')
  } catch (err: any) {
    if (err.code === 'ENOENT') return undefined
    throw err
  }
  const pid = Number.parseInt(text.trim(), 10)
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid || !isProcessAlive(pid)) return undefined
  return pid
}

async function writeLock (dir: string): Promise<DataDirLock> {
  await mkdir(dir, { recursive: true })
  const file = join(dir, LOCK_FILE)
  await writeFile(file, `${process.pid}\n`)
  return {
    dir,
    release: async () => {
      // leave a lock that another process took over (ours was stale to it) alone
      const text = await readFile(file, 'utf8').catch(() => '')
      if (text.trim() === String(process.pid)) await unlink(file).catch(() => {})
    }
  }
}

async function withMutex<T> (path: string, fn: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      await mkdir(path)
      break
    } catch (err: any) {
      if (err.code !== 'EEXIST') throw err
      const info = await stat(path).catch(() => undefined)
      if (info == null) continue // released meanwhile: try again
      if (Date.now() - info.mtimeMs > MUTEX_STALE_MS) {
        log('removing stale mutex %s', path)
        await rm(path, { recursive: true, force: true })
      } else if (attempt > 200) {
        throw new DataDirInUseError(`cannot pick a data directory: ${path} is held by another process`)
      } else {
        await new Promise(resolve => setTimeout(resolve, 50))
      }
    }
  }
  try {
    return await fn()
  } finally {
    await rmdir(path).catch(() => {})
  }
}

/** Lock a data directory given by the user; fails if a running peer holds it. */
export async function lockDataDir (dir: string): Promise<DataDirLock> {
  await mkdir(dir, { recursive: true })
  return await withMutex(join(dir, ALLOCATE_MUTEX), async () => {
    const pid = await lockHolder(dir)
    if (pid != null) throw new DataDirInUseError(`data directory ${dir} is in use by another peer (pid ${pid})`)
    return await writeLock(dir)
  })
}

/** Lock the first free `<root>/peers/peer-N` (N from 1). */
export async function allocatePeerDataDir (root: string): Promise<DataDirLock> {
  const peersDir = join(root, 'peers')
  await mkdir(peersDir, { recursive: true })
  return await withMutex(join(peersDir, ALLOCATE_MUTEX), async () => {
    for (let n = 1; n <= MAX_PEER_DIRS; n++) {
      const dir = join(peersDir, `peer-${n}`)
      const pid = await lockHolder(dir)
      if (pid == null) return await writeLock(dir)
      log('%s is in use by pid %d', dir, pid)
    }
    throw new DataDirInUseError(`all ${MAX_PEER_DIRS} peer data directories under ${peersDir} are in use`)
  })
}
