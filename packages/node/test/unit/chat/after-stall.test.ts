/**
 * What a logged-in peer does once this process went on after standing still: the session
 * is checked (a login elsewhere may have taken the account meanwhile) before the mailbox
 * is read, and a check that fails does not stop the read.
 */
import { describe, it, expect } from 'vitest'
import { defaultLogger } from '@libp2p/logger'
import { afterStall } from '../../../src/chat/stalls.js'

const log = defaultLogger().forComponent('test')

describe('afterStall', () => {
  it('checks the session before it reads the mailbox, and retries the outbox', async () => {
    const steps: string[] = []
    const check = Promise.withResolvers<void>()
    const done = afterStall({
      checkSession: async () => { steps.push('check'); await check.promise; steps.push('checked') },
      readMailbox: () => { steps.push('read') },
      retryOutbox: () => { steps.push('outbox') }
    }, log)
    // the read waits while the check is under way
    await new Promise(resolve => setImmediate(resolve))
    expect(steps).toEqual(['outbox', 'check'])
    check.resolve()
    await done
    expect(steps).toEqual(['outbox', 'check', 'checked', 'read'])
  })

  it('reads the mailbox also when the check fails', async () => {
    const steps: string[] = []
    await afterStall({
      checkSession: async () => { throw new Error('no holder answered') },
      readMailbox: () => { steps.push('read') },
      retryOutbox: () => { steps.push('outbox') }
    }, log)
    expect(steps).toEqual(['outbox', 'read'])
  })
})
