/** The `node` program: a peer that joins the network, then runs command mode or, on a terminal, the interactive UI. */
import { resolve } from 'node:path'
import { logger } from '@libp2p/logger'
import { createChatNode, DEFAULT_HOST, DEFAULT_SUPERNODE_PORT, parseBootstrapAddrs, type ChatNode } from '@conf-chat/node'
import { applyLogLevel, dataRoot, followPeer, readSupernodeAddrs, StatusFile, supernodeFile } from '@conf-chat/program'
import { parseNodeOptions, type NodeOptions } from './options.js'
import { allocatePeerDataDir, lockDataDir } from './data-dir.js'
import { LineTerminal } from './terminal.js'
import { commands as defaultCommands, type CommandTable } from './commands/index.js'
import { runCommandMode } from './modes/command-mode.js'
import { DM_KIND, RECEIPT_KIND } from '@conf-chat/protocol'
import { liveDmLine, offlineLines, deliveryText, keyChangedLine, stateText } from './format.js'
import { subscribeConferenceNotices, withConferenceLabel } from './commands/conferences.js'
import { DataDirInUseError, fatal } from './errors.js'
import type { NodeApp } from './app.js'

const log = logger('conf-chat:cli')

/**
 * How long a stopping program's logout may write (friends told, pending history and
 * private state, presence "offline") before it is cut short. History entries not yet in
 * the pages stay marked on this peer and are written at the next login here, and so are
 * changes from friends' and conferences' envelopes (the state journal), and the user's own
 * last changes to friends and conferences whose write reached this peer's own record store
 * (a put stores the writer's copy first); a change whose write the network held up before
 * that (its read first) is not kept, nor is the "offline" record (it lapses; friends were
 * told). With the peer's own stop (STOP_SETTLE_MS, 2 s
 * at most, then libp2p's) it fits in the 10 s a container engine gives a container to stop.
 */
export const LOGOUT_ON_STOP_MS = 6_000

/** How long a clean stop may take, from the stop signal, before the program gives up on it. */
const STOP_TIMEOUT_MS = 15_000

export interface BootstrapChoice { addrs: string[], source: string }

/** The supernode's default address on this machine, for when it has not written its file yet. */
export function defaultSupernodeAddr (): string {
  return `/ip4/${DEFAULT_HOST}/tcp/${DEFAULT_SUPERNODE_PORT}`
}

/** Flags or variable first, then the supernode's address file, then its default address. */
export async function chooseBootstrap (options: Pick<NodeOptions, 'bootstrap' | 'bootstrapSource'>, root: string): Promise<BootstrapChoice> {
  if (options.bootstrap.length > 0) {
    return { addrs: options.bootstrap, source: options.bootstrapSource === 'env' ? 'CONF_CHAT_BOOTSTRAP' : '--bootstrap' }
  }
  const fromFile = await readSupernodeAddrs(root, { log: log.newScope('home') })
  if (fromFile != null) return { addrs: fromFile, source: supernodeFile(root) }
  // the supernode may come up later on its default address: the retry loop will find it
  return { addrs: [defaultSupernodeAddr()], source: `the supernode's default address (no ${supernodeFile(root)} yet)` }
}

/** Events of the core library, shown as notice lines (above the prompt on a terminal). */
function subscribeNotices (node: ChatNode, notice: (line: string) => void): void {
  node.addEventListener('session:ended', ({ detail }) => {
    if (detail.reason === 'takeover') notice('logged out: your account logged in on another peer')
  })
  node.addEventListener('message', ({ detail }) => { notice(liveDmLine(detail)) })
  node.addEventListener('messages:offline', ({ detail }) => {
    if (detail.messages.length > 0) for (const line of offlineLines(detail.messages.map(withConferenceLabel))) notice(line)
  })
  node.addEventListener('presence', ({ detail }) => { notice(`[presence] ${detail.username} is ${detail.online ? 'online' : 'offline'}`) })
  subscribeConferenceNotices(node, notice)
  node.addEventListener('friend:request', ({ detail }) => {
    notice(`[friends] ${detail.username} wants to be your friend${detail.note != null ? `: ${detail.note}` : ''} (friend-accept ${detail.username})`)
  })
  node.addEventListener('friend:accepted', ({ detail }) => { notice(`[friends] ${detail.username} accepted: you are now friends`) })
  node.addEventListener('friend:rejected', ({ detail }) => { notice(`[friends] ${detail.username} turned down your friend request`) })
  node.addEventListener('friend:removed', ({ detail }) => { notice(`[friends] ${detail.username} removed you from their friends`) })
  node.addEventListener('friend:key-changed', ({ detail }) => { notice(`[friends] ${keyChangedLine(detail)}`) })
  node.addEventListener('message:status', ({ detail }) => {
    if (detail.kind === DM_KIND || detail.kind === RECEIPT_KIND) return // a message's state changes are told below; receipts say nothing
    notice(`[${detail.kind}] queued message to ${detail.to}: ${deliveryText({ id: detail.id, status: detail.status, where: detail.where, reason: detail.reason })}`)
  })
  // the `msg` command prints how its send went; what happens later is told as it happens
  const sending = new Set<string>()
  node.addEventListener('message:state', ({ detail }) => {
    if (detail.state === 'sending') { sending.add(detail.id); return }
    if (sending.delete(detail.id)) return
    // a conference message: each member's copy
    notice(detail.conference != null ? `[conf-msg] in ${detail.conference} to ${detail.to}: ${stateText(detail)}` : `[msg] to ${detail.to}: ${stateText(detail)}`)
  })
}

export interface NodeProgramInit {
  commands?: CommandTable
}

export async function runNodeProgram (argv: string[], init: NodeProgramInit = {}): Promise<number> {
  const options = parseNodeOptions(argv)
  applyLogLevel(options.logLevel)
  fatal.setShowStacks(options.logLevel !== 'info')
  const root = dataRoot()
  const bootstrap = await chooseBootstrap(options, root)
  parseBootstrapAddrs(bootstrap.addrs) // a malformed address fails before anything is written
  const lock = options.data != null ? await lockDataDir(resolve(options.data)) : await allocatePeerDataDir(root)
  const status = options.statusFile != null ? new StatusFile(resolve(options.statusFile)) : undefined
  await status?.set('starting')

  const stopping = new AbortController()
  // the logout's writes are cut short LOGOUT_ON_STOP_MS after the stop begins (a signal,
  // or the end of command mode: `logout` there, or Quit in the menus, logs out in full
  // first), and the program gives up STOP_TIMEOUT_MS after it
  const logoutCut = new AbortController()
  let cutTimer: NodeJS.Timeout | undefined
  let giveUp: NodeJS.Timeout | undefined
  const interactive = !options.commands && process.stdin.isTTY === true
  const terminal = new LineTerminal({ interactive, onInterrupt: () => { stop() } })
  const stop = (): void => {
    if (stopping.signal.aborted) return
    stopping.abort()
    terminal.close()
    cutTimer = setTimeout(() => { logoutCut.abort() }, LOGOUT_ON_STOP_MS)
    giveUp = setTimeout(() => {
      process.stderr.write(`error: could not stop cleanly within ${STOP_TIMEOUT_MS / 1000}s\n`)
      process.exit(1)
    }, STOP_TIMEOUT_MS)
    cutTimer.unref()
    giveUp.unref()
  }
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
  process.stdout.on('error', stop) // EPIPE: whoever read our output is gone

  const node = createChatNode({
    dataDir: lock.dir,
    host: options.host,
    port: options.port,
    bootstrap: bootstrap.addrs,
    clientMode: options.client || undefined,
    reachability: options.reachability,
    upnp: options.upnp,
    storageBudgetBytes: options.storageBudgetBytes,
    readReceipts: options.readReceipts,
    ...options.tuning
  })
  const peer = node.peer
  if (status != null) followPeer(status, peer)
  const app: NodeApp = { node, peer, dataDir: lock.dir, bootstrap, bell: options.bell }
  // events that come before the start-up lines are printed wait for them
  const early: string[] = []
  let started = false
  const notice = (line: string): void => { if (started) terminal.notice(line); else early.push(line) }
  peer.addEventListener('network:joined', ({ detail }) => {
    app.joinedVia = detail.via
    notice(`joined the network via ${detail.via}`)
  })
  peer.addEventListener('network:unreachable', ({ detail }) => {
    notice(`cannot reach any bootstrap peer (tried ${detail.tried.length}); retrying in ${Math.round(detail.retryInMs / 1000)}s`)
  })
  peer.addEventListener('network:lost', () => { notice('lost every connection to the network; reconnecting') })
  // the usual case (reachable) says nothing
  peer.addEventListener('network:reachability', ({ detail }) => {
    if (detail.reached === 'private') notice('this peer cannot be dialled from outside (behind a NAT): friends reach it through the supernode\'s relay')
  })
  // a read the user waits for could not tell yet (never taken as "nothing there")
  node.addEventListener('network:slow', ({ detail }) => {
    notice(`network slow, retrying: reading ${detail.what} again in ${Math.max(1, Math.round(detail.retryInMs / 1000))}s (attempt ${detail.attempt + 1})`)
  })
  // changes to friends and conferences kept here that the network has not taken yet
  node.addEventListener('state:unsaved', ({ detail }) => {
    notice(`your friends and conferences are not saved to the network (${detail.failures} tries, last: ${detail.reason}); kept here, still trying`)
  })
  node.addEventListener('state:saved', () => { notice('your friends and conferences are saved to the network again') })

  // the menus show the core's events their own way (tui/inbox.ts); command mode as plain lines
  if (!interactive) subscribeNotices(node, notice)

  try {
    await node.start().catch(err => {
      // LevelDB refuses a second opener; datastore-level drops the cause
      if (err?.name === 'OpenFailedError') throw new DataDirInUseError(`cannot open the datastore in ${lock.dir}: is another program using this data directory?`)
      throw err
    })
    terminal.print(`peer id: ${peer.peerId.toString()}`)
    for (const addr of peer.multiaddrs) terminal.print(`listening on ${addr.toString()}`)
    terminal.print(`data directory: ${lock.dir}`)
    terminal.print(`bootstrap: ${bootstrap.addrs.join(' ')} (from ${bootstrap.source})`)
    started = true
    for (const line of early.splice(0)) terminal.notice(line)
    // the menus (inquirer, ora and what they load) only on a terminal: command mode never
    // needs them, and ora's string-width makes an Intl.Segmenter at load (ICU data, ~2.5 MiB RSS)
    const mode = interactive ? (await import('./modes/interactive-mode.js')).runInteractiveMode : runCommandMode
    await mode({ app, terminal, commands: init.commands ?? defaultCommands, signal: stopping.signal, logoutSignal: logoutCut.signal })
  } finally {
    stop()
    process.off('SIGINT', stop)
    process.off('SIGTERM', stop)
    try {
      await status?.set('stopping')
      // logs the user out: friends see them go offline at once
      await node.stop({ signal: logoutCut.signal })
      log('stopped')
    } finally {
      clearTimeout(cutTimer)
      clearTimeout(giveUp)
      await status?.remove()
      await lock.release()
    }
  }
  return 0
}
