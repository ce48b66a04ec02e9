/**
 * What a person at a terminal gets: inquirer menus (issue 6). A spinner while the peer
 * joins the network, then the welcome menu (log in, register, quit) and, once logged in,
 * the main menu with the user list. Events of the core library are queued in an Inbox
 * and shown by whichever screen is open. Ctrl+C (ExitPromptError) or a stop signal is a
 * normal way out: the user is logged out here, and node-program stops the peer.
 */
import { logger } from '@libp2p/logger'
import type { CommandModeInit } from './command-mode.js'
import { Inbox } from '../tui/inbox.js'
import { colorsFor, isQuit, print, ProgramStoppingError, withSpinner, type TuiContext } from '../tui/context.js'
import { welcomeScreen } from '../tui/welcome.js'
import { mainMenu } from '../tui/main-menu.js'
import { CLEAR_SCREEN, detachedTty, waitForRealSize } from '../tui/screen.js'

const log = logger('conf-chat:cli:tui')

/** The terminal bell (BEL): a terminal multiplexer shows it as the window's bell flag. */
const BELL = '\u0007'

export interface InteractiveModeInit extends Omit<CommandModeInit, 'prompt' | 'commands'> {
  /** Aborted when a stopping program's logout must end (LOGOUT_ON_STOP_MS after `signal`); a Quit from the menus logs out in full. */
  logoutSignal?: AbortSignal
  input?: NodeJS.ReadableStream
  output?: TuiContext['output']
}

export async function runInteractiveMode (init: InteractiveModeInit): Promise<void> {
  const { app, terminal, signal } = init
  // the menus read the keyboard themselves: the command loop's line reader must let go of it
  terminal.close()
  const output = init.output ?? process.stdout
  const colors = colorsFor(output)
  const settings = { bell: app.bell !== false }
  const inbox = new Inbox(app.node, colors, () => { if (settings.bell) output.write(BELL) })
  const ctx: TuiContext = { node: app.node, inbox, input: init.input ?? process.stdin, output, signal, colors, settings }
  let joining: ((line: string) => void) | undefined
  terminal.divertNotices(line => {
    if (joining != null) joining(line)
    else inbox.notice(line)
  })
  inbox.start()
  try {
    if (!app.peer.joined) {
      const joiningText = `Joining the network via ${app.bootstrap.addrs.join(' ')}…`
      // until it has joined, the program's notices (retrying...) show on the spinner's line
      await withSpinner(ctx, joiningText, app.peer.waitJoined({ signal }).catch(err => {
        throw signal.aborted ? new ProgramStoppingError() : err
      }), () => `Joined the network via ${app.joinedVia ?? app.bootstrap.addrs.join(' ')}`,
      setText => { joining = line => { setText(`${joiningText} (${line})`) } })
      joining = undefined
    }
    if (detachedTty(output)) {
      // a container's TTY that nobody is attached to (0×0): draw nothing until one is;
      // `docker attach` gives it the attaching terminal's size
      print(ctx, 'Waiting for a terminal: the menu is drawn when one attaches')
      await waitForRealSize(output, signal).catch(() => { throw new ProgramStoppingError() })
      output.write(CLEAR_SCREEN)
    }
    for (;;) {
      if (await welcomeScreen(ctx) === 'quit') break
      const result = await mainMenu(ctx)
      if (result === 'quit') break
    }
  } catch (err) {
    if (!isQuit(err)) throw err
    log('leaving: %s', (err as Error).name)
  } finally {
    joining = undefined
    if (app.node.session != null) {
      // log out here, where the user sees it; node-program then stops the peer
      const username = app.node.session.account.username
      const cut = init.logoutSignal
      const logout = app.node.logout({ signal: cut }).then(() => `Logged out ${username}`, err => {
        if (cut?.aborted !== true) throw err
        return `Logged out ${username} (stopping: history the network had not taken yet is kept on this peer for your next login here)`
      })
      await withSpinner({ ...ctx, signal: new AbortController().signal }, 'Logging out…', logout, line => line)
        .catch(() => {})
    }
    terminal.divertNotices(undefined)
    inbox.stop()
    print(ctx, 'Bye.')
  }
}
