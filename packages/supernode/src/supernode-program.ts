/** The `supernode` program: a DHT server on a fixed port with a stable identity, until SIGINT or SIGTERM. */
import { join, resolve } from 'node:path'
import { logger } from '@libp2p/logger'
import { ChatPeer } from '@conf-chat/node/network'
import { applyLogLevel, dataRoot, followPeer, StatusFile, supernodeFile, writeSupernodeFile } from '@conf-chat/program'
import { parseSupernodeOptions } from './options.js'
import { DataDirInUseError, fatal } from './errors.js'

const log = logger('conf-chat:supernode')

/** How long a clean stop may take before the program gives up on it. */
const STOP_TIMEOUT_MS = 15_000

/** LevelDB refuses a second opener of a datastore; datastore-level drops the cause, so
 * any failure to open is reported as the likely one. */
function isDatastoreLocked (err: any): boolean {
  return err?.name === 'OpenFailedError'
}

export async function runSupernodeProgram (argv: string[]): Promise<number> {
  const options = parseSupernodeOptions(argv)
  applyLogLevel(options.logLevel)
  fatal.setShowStacks(options.logLevel !== 'info')
  const root = dataRoot()
  const dataDir = options.data != null ? resolve(options.data) : join(root, 'supernode')
  // constructing checks the bootstrap addresses (InvalidMultiaddrError) before anything starts
  const peer = new ChatPeer({ dataDir, host: options.host, port: options.port, bootstrap: options.bootstrap, storageBudgetBytes: options.storageBudgetBytes, relay: options.relay })
  const status = options.statusFile != null ? new StatusFile(resolve(options.statusFile)) : undefined
  await status?.set('starting')
  if (status != null) followPeer(status, peer)
  const stopped = new Promise<void>(resolve => {
    process.once('SIGINT', () => { resolve() })
    process.once('SIGTERM', () => { resolve() })
  })
  peer.addEventListener('network:joined', ({ detail }) => { console.log(`joined the network via ${detail.via}`) })
  peer.addEventListener('network:lost', () => { console.log('lost every connection to the network; reconnecting') })
  peer.addEventListener('network:unreachable', ({ detail }) => {
    const line = `cannot reach any bootstrap peer (tried ${detail.tried.length}); retrying in ${Math.round(detail.retryInMs / 1000)}s`
    // without --bootstrap these are only peers remembered from earlier runs: not worth a line
    if (options.bootstrap.length > 0) console.log(line)
    else log(line)
  })
  try {
    await peer.start().catch(err => {
      if (isDatastoreLocked(err)) throw new DataDirInUseError(`cannot open the datastore in ${dataDir}: is another supernode using this data directory?`)
      throw err
    })
    const multiaddrs = peer.multiaddrs.map(a => a.toString())
    const file = supernodeFile(root)
    await writeSupernodeFile(file, { peerId: peer.peerId.toString(), multiaddrs, pid: process.pid, startedAt: new Date().toISOString() })
    console.log(`supernode peer id: ${peer.peerId.toString()}`)
    for (const addr of multiaddrs) console.log(`listening on ${addr}`)
    const r = options.relay
    console.log(r == null
      ? 'relay: off'
      : `relay: on (${r.maxReservations} slots, each connection up to ${r.durationLimitMs / 1000}s and ${r.dataLimitBytes / 1024} KiB)`)
    console.log(`data directory: ${dataDir}`)
    console.log(`address file: ${file} (peers on this machine read it)`)
    // the first peer of the network is in it once it listens; one with bootstrap peers when it joins them
    if (options.bootstrap.length === 0) await status?.set('joined', peer.peerId.toString())
    await stopped
  } finally {
    const giveUp = setTimeout(() => {
      process.stderr.write(`error: could not stop cleanly within ${STOP_TIMEOUT_MS / 1000}s\n`)
      process.exit(1)
    }, STOP_TIMEOUT_MS)
    giveUp.unref()
    await status?.set('stopping')
    await peer.stop()
    await status?.remove()
    clearTimeout(giveUp)
    log('stopped')
  }
  return 0
}
