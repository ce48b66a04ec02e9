/**
 * The mailbox reader's order: a run of direct messages is handled a few at a time, any
 * other kind alone and only after everything before it (a friend's accept before their
 * messages); every handled item is removed, and the messages are shown together, oldest first.
 */
import { describe, it, expect } from 'vitest'
import { defaultLogger } from '@libp2p/logger'
import { DM_KIND, FRIEND_ACCEPT_KIND, newEnvelopeId, type Envelope } from '@conf-chat/protocol'
import { MailboxReader, UNKNOWN_KIND_MAX_AGE_MS, OLD_WRITER_LISTS_REMOVED } from '../../../src/chat/mailbox-reader.js'
import type { LoggedIn } from '../../../src/chat/logged-in.js'
import type { IncomingMessage } from '../../../src/chat/direct/index.js'
import type { UnshownMessage } from '../../../src/chat/history.js'

const envelope = (kind: string, i: number): Envelope => ({ id: `e-${String(i).padStart(3, '0')}`, kind, from: 'alice', sentAt: 1000 + i } as unknown as Envelope)

/** A reader over `envelopes` whose handlers log when each starts and ends (each waits a turn of the event loop). */
function setup (envelopes: Envelope[], extra: { handles?: (kind: string) => boolean, now?: () => number, unshown?: UnshownMessage[], holdersDown?: boolean, writerLists?: string[], keepFrom?: string } = {}): { reader: MailboxReader, active: LoggedIn, log: string[], removed: string[][], fetched: string[][], inFlight: { max: number }, emitted: IncomingMessage[][], unshown: UnshownMessage[], noted: string[] } {
  const log: string[] = []
  const removed: string[][] = []
  const fetched: string[][] = []
  const inFlight = { now: 0, max: 0 }
  const shown: IncomingMessage[] = []
  const session = { account: { keyId: 'k', keys: {} } }
  const batch = { beginBatch: () => {}, endBatch: () => shown.splice(0) }
  const emitted: IncomingMessage[][] = []
  const noted: string[] = []
  // what the history kept as not shown yet (an earlier read's, the process killed before it showed them)
  const unshown = [...extra.unshown ?? []]
  const history = {
    unshown: async () => [...unshown],
    shown: async (ids: string[]) => { unshown.splice(0, unshown.length, ...unshown.filter(u => !ids.includes(u.entry.id))) }
  }
  // the session's writer lists: the oldest it keeps, and the newest list each read found
  const writers = { keepFrom: () => extra.keepFrom, noteNewest: (id: string) => { noted.push(id) } }
  const active = { session, ended: false, ready: Promise.resolve(), draining: Promise.resolve(), leftInMailbox: new Set<string>(), dms: batch, conferences: { beginBatch: () => {}, endBatch: () => [] }, history, writers } as unknown as LoggedIn
  const reader = new MailboxReader({
    mailbox: {
      // as the set client does: the ids the reader skips are not fetched; what was removed is gone
      fetch: async (_keyId, options) => {
        if (extra.holdersDown === true) throw new Error('no holder answered')
        const gone = new Set(removed.flat())
        const got = [...envelopes].reverse().filter(e => !gone.has(e.id) && options?.skip?.(e.id) !== true)
        fetched.push(got.map(e => e.id))
        return { envelopes: got, invalid: [], writerLists: (extra.writerLists ?? []).filter(id => !gone.has(id)) }
      },
      remove: async (_keyId, ids) => { removed.push(ids) }
    },
    profile: async () => ({ username: 'alice' }) as any,
    accept: async (env) => {
      log.push(`start ${env.id}`)
      inFlight.max = Math.max(inFlight.max, ++inFlight.now)
      await new Promise(resolve => setImmediate(resolve))
      inFlight.now--
      log.push(`end ${env.id}`)
      if (env.kind === DM_KIND) shown.push({ id: env.id, sentAt: env.sentAt } as unknown as IncomingMessage)
    },
    handles: extra.handles ?? (() => true),
    ...(extra.now != null ? { now: extra.now } : {}),
    session: () => session as any,
    refused: () => {},
    emit: (type: string, detail: any) => { if (type === 'messages:offline') emitted.push(detail.messages) },
    logger: defaultLogger()
  })
  return { reader, active, log, removed, fetched, inFlight, emitted, unshown, noted }
}

describe('MailboxReader', () => {
  it('handles a friend accept alone before the messages after it, and the messages several at a time', async () => {
    const envs = [envelope(DM_KIND, 0), envelope(DM_KIND, 1), envelope(FRIEND_ACCEPT_KIND, 2), ...Array.from({ length: 40 }, (_, i) => envelope(DM_KIND, 3 + i)), envelope(FRIEND_ACCEPT_KIND, 43)]
    const { reader, active, log, removed, inFlight } = setup(envs)
    const shown = await reader.drain(active)

    const at = (what: string): number => log.indexOf(what)
    // the accept starts after both earlier messages ended, and ends before any later one starts
    expect(at('start e-002')).toBeGreaterThan(at('end e-000'))
    expect(at('start e-002')).toBeGreaterThan(at('end e-001'))
    for (let i = 3; i < 43; i++) expect(at(`start e-${String(i).padStart(3, '0')}`)).toBeGreaterThan(at('end e-002'))
    for (let i = 3; i < 43; i++) expect(at('start e-043')).toBeGreaterThan(at(`end e-${String(i).padStart(3, '0')}`))
    // the run of 40 messages overlapped
    expect(inFlight.max).toBeGreaterThan(1)
    // all handled are removed, and the messages shown oldest first
    expect(removed.flat().sort()).toEqual(envs.map(e => e.id).sort())
    expect(shown.map(m => m.id)).toEqual(envs.filter(e => e.kind === DM_KIND).map(e => e.id))
  })

  it('stops a run when the caller gives up: what was not handled stays in the mailbox', async () => {
    const envs = Array.from({ length: 100 }, (_, i) => envelope(DM_KIND, i))
    const { reader, active, log, removed } = setup(envs)
    const controller = new AbortController()
    const draining = reader.drain(active, { signal: controller.signal })
    await new Promise(resolve => setImmediate(resolve))
    controller.abort()
    await draining
    const handled = log.filter(l => l.startsWith('end ')).length
    expect(handled).toBeLessThan(100)
    expect(removed.flat().length).toBeLessThanOrEqual(handled)
  })

  it('removes what it handled also when the session ended during the read (a takeover): the new login must not get it again', async () => {
    const envs = Array.from({ length: 20 }, (_, i) => envelope(DM_KIND, i))
    const { reader, active, log, removed } = setup(envs)
    const draining = reader.drain(active)
    // the takeover ends the session while the run is under way
    await new Promise(resolve => setImmediate(resolve))
    ;(active as { ended: boolean }).ended = true
    await draining
    const handled = log.filter(l => l.startsWith('end ')).map(l => l.slice(4))
    expect(handled.length).toBeGreaterThan(0)
    expect(removed.flat().sort()).toEqual(handled.sort())
  })

  it('shows, with the new messages, those an earlier read kept but did not show (killed in between), then marks them shown', async () => {
    const envs = [envelope(DM_KIND, 5)]
    const earlier: UnshownMessage[] = [
      { entry: { id: 'e-009', from: 'bob', to: 'me', text: 'later', sentAt: 1009 } },
      { entry: { id: 'e-001', from: 'carol', to: 'me', text: 'to the team', sentAt: 1001 }, conference: { id: 'conf-1', name: 'team' } }
    ]
    const { reader, active, emitted, unshown } = setup(envs, { unshown: earlier })
    const shown = await reader.drain(active)
    expect(shown.map(m => m.id)).toEqual(['e-001', 'e-005', 'e-009'])
    expect(emitted).toEqual([shown])
    expect(shown[0]).toEqual({ id: 'e-001', from: 'carol', to: 'me', text: 'to the team', sentAt: 1001, direction: 'in', live: false, conference: { id: 'conf-1', name: 'team' } })
    expect(unshown).toEqual([])
    // shown once: the next read has nothing to show
    expect(await reader.drain(active)).toEqual([])
  })

  it('shows what an earlier read kept but did not show also when no holder answers now', async () => {
    const earlier: UnshownMessage[] = [{ entry: { id: 'e-001', from: 'bob', to: 'me', text: 'kept', sentAt: 1001 } }]
    const { reader, active, emitted, unshown } = setup([], { unshown: earlier, holdersDown: true })
    await expect(reader.drain(active)).rejects.toThrow('no holder answered')
    expect(emitted.map(b => b.map(m => m.text))).toEqual([['kept']])
    expect(unshown).toEqual([])
  })

  it('leaves an envelope of a kind it does not know for a newer peer a while, without fetching it again, then removes it', async () => {
    let now = 100 * UNKNOWN_KIND_MAX_AGE_MS
    const fresh = { ...envelope('kind-from-the-future', 0), id: newEnvelopeId(now - UNKNOWN_KIND_MAX_AGE_MS + 1000) }
    const old = { ...envelope('kind-from-the-future', 1), id: newEnvelopeId(now - UNKNOWN_KIND_MAX_AGE_MS - 1000) }
    const dm = { ...envelope(DM_KIND, 2), id: newEnvelopeId(now) }
    const { reader, active, removed, fetched, log } = setup([fresh, old, dm], { handles: kind => kind === DM_KIND, now: () => now })
    await reader.drain(active)
    expect(removed.flat().sort()).toEqual([old.id, dm.id].sort())
    // neither unknown one was handed to a handler
    expect(log.filter(l => l.startsWith('start'))).toEqual([`start ${dm.id}`])
    // the next read does not fetch what it left
    await reader.drain(active)
    expect(fetched[1]).toEqual([])
    // once it is old enough, it is removed, unfetched
    now += UNKNOWN_KIND_MAX_AGE_MS
    await reader.drain(active)
    expect(fetched[2]).toEqual([])
    expect(removed.at(-1)).toEqual([fresh.id])
  })

  it("removes the account's writer lists older than those the session keeps, with the read's other removals, and reports the newest", async () => {
    const lists = ['allow.00000001', 'allow.00000002', 'allow.00000003']
    const { reader, active, removed, noted } = setup([envelope(DM_KIND, 0)], { writerLists: lists, keepFrom: 'allow.00000002' })
    await reader.drain(active)
    expect(removed.flat().sort()).toEqual(['allow.00000001', 'e-000'])
    expect(noted).toEqual(['allow.00000003'])
  })

  it('removes older writer lists alone only once a few have gathered, and none before the session stored its own', async () => {
    const one = setup([], { writerLists: ['allow.00000001', 'allow.00000002'], keepFrom: 'allow.00000002' })
    await one.reader.drain(one.active)
    expect(one.removed).toEqual([])
    const lists = Array.from({ length: OLD_WRITER_LISTS_REMOVED + 1 }, (_, i) => `allow.0000000${i}`)
    const many = setup([], { writerLists: lists, keepFrom: lists.at(-1) })
    await many.reader.drain(many.active)
    expect(many.removed).toEqual([lists.slice(0, -1)])
    // another peer's clock ran ahead: its list is the newest, and this session's is not removed
    const early = setup([envelope(DM_KIND, 0)], { writerLists: lists })
    await early.reader.drain(early.active)
    expect(early.removed.flat()).toEqual(['e-000'])
  })

  it('the session\'s first read takes what was fetched ahead, after an earlier read; a later read, or one after a failed fetch ahead, fetches', async () => {
    const envs = [envelope(DM_KIND, 0), envelope(DM_KIND, 1)]
    const { reader, active, fetched, removed } = setup(envs)
    // an earlier session's read is still removing what it showed
    let earlierDone = (): void => {}
    const earlier = new Promise<void>(resolve => { earlierDone = resolve })
    active.draining = earlier
    reader.fetchAhead(active)
    await new Promise(resolve => setImmediate(resolve))
    expect(fetched).toEqual([])
    earlierDone()
    const ahead = await active.fetchedAhead
    expect(ahead?.mail.envelopes.map(e => e.id)).toEqual(['e-001', 'e-000'])
    expect([...ahead!.listed].sort()).toEqual(['e-000', 'e-001'])
    const shown = await reader.drain(active)
    expect(shown.map(m => m.id)).toEqual(['e-000', 'e-001'])
    // no second fetch, and the copy is used once
    expect(fetched).toHaveLength(1)
    expect(active.fetchedAhead).toBeUndefined()
    expect(removed.flat().sort()).toEqual(['e-000', 'e-001'])
    expect(await reader.drain(active)).toEqual([])
    expect(fetched).toHaveLength(2)

    const down = setup(envs, { holdersDown: true })
    down.reader.fetchAhead(down.active)
    expect(await down.active.fetchedAhead).toBeUndefined()
    // the read then fetches itself (and reports that nobody answered, as any read does)
    await expect(down.reader.drain(down.active)).rejects.toThrow('no holder answered')
  })
})
