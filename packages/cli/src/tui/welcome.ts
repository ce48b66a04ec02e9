/**
 * The first screen: Log in, Register or Quit. Passwords are masked; a spinner runs while
 * the password is checked (bcrypt is slow on purpose) or the account is created. A
 * mistake (wrong password, name taken, network not reachable) is one line, then the
 * menu again.
 */
import { select, input, password } from './screen.js'
import { checkUsername, checkNewPassword, checkFullName } from '@conf-chat/protocol'
import { flushNotices, isQuit, promptContext, validator, withSpinner, type TuiContext } from './context.js'

export type WelcomeResult = 'logged-in' | 'quit'

type WelcomeChoice = 'login' | 'register' | 'quit'

export async function welcomeScreen (ctx: TuiContext): Promise<WelcomeResult> {
  let last: WelcomeChoice = 'login'
  for (;;) {
    flushNotices(ctx)
    const choice: WelcomeChoice = await select<WelcomeChoice>({
      message: 'Welcome to conf-chat',
      choices: [
        { value: 'login', name: 'Log in', description: 'to an account made on any peer' },
        { value: 'register', name: 'Register', description: 'create a new account' },
        { value: 'quit', name: 'Quit' }
      ],
      default: last
    }, promptContext(ctx))
    last = choice
    if (choice === 'quit') return 'quit'
    try {
      if (choice === 'login') await logIn(ctx)
      else await register(ctx)
      return 'logged-in'
    } catch (err) {
      if (isQuit(err)) throw err
      // withSpinner has shown the reason on the spinner's line; back to the menu
    }
  }
}

async function logIn (ctx: TuiContext): Promise<void> {
  const io = promptContext(ctx)
  const username = (await input({ message: 'Username', validate: validator(checkUsername) }, io)).trim()
  const secret = await password({ message: 'Password', mask: '*', validate: v => v !== '' || 'type your password' }, io)
  await withSpinner(ctx, `Logging in as ${username} (checking the password takes a moment)…`,
    ctx.node.login(username, secret),
    ({ profile }) => `Logged in as ${profile.username} (${profile.fullName})`)
}

async function register (ctx: TuiContext): Promise<void> {
  const io = promptContext(ctx)
  const username = (await input({ message: 'Choose a username', validate: validator(checkUsername) }, io)).trim()
  const secret = await password({ message: 'Choose a password', mask: '*', validate: validator(async v => { await checkNewPassword(v, [username]) }) }, io)
  await password({ message: 'Type it again', mask: '*', validate: v => v === secret || 'the two passwords differ' }, io)
  const fullName = (await input({ message: 'Your full name', validate: validator(checkFullName) }, io)).trim()
  await withSpinner(ctx, `Registering ${username}…`,
    ctx.node.register({ username, password: secret, fullName }),
    profile => `Registered ${profile.username} (${profile.fullName}); logged in`)
}
