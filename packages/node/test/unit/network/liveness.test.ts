/**
 * ConnectionLiveness with a stubbed ping and stub connections: a suspect peer that does
 * not answer within the probe limit has its connections aborted; one that answers (or
 * refuses the ping protocol, which is an answer too) keeps them; probes of one peer are
 * rate-limited by an injected clock.
 */
import { describe, it, expect } from 'vitest'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { defaultLogger } from '@libp2p/logger'
import type { AbortOptions, Connection, PeerId } from '@libp2p/interface'
import { ConnectionLiveness, DeadConnectionError } from '../../../src/network/liveness.js'

const log = defaultLogger().forComponent('test:liveness')

class StubConnection {
  status: 'open' | 'closed' = 'open'
  abortedWith?: Error
  abort (err: Error): void { this.status = 'closed'; this.abortedWith = err }
}

type Answer = 'pong' | 'silent' | 'unsupported'

function setup (answer: Answer, init: { now?: () => number } = {}): { liveness: ConnectionLiveness, conns: StubConnection[], pings: number[] } {
  const conns = [new StubConnection(), new StubConnection()]
  const pings: number[] = []
  const liveness = new ConnectionLiveness({
    ping: async (_peer: PeerId, options: AbortOptions) => {
      pings.push(Date.now())
      if (answer === 'pong') return 1
      if (answer === 'unsupported') throw Object.assign(new Error('protocol selection failed'), { name: 'UnsupportedProtocolError' })
      // no answer: wait until the probe's time limit ends the ping, as a dead connection does
      return await new Promise<number>((_resolve, reject) => {
        options.signal?.addEventListener('abort', () => { reject(options.signal?.reason) }, { once: true })
      })
    },
    connections: () => conns as unknown as Connection[],
    log
  }, { probeTimeoutMs: 50, minIntervalMs: 10_000, now: init.now })
  return { liveness, conns, pings }
}

async function peer (): Promise<PeerId> {
  return peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
}

describe('ConnectionLiveness', () => {
  it('aborts every connection to a peer that does not answer a ping within the probe limit', async () => {
    const { liveness, conns } = setup('silent')
    expect(await liveness.probe(await peer(), conns as unknown as Connection[])).toBe(false)
    for (const c of conns) {
      expect(c.status).toBe('closed')
      expect(c.abortedWith).toBeInstanceOf(DeadConnectionError)
    }
    expect(liveness.counts).toEqual({ probes: 1, dead: 1 })
  })

  it('keeps the connections of a peer that answers, or that refuses the ping protocol (an answer too)', async () => {
    for (const answer of ['pong', 'unsupported'] as const) {
      const { liveness, conns } = setup(answer)
      expect(await liveness.probe(await peer(), conns as unknown as Connection[])).toBe(true)
      expect(conns.map(c => c.status)).toEqual(['open', 'open'])
    }
  })

  it('probes a suspect peer once per interval however many RPCs time out, and again after it', async () => {
    let now = 1_000
    const { liveness, pings } = setup('pong', { now: () => now })
    const p = await peer()
    for (let i = 0; i < 10; i++) liveness.suspect(p)
    expect(pings).toHaveLength(1)
    now += 9_999
    liveness.suspect(p)
    expect(pings).toHaveLength(1)
    now += 1
    liveness.suspect(p)
    expect(pings).toHaveLength(2)
    // another peer has its own interval
    liveness.suspect(await peer())
    expect(pings).toHaveLength(3)
    liveness.stop()
  })

  it('does not probe a peer it has no open connection to (there is nothing to abort)', async () => {
    const { liveness, conns, pings } = setup('silent')
    for (const c of conns) c.status = 'closed'
    liveness.suspect(await peer())
    expect(pings).toHaveLength(0)
  })
})
