/** The node program's flags: read receipts on by default, off by flag or variable. */
import { describe, it, expect, afterEach } from 'vitest'
import { parseNodeOptions } from '../src/options.js'

const argv = (...flags: string[]): string[] => ['node', 'conf-chat', ...flags]

afterEach(() => { delete process.env.CONF_CHAT_NO_READ_RECEIPTS })

describe('read receipts option', () => {
  it('is on unless --no-read-receipts is given or CONF_CHAT_NO_READ_RECEIPTS is set to a true value', () => {
    expect(parseNodeOptions(argv()).readReceipts).toBe(true)
    expect(parseNodeOptions(argv('--no-read-receipts')).readReceipts).toBe(false)
    process.env.CONF_CHAT_NO_READ_RECEIPTS = '1'
    expect(parseNodeOptions(argv()).readReceipts).toBe(false)
    process.env.CONF_CHAT_NO_READ_RECEIPTS = 'off'
    expect(parseNodeOptions(argv()).readReceipts).toBe(true)
  })
})

describe('reachability option', () => {
  afterEach(() => { delete process.env.CONF_CHAT_REACHABILITY })

  it('is found out (auto) unless --reachability (or CONF_CHAT_REACHABILITY) says it', () => {
    expect(parseNodeOptions(argv()).reachability).toBe('auto')
    expect(parseNodeOptions(argv('--reachability', 'public')).reachability).toBe('public')
    expect(parseNodeOptions(argv('--reachability', 'private')).reachability).toBe('private')
    process.env.CONF_CHAT_REACHABILITY = 'private'
    expect(parseNodeOptions(argv()).reachability).toBe('private')
  })
})

describe('upnp option', () => {
  afterEach(() => { delete process.env.CONF_CHAT_NO_UPNP })

  it('asks the router to forward a port unless --no-upnp is given or CONF_CHAT_NO_UPNP is set to a true value', () => {
    expect(parseNodeOptions(argv()).upnp).toBe(true)
    expect(parseNodeOptions(argv('--no-upnp')).upnp).toBe(false)
    process.env.CONF_CHAT_NO_UPNP = 'yes'
    expect(parseNodeOptions(argv()).upnp).toBe(false)
    process.env.CONF_CHAT_NO_UPNP = '0'
    expect(parseNodeOptions(argv()).upnp).toBe(true)
  })
})
