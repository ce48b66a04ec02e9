/**
 * ConnectionLiveness with a stubbed ping and stub connections: a suspect peer that does
 * not answer within the probe limit has its connections aborted; one that answers (or
 * refuses the ping protocol, which is an answer too) keeps them; probes of one peer are
 * rate-limited by an injected clock. A peer found dead makes every other connected peer
 * suspect (is this host the one cut off?), once per sweep interval, relayed connections aside.
 */
import { describe, it, expect, vi } from 'vitest'
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

  describe('a peer found dead', () => {
    /** Peers with one connection each (relayed: limited), answering as told; the pings made, by peer. */
    async function connected (answers: Array<{ answer: Answer, relayed?: boolean }>, now: () => number): Promise<{ liveness: ConnectionLiveness, peers: PeerId[], conns: Map<string, StubConnection & { limits?: object }>, pinged: string[] }> {
      const peers = await Promise.all(answers.map(async () => await peer()))
      const conns = new Map(peers.map((p, i) => [p.toString(), Object.assign(new StubConnection(), answers[i]!.relayed === true ? { limits: { bytes: 1n } } : {})]))
      const pinged: string[] = []
      const liveness = new ConnectionLiveness({
        ping: async (p: PeerId, options: AbortOptions) => {
          pinged.push(p.toString())
          const answer = answers[peers.findIndex(q => q.equals(p))]!.answer
          if (answer === 'pong') return 1
          return await new Promise<number>((_resolve, reject) => {
            options.signal?.addEventListener('abort', () => { reject(options.signal?.reason) }, { once: true })
          })
        },
        connections: p => [conns.get(p.toString())!].filter(c => c.status === 'open') as unknown as Connection[],
        peers: () => peers.filter(p => conns.get(p.toString())!.status === 'open'),
        log
      }, { probeTimeoutMs: 50, minIntervalMs: 10_000, sweepIntervalMs: 60_000, now })
      return { liveness, peers, conns, pinged }
    }

    it('makes every other connected peer suspect: a connection no RPC used is found dead too, live ones are kept', async () => {
      const now = 1_000
      // this host is cut off from the first two; the third answers; the fourth is relayed
      const { liveness, peers, conns, pinged } = await connected([{ answer: 'silent' }, { answer: 'silent' }, { answer: 'pong' }, { answer: 'silent', relayed: true }], () => now)
      expect(await liveness.probe(peers[0]!, [conns.get(peers[0]!.toString())!] as unknown as Connection[])).toBe(false)
      await vi.waitFor(() => { expect(conns.get(peers[1]!.toString())!.status).toBe('closed') })
      expect(pinged.sort()).toEqual([peers[0]!, peers[1]!, peers[2]!].map(String).sort())
      expect(conns.get(peers[2]!.toString())!.status).toBe('open')
      // a relayed connection is not pinged in a sweep (a relay may refuse it)
      expect(conns.get(peers[3]!.toString())!.status).toBe('open')
      expect(liveness.counts).toEqual({ probes: 3, dead: 2 })
      liveness.stop()
    })

    it('sweeps once per interval, however many peers are found dead', async () => {
      let now = 1_000
      const { liveness, peers, conns, pinged } = await connected([{ answer: 'silent' }, { answer: 'silent' }, { answer: 'pong' }], () => now)
      const dead = (i: number): Connection[] => [conns.get(peers[i]!.toString())!] as unknown as Connection[]
      await liveness.probe(peers[0]!, dead(0))
      await vi.waitFor(() => { expect(liveness.counts.probes).toBe(3) })
      await vi.waitFor(() => { expect(conns.get(peers[1]!.toString())!.status).toBe('closed') })
      // the second dead peer (found by the sweep) started no sweep of its own
      expect(pinged).toHaveLength(3)
      now += 59_999
      await liveness.probe(peers[1]!, [new StubConnection()] as unknown as Connection[])
      expect(pinged).toHaveLength(4)
      now += 1
      await liveness.probe(peers[1]!, [new StubConnection()] as unknown as Connection[])
      // the live peer is pinged again (its own interval of 10 s is over)
      await vi.waitFor(() => { expect(pinged.filter(p => p === peers[2]!.toString())).toHaveLength(2) })
      liveness.stop()
    })
  })
})
