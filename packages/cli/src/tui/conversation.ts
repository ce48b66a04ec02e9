/**
 * The screen of one conversation (a friend, or a conference): the recent history, then a
 * line to type on. Its messages (and every notice) appear above that line as they arrive,
 * without touching what is being typed (LineTerminal's notice technique). `/q` goes back;
 * Ctrl+C quits the program. What is sent, and what becomes of it, comes from `spec`.
 */
import { moveCursor, clearScreenDown, cursorTo, clearLine } from 'node:readline'
import stringWidth from 'string-width'
import { stripVTControlCharacters } from 'node:util'
import type { ChatMessage, MessageStateInfo } from '@conf-chat/node'
import { LineTerminal } from '../terminal.js'
import { errorLine, print, withSpinner, type TuiContext } from './context.js'
import { copiesTail, messageLine, stateTail } from './format.js'
import type { ChatFocus, ShownMessage } from './inbox.js'
import { CLEAR_SCREEN, hasRealSize, onRealSize } from './screen.js'
import { BACK_COMMANDS, CHAT_COMMANDS, completer, helpLines, searchLines, type ChatCommand } from './chat-line.js'

export type ChatResult = 'back' | 'quit'

/** Messages of the history shown when the chat opens. */
export const RECENT_MESSAGES = 20


/** DECSC / DECRC: save and restore the cursor (where readline left it). */
const SAVE_CURSOR = '\u001b7'
const RESTORE_CURSOR = '\u001b8'
const CLEAR_TO_END_OF_LINE = '\u001b[K'

/** Lines of the screen kept to draw it again (a new terminal size, an attach). */
const TRANSCRIPT_LINES = 200

export interface ConversationOpening {
  history: ChatMessage[]
  /** The title line's status (e.g. online), and lines to say below the history. */
  status: string
  notes: string[]
}

export interface ConversationSpec {
  /** Which messages and unread counts are this screen's. */
  focus: Pick<ChatFocus, 'username' | 'conference' | 'onPresence'>
  title: string
  /** Shown while the history loads. */
  opening: string
  load: () => Promise<ConversationOpening>
  /**
   * Send one message; resolves with its id, its state (or, in a conference, each member's
   * copy's, by username), and a line to show under it if there is anything to say.
   */
  send: (text: string) => Promise<{ id: string, state?: MessageStateInfo, copies?: Map<string, MessageStateInfo>, note?: string }>
  /** The user saw the conversation: called when it opens and as messages show on it. */
  seen?: () => void
  /** The user's messages show their state (direct messages: `message:state` events). */
  states?: boolean
  /** Usernames Tab completes (the friend, a conference's members). */
  names?: () => string[]
  /** Chat-line commands of this screen besides CHAT_COMMANDS: each resolves with lines to show. */
  commands?: Record<string, ChatCommand & { run: (args: string[]) => Promise<string[]> }>
  /** Unread messages when it opens (marked "new" in the history). */
  unread: number
}

export interface ConversationHandle {
  /** Show a line above the input (or before it opens). */
  notice: (line: string) => void
}

export async function conversationScreen (ctx: TuiContext, spec: ConversationSpec, onOpen?: (screen: ConversationHandle) => void): Promise<ChatResult> {
  const c = ctx.colors
  // messages and notices that come while the history loads wait here, then show in order
  let early: Array<{ message?: ShownMessage, notice?: string }> | undefined = []
  let terminal: LineTerminal | undefined
  let quitting = false
  const shown = new Set<string>()
  // what the screen shows, to draw it again (a new terminal size, an attach, a message's new state)
  const transcript: Line[] = []
  /** Lines of the user's own messages by id, and the newest state told of each id. */
  const mine = new Map<string, MessageLine>()
  const states = new Map<string, MessageStateInfo>()
  const keep = (line: Line): string => {
    transcript.push(line)
    if (transcript.length > TRANSCRIPT_LINES) transcript.shift()
    return render(c, line, hasRealSize(ctx.output))
  }
  const record = (text: string): string => keep({ text })
  /** The whole conversation as lines, oldest first (what PgUp scrolls through). */
  const all: MessageLine[] = []
  /** A message's line, in `all`; the user's own (with an id) changes with its state. */
  const lineFor = (m: MessageLine['message'], id?: string): MessageLine => {
    const own = m.state != null ? { state: m.state, ...(m.where != null ? { where: m.where } : {}) } : undefined
    const line: MessageLine = { message: m, state: (id != null ? states.get(id) : undefined) ?? own }
    if (id != null && m.direction === 'out') mine.set(id, line)
    all.push(line)
    return line
  }
  const recordMessage = (m: MessageLine['message'], id?: string): string => keep(lineFor(m, id))
  const say = (line: string): void => { print(ctx, record(line)) }
  // scrolled back (PgUp): the index after the last message shown; undefined: the live view
  let scrolledTo: number | undefined
  const showMessage = (m: ShownMessage): void => {
    if (early != null) { early.push({ message: m }); return }
    if (shown.has(m.id)) return
    shown.add(m.id)
    const line = recordMessage(m)
    if (scrolledTo != null) { drawScrolled(); return } // counted below the page (and read) once the user comes back
    terminal?.notice(line)
    spec.seen?.()
  }
  const showNotice = (line: string): void => {
    if (early != null) early.push({ notice: line })
    else if (scrolledTo != null) record(line) // shown when the user comes back
    else terminal?.notice(record(line))
  }
  const redrawScreen = (): void => {
    if (terminal == null || !open) return
    if (scrolledTo != null) { drawScrolled(); return }
    ctx.output.write(CLEAR_SCREEN)
    for (const line of transcript.slice(-Math.max(1, (ctx.output.rows ?? 24) - 1))) ctx.output.write(render(c, line, true) + '\n')
    terminal.redraw()
  }
  // a page is the screen's rows less the page line, the prompt and a spare one, filled with
  // whole messages (a long one takes several rows)
  const pageRows = (): number => Math.max(3, (ctx.output.rows ?? 24) - 3)
  const rowsOf = (text: string): number => Math.max(1, Math.ceil(stringWidth(text) / Math.max(1, ctx.output.columns ?? 80)))
  /** The first message of the page that ends before `end`. */
  const pageStart = (end: number): number => {
    let start = end
    for (let rows = 0; start > 0;) {
      rows += rowsOf(render(c, all[start - 1]!, true))
      if (rows > pageRows() && start < end) break
      start--
    }
    return start
  }
  /** The end of the page that begins at `start`. */
  const pageEnd = (start: number): number => {
    let end = start
    for (let rows = 0; end < all.length;) {
      rows += rowsOf(render(c, all[end]!, true))
      if (rows > pageRows() && end > start) break
      end++
    }
    return end
  }
  const drawScrolled = (): void => {
    if (terminal == null || scrolledTo == null || !open) return
    const end = scrolledTo
    const start = pageStart(end)
    ctx.output.write(CLEAR_SCREEN)
    for (const line of all.slice(start, end)) ctx.output.write(render(c, line, true) + '\n')
    const below = all.length - end
    ctx.output.write(c.dim(`── messages ${start + 1}-${end} of ${all.length}${below > 0 ? ` · ${below} below` : ''} · PgUp/PgDn scroll ──`) + '\n')
    terminal.redraw()
  }
  /** PgUp (-1), PgDn (+1), or the first page; past the end is the live view again. */
  const scroll = (direction: -1 | 1 | 'top'): void => {
    if (terminal == null || !hasRealSize(ctx.output)) return
    const current = scrolledTo ?? all.length
    const end = direction === 'top' ? pageEnd(0) : direction === -1 ? Math.max(pageStart(current), pageEnd(0)) : pageEnd(current)
    if (end >= all.length) {
      if (scrolledTo == null) return
      scrolledTo = undefined
      redrawScreen()
      spec.seen?.() // what came meanwhile is on the screen now
      return
    }
    scrolledTo = end
    drawScrolled()
  }
  const onKey = (_s: unknown, key?: { name?: string }): void => {
    if (key?.name === 'pageup') scroll(-1)
    else if (key?.name === 'pagedown') scroll(1)
  }
  /**
   * Write `line` again where it is on the screen: from the cursor, up past the prompt, the
   * lines printed after it and its own rows (the cursor saved and restored around it).
   * False when that cannot be done in place (its rows would change): draw the screen again.
   */
  const rewrite = (line: Line, before: string): boolean => {
    if (terminal == null) return true
    const now = render(c, line, true)
    if (rowsOf(now) !== rowsOf(before)) return false
    const at = transcript.lastIndexOf(line)
    if (at === -1) return true // long gone from the screen
    let up = terminal.cursorRow() + rowsOf(before)
    for (let i = at + 1; i < transcript.length && up < (ctx.output.rows ?? 24); i++) up += rowsOf(render(c, transcript[i]!, true))
    if (up >= (ctx.output.rows ?? 24)) return true // scrolled off the top: drawn as it is now when the screen is drawn again
    ctx.output.write(SAVE_CURSOR)
    moveCursor(ctx.output, 0, -up)
    cursorTo(ctx.output, 0)
    clearLine(ctx.output, 0)
    // the same rows: the text covers all but the end of the last, which is cleared
    ctx.output.write(now + CLEAR_TO_END_OF_LINE + RESTORE_CURSOR)
    return true
  }
  // a state changes its message's line where it is (the terminal's own scrollback keeps
  // one copy of each line); a terminal without a size shows it at its next drawing
  const showState = (id: string, info: MessageStateInfo): void => {
    states.set(id, info)
    const line = mine.get(id)
    if (line == null || sameState(line.state, info)) return
    const before = render(c, line, true)
    line.state = info
    refresh(line, before)
  }
  /** Show a line's new state where it is. */
  function refresh (line: MessageLine, before: string): void {
    // the screen closed (a send that ended after /q): its lines are gone
    if (!open || !hasRealSize(ctx.output) || terminal == null) return
    if (scrolledTo != null) drawScrolled()
    else if (!rewrite(line, before)) redrawScreen()
  }
  const stopRedrawing = onRealSize(ctx.output, redrawScreen)
  onOpen?.({ notice: showNotice })
  // a conference copy's state: the line of its message (mid) sums its copies' states
  const showCopyState = (mid: string, member: string, info: MessageStateInfo): void => {
    const line = mine.get(mid)
    if (line?.copies == null || !line.copies.has(member) || sameState(line.copies.get(member), info)) return
    const before = render(c, line, true)
    line.copies.set(member, info)
    refresh(line, before)
  }
  const unfocus = ctx.inbox.focus({
    ...spec.focus,
    onMessage: showMessage,
    onNotice: showNotice,
    onState: s => {
      const info: MessageStateInfo = { state: s.state, ...(s.where != null ? { where: s.where } : {}) }
      if (s.mid != null) showCopyState(s.mid, s.to, info)
      else showState(s.id, info)
    }
  })
  const session = ctx.inbox.sessionSignal
  const close = (): void => { terminal?.close() }
  ctx.signal.addEventListener('abort', close)
  session.addEventListener('abort', close)
  /** A chat-line command's lines to show (undefined: no such command); /history scrolls instead. */
  const runCommand = async (name: string, rest: string): Promise<string[] | undefined> => {
    if (name === '/help') return helpLines({ ...CHAT_COMMANDS, ...spec.commands }).map(l => c.dim(l))
    if (name === '/search') return searchLines(rest, all, l => l.message.text, l => render(c, l, true))
    if (name === '/history') {
      if (!hasRealSize(ctx.output)) return [c.dim('/history scrolls back on a terminal with a size')]
      scroll('top')
      return []
    }
    const own = spec.commands?.[name]
    if (own == null) return undefined
    try {
      return await own.run(rest === '' ? [] : rest.split(/\s+/))
    } catch (err) {
      return [errorLine(ctx, err)]
    }
  }
  // a send still on its way when the screen closes reports to the inbox instead
  let sending: Promise<void> = Promise.resolve()
  let open = false

  try {
    const opening = await withSpinner(ctx, spec.opening, spec.load())
    say(c.bold(`── ${spec.title} · ${opening.status} ──`))
    const lines = opening.history.map(m => lineFor(m, m.id))
    printHistory(ctx, opening.history, spec.unread, shown, say, i => { print(ctx, keep(lines[i]!)) })
    for (const line of opening.notes) say(line)
    spec.seen?.()
    say(c.dim('Type a message and press Enter · /q goes back to the list · /help · Ctrl+C quits'))

    if (ctx.signal.aborted) return 'quit'
    if (session.aborted) return 'back'
    const commands: Record<string, ChatCommand> = { ...CHAT_COMMANDS, ...spec.commands }
    terminal = new LineTerminal({
      input: ctx.input,
      output: ctx.output,
      interactive: true,
      onInterrupt: () => { quitting = true; close() },
      completer: completer(() => Object.keys(commands), () => spec.names?.() ?? []),
      history: ctx.typed ??= []
    })
    ctx.input.on('keypress', onKey)
    open = true
    const waiting = early
    early = undefined
    for (const e of waiting) {
      if (e.message != null) showMessage(e.message)
      else if (e.notice != null) terminal.notice(record(e.notice))
    }

    const prompt = `${c.cyan('you')} › `
    for (;;) {
      const line = await terminal.next(prompt)
      if (line == null) return quitting || ctx.signal.aborted ? 'quit' : 'back' // Ctrl+D: back
      const text = line.trim()
      if (ctx.output.isTTY === true) eraseTypedLine(ctx, prompt, line)
      if (text === '') continue
      if (text.startsWith('/') && !text.startsWith('//')) {
        const name = text.split(/\s/, 1)[0]!.toLowerCase()
        if (BACK_COMMANDS.has(name)) return 'back'
        if (scrolledTo != null && name !== '/history') { scrolledTo = undefined; redrawScreen() } // what it shows goes under the live view
        const shown = await runCommand(name, text.slice(name.length).trim())
        if (shown == null) terminal.print(record(c.dim(`${name}: no such command here (/help lists them; start a message with // to send a leading /)`)))
        else for (const l of shown) terminal.print(record(l))
        continue
      }
      if (scrolledTo != null) { scrolledTo = undefined; redrawScreen() } // what is sent shows in the live view
      const body = text.startsWith('//') ? text.slice(1) : text
      const typed = lineFor({ from: 'you', text: body, sentAt: Date.now(), direction: 'out' })
      if (spec.states === true) typed.state = { state: 'sending' }
      terminal.print(keep(typed))
      const screen = terminal
      sending = sending.then(async () => {
        const report = (note: string): void => {
          if (open) screen.notice(record(note))
          else ctx.inbox.notice(note)
        }
        try {
          const result = await spec.send(body)
          shown.add(result.id)
          // its state from here on (and what was told while it was being sent)
          mine.set(result.id, typed)
          if (result.copies != null) {
            const before = render(c, typed, true)
            typed.copies = result.copies
            refresh(typed, before)
          }
          const told = states.get(result.id) ?? result.state
          if (told != null) showState(result.id, told)
          if (result.note != null) report(`  ↳ ${result.note}`)
        } catch (err) {
          report(`  ↳ ${errorLine(ctx, err)}`)
        }
      })
    }
  } finally {
    open = false
    ctx.input.off('keypress', onKey)
    stopRedrawing()
    ctx.signal.removeEventListener('abort', close)
    session.removeEventListener('abort', close)
    terminal?.close()
    unfocus()
  }
}

function printHistory (ctx: TuiContext, history: ChatMessage[], unread: number, shown: Set<string>, say: (line: string) => void, sayMessage: (index: number) => void): void {
  const c = ctx.colors
  const recent = history.slice(-RECENT_MESSAGES)
  const skipped = history.length - recent.length
  if (skipped > 0) say(c.dim(`… ${skipped} earlier messages (PgUp or /history scrolls back)`))
  if (recent.length === 0) say(c.dim('(no messages yet)'))
  // the unread ones are the last incoming messages
  let newFrom = recent.length
  for (let i = recent.length - 1, n = unread; i >= 0 && n > 0; i--) {
    if (recent[i]!.direction === 'in') { newFrom = i; n-- }
  }
  recent.forEach((m, i) => {
    if (i === newFrom) say(c.yellow(`── ${unread} new ──`))
    shown.add(m.id)
    sayMessage(skipped + i)
  })
}

/** A line of the screen: text, or a message (the user's own with its state). */
type Line = { text: string } | MessageLine
interface MessageLine {
  message: Pick<ChatMessage, 'from' | 'text' | 'sentAt' | 'direction'> & { state?: MessageStateInfo['state'], where?: MessageStateInfo['where'] }
  state?: MessageStateInfo
  /** A conference message sent here: each member's copy's state, by username. */
  copies?: Map<string, MessageStateInfo>
}

/** `states`: with the states of the user's messages (a terminal that can draw them again as they change). */
function render (c: TuiContext['colors'], line: Line, states: boolean): string {
  if ('text' in line) return line.text
  if (!states || line.message.direction !== 'out') return messageLine(c, line.message)
  return messageLine(c, line.message) + (line.copies != null ? copiesTail(c, line.copies) : stateTail(c, line.state))
}

function sameState (a: MessageStateInfo | undefined, b: MessageStateInfo): boolean {
  return a?.state === b.state && a.where === b.where
}

/** Replace the echoed `you › text` line(s) with the message line printed after it. */
function eraseTypedLine (ctx: TuiContext, prompt: string, line: string): void {
  const columns = ctx.output.columns ?? 80
  const width = stringWidth(stripVTControlCharacters(prompt) + line)
  const rows = Math.max(1, Math.ceil(width / columns))
  moveCursor(ctx.output, 0, -rows)
  clearScreenDown(ctx.output)
}
