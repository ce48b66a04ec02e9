/** The supernode's flags, each also read from an environment variable. */
import { Command, Option } from 'commander'
import { DEFAULT_HOST, DEFAULT_SUPERNODE_PORT, DEFAULT_STORAGE_BUDGET_BYTES } from '@conf-chat/node'
import { LOG_LEVELS, parsePort, splitAddrList, storageBytes, storageOption, type LogLevel } from '@conf-chat/program'

export interface SupernodeOptions {
  host: string
  port: number
  /** Undefined: `<home>/supernode`. */
  data?: string
  bootstrap: string[]
  logLevel: LogLevel
  /** Where to keep the one-line status (starting, joined...) for a health check. */
  statusFile?: string
  /** Most bytes held for others; undefined = the library's default. */
  storageBudgetBytes?: number
}

export function supernodeProgram (): Command {
  return new Command('conf-chat-supernode')
    .description('The conf-chat bootstrap peer: a DHT server with a stable identity and address.')
    .addOption(new Option('--host <address>', 'address to listen on (IPv4 or IPv6)').env('CONF_CHAT_HOST').default(DEFAULT_HOST))
    .addOption(new Option('--port <port>', 'TCP port to listen on').env('CONF_CHAT_PORT').default(DEFAULT_SUPERNODE_PORT).argParser(parsePort))
    .addOption(new Option('--data <dir>', 'data directory (identity key, datastore) [default: <home>/supernode]').env('CONF_CHAT_DATA'))
    .addOption(new Option('--bootstrap <multiaddr>', 'other supernode to join; repeatable, or comma/space separated')
      .env('CONF_CHAT_BOOTSTRAP').argParser(splitAddrList))
    .addOption(new Option('--status-file <file>', 'keep this file saying where the supernode stands (starting, joined, stopping), for a health check').env('CONF_CHAT_STATUS_FILE'))
    .addOption(new Option('--log-level <level>', 'logs on stderr').env('CONF_CHAT_LOG').choices(LOG_LEVELS).default('info'))
    .addOption(storageOption(DEFAULT_STORAGE_BUDGET_BYTES))
    .addHelpText('after', '\n<home> is $CONF_CHAT_HOME, or ~/.conf-chat if it is not set. The supernode writes its\naddresses to <home>/supernode.json, where peers on this machine find them.')
}

export function parseSupernodeOptions (argv: string[]): SupernodeOptions {
  const opts = supernodeProgram().parse(argv).opts()
  return {
    host: opts.host,
    port: opts.port,
    data: opts.data === '' ? undefined : opts.data,
    bootstrap: opts.bootstrap ?? [],
    logLevel: opts.logLevel,
    statusFile: opts.statusFile === '' ? undefined : opts.statusFile,
    storageBudgetBytes: storageBytes(opts.storage)
  }
}
