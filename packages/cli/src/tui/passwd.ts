/** Change password: the old one, the new one twice. The account's keys stay the same. */
import { password } from './screen.js'
import { checkNewPassword } from '@conf-chat/protocol'
import { isQuit, promptContext, validator, withSpinner, type TuiContext } from './context.js'

export async function passwdScreen (ctx: TuiContext): Promise<void> {
  const io = promptContext(ctx, AbortSignal.any([ctx.signal, ctx.inbox.sessionSignal]))
  const old = await password({ message: 'Current password', mask: '*', validate: v => v !== '' || 'type your current password' }, io)
  const next = await password({ message: 'New password', mask: '*', validate: validator(async v => { await checkNewPassword(v) }) }, io)
  await password({ message: 'New password again', mask: '*', validate: v => v === next || 'the two passwords differ' }, io)
  try {
    await withSpinner(ctx, 'Changing the password…', ctx.node.changePassword(old, next), () => 'Password changed')
  } catch (err) {
    if (isQuit(err)) throw err // a wrong current password was shown on the spinner's line
  }
}
