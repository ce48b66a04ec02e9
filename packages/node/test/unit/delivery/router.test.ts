/**
 * EnvelopeRouter: inbound envelopes go to the handler of their kind; a kind nobody
 * handles is refused with a code the sender can act on (not final: a newer peer may know it).
 */
import { describe, it, expect } from 'vitest'
import { createEnvelope, generateAccountKeys, keyIdOf, type Envelope } from '@conf-chat/protocol'
import { EnvelopeRouter, DuplicateKindHandlerError } from '../../../src/delivery/index.js'
import { refusalOf } from '../../../src/errors.js'

const alice = { username: 'alice', keys: generateAccountKeys() }
const bobKeys = generateAccountKeys()
const bob = { username: 'bob', keyId: keyIdOf(bobKeys.signPublic), boxPublic: bobKeys.boxPublic }
const envelopeOf = (kind: string): Envelope => createEnvelope(kind, { n: 1 }, alice, bob)

describe('EnvelopeRouter', { timeout: 5_000 }, () => {
  it('hands each envelope to the handler of its kind, with the context and options', async () => {
    const router = new EnvelopeRouter<{ who: string }>()
    const seen: string[] = []
    router.handle('dm', async (env, ctx) => { seen.push(`dm:${env.id}:${ctx.who}`) })
    router.handle('friend-request', async (env, ctx) => { seen.push(`fr:${env.id}:${ctx.who}`) })
    const dm = envelopeOf('dm')
    const fr = envelopeOf('friend-request')
    await router.route(fr, { who: 'x' })
    await router.route(dm, { who: 'y' })
    expect(seen).toEqual([`fr:${fr.id}:x`, `dm:${dm.id}:y`])
    expect(router.handles('dm')).toBe(true)
    expect(router.handles('conf-msg')).toBe(false)
    expect(router.kinds().sort()).toEqual(['dm', 'friend-request'])
  })

  it('refuses an unknown kind with UnknownKindError, code unknown-kind, not final', async () => {
    const router = new EnvelopeRouter<undefined>()
    router.handle('dm', async () => {})
    const err = await router.route(envelopeOf('shiny-new-kind'), undefined).then(() => undefined, (e: unknown) => e)
    expect(err).toMatchObject({ name: 'UnknownKindError', code: 'unknown-kind' })
    expect(refusalOf(err)).toEqual({ code: 'unknown-kind', final: false, reason: 'unknown envelope kind shiny-new-kind' })
  })

  it("passes a handler's refusal through unchanged", async () => {
    const router = new EnvelopeRouter<undefined>()
    const refusal = Object.assign(new Error('not a friend: carol'), { code: 'not-a-friend' })
    router.handle('dm', async () => { throw refusal })
    await expect(router.route(envelopeOf('dm'), undefined)).rejects.toBe(refusal)
  })

  it('refuses a second handler for a kind unless forced, and forgets an unhandled kind', async () => {
    const router = new EnvelopeRouter<undefined>()
    const calls: string[] = []
    router.handle('dm', async () => { calls.push('first') })
    expect(() => { router.handle('dm', async () => { calls.push('second') }) }).toThrow(DuplicateKindHandlerError)
    await router.route(envelopeOf('dm'), undefined)
    router.handle('dm', async () => { calls.push('forced') }, { force: true })
    await router.route(envelopeOf('dm'), undefined)
    expect(calls).toEqual(['first', 'forced'])
    router.unhandle('dm')
    await expect(router.route(envelopeOf('dm'), undefined)).rejects.toMatchObject({ code: 'unknown-kind' })
  })
})
