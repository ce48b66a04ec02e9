import { describe, it, expect } from 'vitest'
import { fanOutText, liveConferenceLine, withConferenceLabel } from '../src/commands/conferences.js'
import { offlineLines } from '../src/format.js'

const at = new Date(2026, 10, 22, 9, 5, 7).getTime()

describe('conference lines', () => {
  it('says how a message reached the members', () => {
    const d = (username: string, status: 'delivered' | 'queued' | 'failed', where?: 'live' | 'mailbox' | 'outbox', reason?: string): any =>
      ({ username, delivery: { id: 'x', status, where, reason } })
    expect(fanOutText([d('bob', 'delivered', 'live'), d('carol', 'delivered', 'live'), d('dave', 'queued', 'mailbox')]))
      .toBe('2 delivered, 1 queued for offline delivery')
    expect(fanOutText([d('bob', 'queued', 'outbox'), d('erin', 'failed', undefined, 'too old')]))
      .toBe('0 delivered, 1 queued on this peer (bob), 1 failed (erin: too old)')
    expect(fanOutText([])).toBe('no other member')
  })

  it('shows a live conference message and labels it in the offline listing', () => {
    const m = { id: 'm1', from: 'alice', to: 'bob', text: 'hi all', sentAt: at, direction: 'in' as const, live: false, conference: { id: 'conf-0123456789abcdef', name: 'team' } }
    expect(liveConferenceLine(m)).toBe('[CONF conf-0123456789abcdef / from alice] (09:05:07) hi all')
    const dm = { id: 'm0', from: 'carol', to: 'bob', text: 'psst', sentAt: at, direction: 'in' as const, live: false }
    expect(offlineLines([dm, m].map(withConferenceLabel))).toEqual([
      '[offline] You have 2 message(s):',
      '  [09:05:07] [DM from carol] psst',
      '  [09:05:07] [CONF conf-0123456789abcdef / from alice] hi all'
    ])
  })
})
