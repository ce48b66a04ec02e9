/** Parsers of the flags both programs take (commander's `argParser`). */
import { InvalidArgumentError, Option } from 'commander'

export function parsePort (value: string): number {
  const port = Number(value)
  if (!/^\d+$/.test(value.trim()) || port > 65535) throw new InvalidArgumentError('a port is a number from 0 to 65535.')
  return port
}

/** Most MiB a peer may be told to hold for others (1 TiB). */
export const MAX_STORAGE_MIB = 1024 * 1024

/** `--storage <MiB>`: the storage budget, a whole number of MiB from 16 to 1 TiB. */
export function parseStorageMiB (value: string): number {
  const n = Number(value)
  if (!/^\d+$/.test(value.trim()) || n < 16 || n > MAX_STORAGE_MIB) throw new InvalidArgumentError(`a whole number of MiB from 16 to ${MAX_STORAGE_MIB}.`)
  return n
}

const MiB = 1024 * 1024

/** `--storage <MiB>` (or CONF_CHAT_STORAGE), as both programs take it; `defaultBytes` for the help. */
export function storageOption (defaultBytes: number): Option {
  return new Option('--storage <MiB>', `most DHT records and set items to hold for others, in MiB; past it the oldest are deleted [default: ${defaultBytes / MiB}]`)
    .env('CONF_CHAT_STORAGE').argParser(parseStorageMiB)
}

/** The storage budget in bytes of a `--storage` value (undefined: the library's default). */
export function storageBytes (mib: number | undefined): number | undefined {
  return mib == null ? undefined : mib * MiB
}

/** Multiaddrs given one a flag, or several in one flag or variable separated by commas or whitespace. */
export function splitAddrList (value: string, previous: string[] = []): string[] {
  return [...previous, ...value.split(/[\s,]+/).filter(a => a !== '')]
}
