/** A TuiContext for screen tests: a FakeNode, injected streams, no colours, and an inbox listening to the fake. */
import pc from 'picocolors'
import { Inbox } from '../../src/tui/inbox.js'
import type { TuiContext } from '../../src/tui/context.js'
import { FakeNode } from './fake-node.js'
import { FakeTerminal } from './fake-terminal.js'

export interface ScreenFixture {
  node: FakeNode
  term: FakeTerminal
  ctx: TuiContext
  /** Stops the program (as SIGTERM does). */
  stop: AbortController
  cleanup: () => void
}

export function screenFixture (answers: ConstructorParameters<typeof FakeNode>[0] = {}, term = new FakeTerminal()): ScreenFixture {
  const node = new FakeNode(answers)
  const colors = pc.createColors(false)
  const inbox = new Inbox(node.asNode(), colors)
  inbox.start()
  const stop = new AbortController()
  const ctx: TuiContext = { node: node.asNode(), inbox, input: term.input, output: term.output, signal: stop.signal, colors }
  return {
    node,
    term,
    ctx,
    stop,
    cleanup: () => {
      stop.abort()
      inbox.stop()
      term.input.end()
    }
  }
}
