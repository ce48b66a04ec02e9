/**
 * StateJournal on a temporary LevelDB: envelopes kept before their change of the private
 * state is applied survive a reopen (a killed process), come back oldest first with their
 * sender, and are forgotten only once the change is written.
 */
import { describe, it, expect, beforeEach, afterEach } from 'vitest'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { defaultLogger } from '@libp2p/logger'
import { FRIEND_REQUEST_KIND, FRIEND_ACCEPT_KIND } from '@conf-chat/protocol'
import { LocalStore } from '../../../src/storage/index.js'
import { StateJournal, type KeptEnvelope } from '../../../src/chat/state-journal.js'
import { envelope, user } from '../friends/fixtures.js'

const alice = user('alice')
const bob = user('bob')
const carol = user('carol')

let dir: string
let store: LocalStore

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'conf-chat-unit-journal-'))
  store = new LocalStore(dir, { logger: defaultLogger() })
  await store.open()
})

afterEach(async () => {
  await store.close()
  await rm(dir, { recursive: true, force: true })
})

const all = async (journal: StateJournal): Promise<KeptEnvelope[]> => { const out: KeptEnvelope[] = []; for await (const k of journal.kept()) out.push(k); return out }

/** Resolves once `journal` holds `n` entries (a settle forgets in the background). */
async function until (journal: StateJournal, n: number): Promise<KeptEnvelope[]> {
  for (;;) {
    const kept = await all(journal)
    if (kept.length === n) return kept
    await new Promise(resolve => setImmediate(resolve))
  }
}

describe('StateJournal', () => {
  it('keeps envelopes across a reopen, oldest first, with the sender as checked; each account its own', async () => {
    const journal = new StateJournal(store, alice.keyId, defaultLogger())
    const late = envelope(FRIEND_ACCEPT_KIND, {}, carol, alice, 2_000)
    const early = envelope(FRIEND_REQUEST_KIND, { note: 'hi' }, bob, alice, 1_000)
    await journal.keep(late, carol.profile)
    await journal.keep(early, bob.profile)
    await new StateJournal(store, bob.keyId, defaultLogger()).keep(envelope(FRIEND_REQUEST_KIND, {}, alice, bob, 1_500), alice.profile)
    await store.close()
    store = new LocalStore(dir, { logger: defaultLogger() })
    await store.open()

    const kept = await all(new StateJournal(store, alice.keyId, defaultLogger()))
    expect(kept.map(k => k.envelope.id)).toEqual([early.id, late.id])
    expect(kept[0]?.envelope).toEqual(early)
    expect(kept[0]?.sender).toEqual(bob.profile)
    expect(kept[1]?.sender.username).toBe('carol')
  })

  it('forgets an envelope once its change is written, keeps it when the write did not happen', async () => {
    const journal = new StateJournal(store, alice.keyId, defaultLogger())
    const a = envelope(FRIEND_REQUEST_KIND, {}, bob, alice, 1_000)
    const b = envelope(FRIEND_REQUEST_KIND, {}, carol, alice, 2_000)
    await journal.keep(a, bob.profile)
    await journal.keep(b, carol.profile)
    let write = (_ok: boolean): void => {}
    journal.settle(a.id, new Promise<boolean>(resolve => { write = resolve }))
    journal.settle(b.id, Promise.resolve(false))
    expect((await all(journal)).map(k => k.envelope.id)).toEqual([a.id, b.id])
    write(true)
    expect((await until(journal, 1)).map(k => k.envelope.id)).toEqual([b.id])
    await journal.forget(b.id)
    expect(await all(journal)).toEqual([])
  })

  it('drops an entry it cannot read', async () => {
    const journal = new StateJournal(store, alice.keyId, defaultLogger())
    const good = envelope(FRIEND_REQUEST_KIND, {}, bob, alice, 1_000)
    await journal.keep(good, bob.profile)
    await store.put(`/journal/${alice.keyId}/0000-broken`, { envelope: new Uint8Array([1, 2, 3]), sender: bob.profile })
    expect((await all(journal)).map(k => k.envelope.id)).toEqual([good.id])
    expect((await all(journal)).map(k => k.envelope.id)).toEqual([good.id])
    expect(await store.has(`/journal/${alice.keyId}/0000-broken`)).toBe(false)
  })
})
