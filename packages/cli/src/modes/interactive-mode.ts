/**
 * What a person at a terminal gets. For now the command loop with a prompt; the
 * inquirer menus (issue 6) will replace this function, keeping its signature.
 */
import { runCommandMode, type CommandModeInit } from './command-mode.js'

export async function runInteractiveMode (init: Omit<CommandModeInit, 'prompt'>): Promise<void> {
  init.terminal.print('type `help` for the commands, `quit` (or Ctrl+D) to leave')
  await runCommandMode({ ...init, prompt: '> ' })
}
