/** The node program's flags, each also read from an environment variable. */
import { Command, InvalidArgumentError, Option } from 'commander'
import { DEFAULT_HOST, DEFAULT_PRESENCE_TTL_MS, DEFAULT_STORAGE_BUDGET_BYTES } from '@conf-chat/node'
import { LOG_LEVELS, parsePort, splitAddrList, storageBytes, storageOption, type LogLevel } from '@conf-chat/program'
import { DEFAULT_PWHASH, PWHASH_BOUNDS, type PwhashParams } from '@conf-chat/protocol'

const MiB = 1024 * 1024

export interface NodeOptions {
  host: string
  port: number
  /** Undefined: pick `<root>/peers/peer-N`. */
  data?: string
  bootstrap: string[]
  /** Where `bootstrap` came from: 'cli', 'env', or 'default' (empty: use the supernode file). */
  bootstrapSource: string
  client: boolean
  /** `auto`: found out at join by a dial-back; `private`: behind a NAT, reached through relays (a DHT client). */
  reachability: 'auto' | 'public' | 'private'
  commands: boolean
  /** Tell friends what the user read (off: `--no-read-receipts`). */
  readReceipts: boolean
  /** Ask the home router to forward a port when not reachable (off: `--no-upnp`). */
  upnp: boolean
  /** The menus ring the terminal bell for a message not on screen (off: `--no-bell`). */
  bell: boolean
  logLevel: LogLevel
  /** Where to keep the one-line status (starting, joined...) for a health check. */
  statusFile?: string
  /** Most bytes held for others; undefined = the library's default. */
  storageBudgetBytes?: number
  /** Settings tests shorten (presence expiry, password hashing); undefined = the library's default. */
  tuning: {
    presenceTtlMs?: number
    bcryptCost?: number
    /** Argon2id memory (bytes) and passes for passwords set on this peer. */
    pwhash?: PwhashParams
  }
}

export function parseSeconds (value: string): number {
  const n = Number(value)
  if (!/^\d+(\.\d+)?$/.test(value.trim()) || n < 1 || n > 86_400) throw new InvalidArgumentError('a number of seconds from 1 to 86400.')
  return n
}

export function parseBcryptCost (value: string): number {
  const n = Number(value)
  if (!/^\d+$/.test(value.trim()) || n < 4 || n > 31) throw new InvalidArgumentError('a whole number from 4 to 31.')
  return n
}

export function parseKdfMemory (value: string): number {
  const n = Number(value)
  const min = PWHASH_BOUNDS.memMin / MiB
  const max = PWHASH_BOUNDS.memMax / MiB
  if (!/^\d+$/.test(value.trim()) || n < min || n > max) throw new InvalidArgumentError(`a whole number of MiB from ${min} to ${max}.`)
  return n
}

export function nodeProgram (): Command {
  return new Command('conf-chat')
    .description('A conf-chat peer: joins the network and reads commands (type `help`).')
    .addOption(new Option('--host <address>', 'address to listen on (IPv4 or IPv6)').env('CONF_CHAT_HOST').default(DEFAULT_HOST))
    .addOption(new Option('--port <port>', 'TCP port to listen on; 0 picks a free one').env('CONF_CHAT_PORT').default(0).argParser(parsePort))
    .addOption(new Option('--data <dir>', 'data directory (identity key, datastore) [default: <home>/peers/peer-N, the first not in use]').env('CONF_CHAT_DATA'))
    .addOption(new Option('--bootstrap <multiaddr>', 'peer to join through; repeatable, or comma/space separated [default: the addresses in <home>/supernode.json]')
      .env('CONF_CHAT_BOOTSTRAP').argParser(splitAddrList))
    .addOption(new Option('--client', 'take part in the DHT as a client only (store nothing for others)').env('CONF_CHAT_CLIENT'))
    .addOption(new Option('--reachability <how>', 'auto: at each join, the DHT servers it joined through dial it back to find out; public: other peers can dial this one (it serves the DHT); private: behind a NAT, dialled through the supernode\'s relay (a DHT client)')
      .env('CONF_CHAT_REACHABILITY').choices(['auto', 'public', 'private']).default('auto'))
    .addOption(new Option('--no-upnp', 'with --reachability auto, do not ask the home router (UPnP) to forward a port when the peer cannot be dialled; also CONF_CHAT_NO_UPNP=1'))
    .addOption(new Option('--commands', 'command mode (one command a line, plain output) even on a terminal').env('CONF_CHAT_COMMANDS'))
    .addOption(new Option('--no-read-receipts', 'do not tell friends when you have read their messages (they still see them delivered); also CONF_CHAT_NO_READ_RECEIPTS=1'))
    .addOption(new Option('--no-bell', 'the menus do not ring the terminal bell for a message that is not on screen; also CONF_CHAT_NO_BELL=1'))
    .addOption(new Option('--log-level <level>', 'logs on stderr').env('CONF_CHAT_LOG').choices(LOG_LEVELS).default('info'))
    .addOption(new Option('--status-file <file>', 'keep this file saying where the peer stands (starting, joined, joining, stopping), for a health check').env('CONF_CHAT_STATUS_FILE'))
    .addOption(storageOption(DEFAULT_STORAGE_BUDGET_BYTES))
    .addOption(new Option('--presence-ttl <seconds>', `how long this peer's "online" lasts without a refresh (after a crash, users who are not friends see the user offline this much later; friends when the connection closes) [default: ${DEFAULT_PRESENCE_TTL_MS / 1000}]`)
      .env('CONF_CHAT_PRESENCE_TTL').argParser(parseSeconds))
    .addOption(new Option('--bcrypt-cost <n>', 'bcrypt cost factor for passwords set on this peer (4-31) [default: 10]')
      .env('CONF_CHAT_BCRYPT_COST').argParser(parseBcryptCost))
    .addOption(new Option('--kdf-memory <MiB>', `Argon2id memory for passwords set on this peer, in MiB; under the default, also 1 pass instead of ${DEFAULT_PWHASH.opsLimit} (tests) [default: ${DEFAULT_PWHASH.memLimit / MiB}]`)
      .env('CONF_CHAT_KDF_MEMORY').argParser(parseKdfMemory))
    .addHelpText('after', '\n<home> is $CONF_CHAT_HOME, or ~/.conf-chat if it is not set.')
}

/** Whether an environment variable sets a flag: set, and not `0`, `false`, `no`, `off` or empty. */
function envFlag (envVar: string): boolean {
  const value = process.env[envVar]
  return value != null && !['', '0', 'false', 'no', 'off'].includes(value.trim().toLowerCase())
}

/** Commander sets a flag from its variable whatever the value; `0`, `false` or empty mean off. */
export function flagValue (program: Command, name: string, envVar: string): boolean {
  if (program.getOptionValueSource(name) === 'env') return envFlag(envVar)
  return program.opts()[name] === true
}

export function parseNodeOptions (argv: string[]): NodeOptions {
  const program = nodeProgram().parse(argv)
  const opts = program.opts()
  return {
    host: opts.host,
    port: opts.port,
    data: opts.data === '' ? undefined : opts.data,
    bootstrap: opts.bootstrap ?? [],
    bootstrapSource: program.getOptionValueSource('bootstrap') ?? 'default',
    client: flagValue(program, 'client', 'CONF_CHAT_CLIENT'),
    reachability: opts.reachability,
    commands: flagValue(program, 'commands', 'CONF_CHAT_COMMANDS'),
    readReceipts: opts.readReceipts !== false && !envFlag('CONF_CHAT_NO_READ_RECEIPTS'),
    upnp: opts.upnp !== false && !envFlag('CONF_CHAT_NO_UPNP'),
    bell: opts.bell !== false && !envFlag('CONF_CHAT_NO_BELL'),
    logLevel: opts.logLevel,
    statusFile: opts.statusFile === '' ? undefined : opts.statusFile,
    storageBudgetBytes: storageBytes(opts.storage),
    tuning: {
      presenceTtlMs: opts.presenceTtl != null ? Math.round(opts.presenceTtl * 1000) : undefined,
      bcryptCost: opts.bcryptCost,
      pwhash: opts.kdfMemory == null
        ? undefined
        : { opsLimit: opts.kdfMemory * MiB < DEFAULT_PWHASH.memLimit ? 1 : DEFAULT_PWHASH.opsLimit, memLimit: opts.kdfMemory * MiB }
    }
  }
}
