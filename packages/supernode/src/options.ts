/** The supernode's flags, each also read from an environment variable. */
import { Command, InvalidArgumentError, Option } from 'commander'
import { DEFAULT_HOST, DEFAULT_SUPERNODE_PORT, DEFAULT_STORAGE_BUDGET_BYTES } from '@conf-chat/node'
import { DEFAULT_RELAY_LIMITS, type RelayLimits } from '@conf-chat/node/network'
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
  /** The circuit relay's limits; undefined: no relay (`--no-relay`). */
  relay?: RelayLimits
}

function wholeNumber (min: number, max: number): (value: string) => number {
  return value => {
    const n = Number(value)
    if (!/^\d+$/.test(value.trim()) || n < min || n > max) throw new InvalidArgumentError(`a whole number from ${min} to ${max}.`)
    return n
  }
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
    .addOption(new Option('--no-relay', 'do not relay for peers behind NAT (they cannot be dialled through this supernode); also CONF_CHAT_NO_RELAY=1'))
    .addOption(new Option('--relay-max-reservations <n>', 'peers behind NAT that may hold a relay slot at once')
      .env('CONF_CHAT_RELAY_MAX_RESERVATIONS').argParser(wholeNumber(1, 100_000)).default(DEFAULT_RELAY_LIMITS.maxReservations))
    .addOption(new Option('--relay-reservation-ttl <seconds>', 'how long a relay slot lasts before its peer renews it')
      .env('CONF_CHAT_RELAY_RESERVATION_TTL').argParser(wholeNumber(10, 86_400)).default(DEFAULT_RELAY_LIMITS.reservationTtlMs / 1000))
    .addOption(new Option('--relay-duration-limit <seconds>', 'most time one relayed connection stays open (the next message opens another)')
      .env('CONF_CHAT_RELAY_DURATION_LIMIT').argParser(wholeNumber(1, 86_400)).default(DEFAULT_RELAY_LIMITS.durationLimitMs / 1000))
    .addOption(new Option('--relay-data-limit <KiB>', 'most KiB one relayed connection carries, both ways together (the next message opens another)')
      .env('CONF_CHAT_RELAY_DATA_LIMIT').argParser(wholeNumber(4, 1024 * 1024)).default(DEFAULT_RELAY_LIMITS.dataLimitBytes / 1024))
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
    storageBudgetBytes: storageBytes(opts.storage),
    relay: opts.relay === false || ['1', 'true', 'yes', 'on'].includes((process.env.CONF_CHAT_NO_RELAY ?? '').trim().toLowerCase())
      ? undefined
      : {
          maxReservations: opts.relayMaxReservations,
          reservationTtlMs: opts.relayReservationTtl * 1000,
          durationLimitMs: opts.relayDurationLimit * 1000,
          dataLimitBytes: opts.relayDataLimit * 1024
        }
  }
}
