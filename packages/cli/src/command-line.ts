import { UsageError } from './errors.js'

/** Split a command line into words at whitespace; a "double-quoted phrase" stays one word.
 * Single quotes are plain characters: chat text is full of apostrophes. */
export function splitCommandLine (line: string): string[] {
  const words: string[] = []
  for (const [, quoted, plain] of line.matchAll(/(?<=^|\s)"([^"]*)"(?=\s|$)|(\S+)/g)) {
    if (quoted != null) words.push(quoted)
    else if (plain!.startsWith('"')) throw new UsageError('unclosed quote')
    else words.push(plain!)
  }
  return words
}
