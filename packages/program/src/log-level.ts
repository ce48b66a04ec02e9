import { enable } from '@libp2p/logger'

/** `info`: the program's own lines only; `debug`: also conf-chat's logs (and stack traces);
 * `trace`: also libp2p's. Logs go to stderr, never to stdout. A peer's components log under
 * its peer id (`<peer>:conf-chat:...`, `<peer>:libp2p:...`), the programs without one. */
export const LOG_LEVELS = ['info', 'debug', 'trace'] as const
export type LogLevel = typeof LOG_LEVELS[number]

export function applyLogLevel (level: LogLevel): void {
  // DEBUG=... in the environment still works at the default level (weald reads it)
  if (level === 'debug') enable('conf-chat:*,*:conf-chat:*,-*conf-chat:*:trace')
  else if (level === 'trace') enable('conf-chat:*,*:conf-chat:*,libp2p:*,*:libp2p:*')
}
