/** Ways through the terminal UI's menus that several end-to-end tests take, on a TmuxScreen. */
import type { TmuxScreen } from './tmux.js'

export const PASSWORD = 'a violet kettle by the harbour'

/** From the welcome menu: register `username` and wait for the user list. */
export async function register (tui: TmuxScreen, username: string, fullName: string, timeoutMs?: number): Promise<void> {
  await tui.waitFor(/Welcome to conf-chat\n❯ Log in\n {2}Register\n {2}Quit/, timeoutMs)
  await tui.press('Down', 'Enter')
  await tui.waitFor(/Choose a username/)
  await tui.type(username)
  await tui.press('Enter')
  await tui.waitFor(/Choose a password/)
  await tui.type(PASSWORD)
  await tui.press('Enter')
  await tui.waitFor(/Type it again/)
  await tui.type(PASSWORD)
  await tui.press('Enter')
  await tui.waitFor(/Your full name/)
  await tui.type(fullName)
  await tui.press('Enter')
  await tui.waitFor(new RegExp(`✔ Registered ${username} \\(${fullName}\\); logged in`), timeoutMs)
  await tui.waitFor(/pick a user to chat with\n/)
}

/** From the welcome menu: log in as `username` (registered with PASSWORD) and wait for the user list. */
export async function logIn (tui: TmuxScreen, username: string, timeoutMs?: number): Promise<void> {
  await tui.waitFor(/Welcome to conf-chat\n❯ Log in\n {2}Register\n {2}Quit/, timeoutMs)
  await tui.press('Enter')
  await tui.waitFor(/Username/)
  await tui.type(username)
  await tui.press('Enter')
  await tui.waitFor(/Password/)
  await tui.type(PASSWORD)
  await tui.press('Enter')
  await tui.waitFor(new RegExp(`✔ Logged in as ${username} `), timeoutMs)
  await tui.waitFor(/pick a user to chat with\n/)
}

/**
 * From the user list, where `username` (not a friend yet, online, the first user listed)
 * is: refresh, pick them, send a friend request without a note.
 */
export async function askFirstUser (tui: TmuxScreen, username: string, fullName: string): Promise<void> {
  // r refreshes the list; keys typed while its spinner runs are dropped: wait for the new list
  await tui.press('r')
  await tui.waitFor(new RegExp(`pick a user to chat with Refresh\\n[\\s\\S]*pick a user to chat with\\n Users\\n❯ ● ${username} +${fullName} +online`))
  await tui.press('Enter')
  await tui.waitFor(new RegExp(`${username} is not your friend yet[\\s\\S]*❯ Send ${username} a friend request`))
  await tui.press('Enter')
  await tui.waitFor(/A note with the request/)
  await tui.press('Enter')
  await tui.waitFor(new RegExp(`✔ Friend request sent to ${username}`))
}
