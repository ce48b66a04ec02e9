/**
 * The chat line's commands (`/help` lists them), and Tab completion: a `/command` at the
 * start of the line, else the word under the cursor against the conversation's usernames.
 */

export interface ChatCommand {
  /** With its arguments, as `/help` shows it: `/search <text>`. */
  usage: string
  summary: string
}

/** What every conversation screen offers; a screen may add its own (a conference's `/members`). */
export const CHAT_COMMANDS: Record<string, ChatCommand> = {
  '/q': { usage: '/q', summary: 'back to the list (also /quit, /back, Ctrl+D)' },
  '/help': { usage: '/help', summary: 'this list' },
  '/history': { usage: '/history', summary: 'scroll back to the first message (PgUp/PgDn scroll, PgDn at the end comes back)' },
  '/search': { usage: '/search <text>', summary: 'the messages that contain <text>, with their times' }
}

/** Commands that leave the screen. */
export const BACK_COMMANDS = new Set(['/q', '/quit', '/back'])

export function helpLines (commands: Record<string, ChatCommand>): string[] {
  const width = Math.max(...Object.values(commands).map(c => c.usage.length))
  return [
    'Commands of the chat line (Tab completes them and usernames, ↑/↓ recall what you typed):',
    ...Object.values(commands).map(c => `  ${c.usage.padEnd(width)}  ${c.summary}`),
    '  Start a message with // to send a leading /.'
  ]
}

/** readline's completer: the candidates for the last word of `line`, and that word. */
export function completer (commands: () => string[], names: () => string[]): (line: string) => [string[], string] {
  return line => {
    if (/^\/\S*$/.test(line)) {
      const hits = [...commands(), ...BACK_COMMANDS].filter(c => c.startsWith(line))
      return [[...new Set(hits)].sort(), line]
    }
    const word = line.slice(line.lastIndexOf(' ') + 1)
    if (word === '') return [[], word]
    const bare = word.startsWith('@') ? word.slice(1) : word
    const hits = [...new Set(names())].filter(n => n.startsWith(bare.toLowerCase())).sort()
    return [hits.map(n => word.startsWith('@') ? `@${n}` : n), word]
  }
}

/** `/search <text>`: the lines to show, given the messages as lines and their texts. */
export function searchLines<T> (query: string, messages: T[], textOf: (m: T) => string, lineOf: (m: T) => string): string[] {
  const needle = query.trim().toLowerCase()
  if (needle === '') return ['/search needs some text: /search <text>']
  const found = messages.filter(m => textOf(m).toLowerCase().includes(needle))
  if (found.length === 0) return [`no message contains "${query.trim()}"`]
  return [`── ${found.length} message${found.length === 1 ? '' : 's'} with "${query.trim()}" ──`, ...found.map(lineOf)]
}
