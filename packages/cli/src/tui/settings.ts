/**
 * Settings for this run: the terminal bell for messages not on screen, and read receipts
 * (whether friends are told what you read). Each entry switches its setting; the flags
 * `--no-bell` and `--no-read-receipts` choose how a run starts.
 */
import { select } from './screen.js'
import { flushNotices, promptContext, type TuiContext } from './context.js'

type Choice = 'bell' | 'receipts' | 'back'

export async function settingsScreen (ctx: TuiContext): Promise<void> {
  const settings = ctx.settings ??= { bell: true }
  const c = ctx.colors
  const io = promptContext(ctx, AbortSignal.any([ctx.signal, ctx.inbox.sessionSignal]))
  const onOff = (on: boolean): string => on ? c.green('on') : c.dim('off')
  let last: Choice = 'bell'
  for (;;) {
    flushNotices(ctx)
    const choice: Choice = await select<Choice>({
      message: 'Settings (⏎ switches)',
      default: last,
      choices: [
        { value: 'bell', name: `Bell for a message not on screen: ${onOff(settings.bell)}` },
        { value: 'receipts', name: `Read receipts (friends see when you read their messages): ${onOff(ctx.node.readReceipts)}` },
        { value: 'back', name: 'Back' }
      ]
    }, io)
    if (choice === 'back') return
    last = choice
    if (choice === 'bell') settings.bell = !settings.bell
    else ctx.node.readReceipts = !ctx.node.readReceipts
  }
}
