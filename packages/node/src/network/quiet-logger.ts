/**
 * The peer's component logger: @libp2p/logger's for every name a DEBUG pattern enables,
 * one no-op logger for the others.
 *
 * @libp2p/logger builds three `debug` instances for each logger it hands out (the log,
 * `:error` and, when enabled, `:trace`), and each one asks whether stderr is a terminal
 * (an `isatty` system call) and picks a colour. libp2p asks for a new logger scope for
 * every connection, upgrade, noise handshake, stream and protocol negotiation, so with
 * nothing enabled those loggers cost 2.3 % of the CPU of a connection opened and closed
 * again, and `isatty` alone 0.8 s of the 89.6 busy seconds of 200 peers' puts (README's
 * performance notes).
 *
 * Whether a name is enabled is decided when its logger is made, as @libp2p/logger
 * decides `:trace`: the programs set their log level before the peer starts
 * (`applyLogLevel`).
 */
import { enabled, logger as libp2pLogger } from '@libp2p/logger'
import type { ComponentLogger, Logger, PeerId } from '@libp2p/interface'

/** A logger that prints nothing; its scopes are looked at again (a pattern may enable `a:b:*` but not `a:b`). */
function quiet (name: string): Logger {
  const log = (() => {}) as unknown as Logger
  log.error = () => {}
  log.trace = () => {}
  log.enabled = false
  log.newScope = (scope: string) => loggerFor(`${name}:${scope}`)
  return log
}

function loggerFor (name: string): Logger {
  if (enabled(name) || enabled(`${name}:error`) || enabled(`${name}:trace`)) return libp2pLogger(name)
  return quiet(name)
}

/** Components log under `<peer>:<component>`, `<peer>` the peer id shortened as @libp2p/logger's `peerLogger` does. */
export function quietPeerLogger (peerId: PeerId): ComponentLogger {
  const id = peerId.toString()
  const prefix = `${id.slice(0, 2)}…${id.slice(-4)}`
  return {
    forComponent: (name: string) => loggerFor(`${prefix}:${name}`)
  }
}
