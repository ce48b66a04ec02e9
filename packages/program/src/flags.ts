/** Parsers of the flags both programs take (commander's `argParser`). */
import { InvalidArgumentError } from 'commander'

export function parsePort (value: string): number {
  const port = Number(value)
  if (!/^\d+$/.test(value.trim()) || port > 65535) throw new InvalidArgumentError('a port is a number from 0 to 65535.')
  return port
}

/** Multiaddrs given one a flag, or several in one flag or variable separated by commas or whitespace. */
export function splitAddrList (value: string, previous: string[] = []): string[] {
  return [...previous, ...value.split(/[\s,]+/).filter(a => a !== '')]
}
