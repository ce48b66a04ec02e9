/** The peer's logger: libp2p's for the names DEBUG enables (and their scopes), a no-op one for the rest. */
import { describe, it, expect, afterEach } from 'vitest'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { enable, disable } from '@libp2p/logger'
import { quietPeerLogger } from '../../../src/network/quiet-logger.js'

afterEach(() => { disable() })

describe('quietPeerLogger', () => {
  it('hands out loggers that print nothing while no pattern enables them, scopes too', async () => {
    disable()
    const logger = quietPeerLogger(peerIdFromPrivateKey(await generateKeyPair('Ed25519')))
    const log = logger.forComponent('libp2p:tcp')
    expect(log.enabled).toBe(false)
    const scoped = log.newScope('connection').newScope('noise')
    expect(scoped.enabled).toBe(false)
    expect(() => { scoped('a line'); scoped.error('an error'); scoped.trace('a trace') }).not.toThrow()
  })

  it('gives a name a pattern enables (under the peer prefix) a real logger, also when only a scope below is enabled', async () => {
    const id = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    const s = id.toString()
    const prefix = `${s.slice(0, 2)}…${s.slice(-4)}`
    enable(`${prefix}:conf-chat:*,*:libp2p:tcp:connection:*`)
    const logger = quietPeerLogger(id)
    expect(logger.forComponent('conf-chat:network:peer').enabled).toBe(true)
    const tcp = logger.forComponent('libp2p:tcp')
    expect(tcp.enabled).toBe(false)
    expect(tcp.newScope('connection').newScope('outbound').enabled).toBe(true)
    expect(logger.forComponent('libp2p:noise').enabled).toBe(false)
  })

  it('keeps error-only patterns: a name whose :error is enabled gets a real logger, its plain lines stay off', async () => {
    enable('*:error')
    const logger = quietPeerLogger(peerIdFromPrivateKey(await generateKeyPair('Ed25519')))
    const log = logger.forComponent('libp2p:dht')
    expect(log.enabled).toBe(false)
    expect((log.error as unknown as { enabled: boolean }).enabled).toBe(true)
  })
})
