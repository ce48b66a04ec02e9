/** Parsers of the flags both programs take (commander's `argParser`). */
import { InvalidArgumentError } from 'commander'

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

/** Multiaddrs given one a flag, or several in one flag or variable separated by commas or whitespace. */
export function splitAddrList (value: string, previous: string[] = []): string[] {
  return [...previous, ...value.split(/[\s,]+/).filter(a => a !== '')]
}
