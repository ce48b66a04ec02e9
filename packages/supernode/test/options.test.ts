/** The supernode's relay flags: on by default with the chat limits, each limit a flag (and a variable), off by --no-relay. */
import { describe, it, expect, afterEach } from 'vitest'
import { DEFAULT_RELAY_LIMITS } from '@conf-chat/node/network'
import { parseSupernodeOptions } from '../src/options.js'

const argv = (...flags: string[]): string[] => ['node', 'conf-chat-supernode', ...flags]
const VARS = ['CONF_CHAT_NO_RELAY', 'CONF_CHAT_RELAY_DATA_LIMIT', 'CONF_CHAT_RELAY_DURATION_LIMIT']

afterEach(() => { for (const v of VARS) delete process.env[v] })

describe('relay options', () => {
  it('relays with the default limits unless told not to', () => {
    expect(parseSupernodeOptions(argv()).relay).toEqual(DEFAULT_RELAY_LIMITS)
    expect(parseSupernodeOptions(argv('--no-relay')).relay).toBeUndefined()
    process.env.CONF_CHAT_NO_RELAY = '1'
    expect(parseSupernodeOptions(argv()).relay).toBeUndefined()
  })

  it('takes each limit from its flag or variable, in the flag\'s unit', () => {
    const relay = parseSupernodeOptions(argv('--relay-max-reservations', '7', '--relay-reservation-ttl', '600', '--relay-duration-limit', '30', '--relay-data-limit', '4')).relay
    expect(relay).toEqual({ maxReservations: 7, reservationTtlMs: 600_000, durationLimitMs: 30_000, dataLimitBytes: 4096 })
    process.env.CONF_CHAT_RELAY_DATA_LIMIT = '256'
    process.env.CONF_CHAT_RELAY_DURATION_LIMIT = '90'
    expect(parseSupernodeOptions(argv()).relay).toMatchObject({ dataLimitBytes: 256 * 1024, durationLimitMs: 90_000 })
  })
})
