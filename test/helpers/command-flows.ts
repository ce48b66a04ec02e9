/**
 * Command-mode flows of the node program (test/helpers/programs.ts), as a user types them:
 * each sends its lines and waits for the line that says it is done.
 */
import type { Program } from './programs.js'

/** Register `username` (full name: the username) with `password`; logged in once this resolves. */
export async function registerAs (p: Program, username: string, password: string): Promise<void> {
  p.send(`register ${username}`)
  p.send(password)
  p.send(username)
  await p.waitForLine(new RegExp(`^\\[register\\] Registered ${username} `))
}

/** Log in as `username`. */
export async function logInAs (p: Program, username: string, password: string): Promise<void> {
  p.send(`login ${username}`)
  p.send(password)
  await p.waitForLine(new RegExp(`^\\[login\\] Logged in as ${username} `))
}

/** `a`, logged in as `aName`, asks `bName` (logged in on `b`), who accepts; resolves once `a` is told. */
export async function befriend (a: Program, aName: string, b: Program, bName: string): Promise<void> {
  a.send(`friend-add ${bName}`)
  await b.waitForLine(new RegExp(`^\\[friends\\] ${aName} wants to be your friend`))
  b.send(`friend-accept ${aName}`)
  await a.waitForLine(new RegExp(`^\\[friends\\] ${bName} accepted: you are now friends$`))
}
