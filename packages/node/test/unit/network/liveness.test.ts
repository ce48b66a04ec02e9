/**
 * ConnectionLiveness with a stubbed ping and stub connections: a suspect peer that does
 * not answer within the probe limit has its connections aborted; one that answers (or
 * refuses the ping protocol, which is an answer too) keeps them; probes of one peer are
 * rate-limited by an injected clock. A peer that did not answer in time starts a sweep (is
 * this host the one cut off?): three other peers, then, if none answers, all the others
 * but the relayed; once per sweep interval.
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
    type Stub = StubConnection & { remoteAddr: string }
    /** Peers with one connection each (relayed or direct), answering as told ('refused': a reset stream); the pings made, by peer. */
    async function connected (answers: Array<{ answer: Answer | 'refused', relayed?: boolean }>, now: () => number): Promise<{ liveness: ConnectionLiveness, peers: PeerId[], conns: Map<string, Stub>, pinged: string[] }> {
      const peers = await Promise.all(answers.map(async () => await peer()))
      const conns = new Map(peers.map((p, i) => [p.toString(), Object.assign(new StubConnection(), {
        remoteAddr: answers[i]!.relayed === true ? `/ip4/192.0.2.1/tcp/4300/p2p/${peers[0]!.toString()}/p2p-circuit` : '/ip4/192.0.2.7/tcp/4301'
      })]))
      const pinged: string[] = []
      const liveness = new ConnectionLiveness({
        ping: async (p: PeerId, options: AbortOptions) => {
          pinged.push(p.toString())
          const answer = answers[peers.findIndex(q => q.equals(p))]!.answer
          if (answer === 'pong') return 1
          if (answer === 'refused') throw new Error('stream reset')
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
    const only = (conns: Map<string, Stub>, p: PeerId): Connection[] => [conns.get(p.toString())!] as unknown as Connection[]
    const statuses = (conns: Map<string, Stub>, peers: PeerId[]): string[] => peers.map(p => conns.get(p.toString())!.status)

    it('pings three other peers; when one answers, this host is not cut off and the others are left alone', async () => {
      const { liveness, peers, conns, pinged } = await connected([{ answer: 'silent' }, { answer: 'silent' }, { answer: 'pong' }, { answer: 'pong' }, { answer: 'silent' }, { answer: 'silent' }], () => 1_000)
      expect(await liveness.probe(peers[0]!, only(conns, peers[0]!))).toBe(false)
      await vi.waitFor(() => { expect(liveness.counts.probes).toBe(4) })
      await vi.waitFor(() => { expect(conns.get(peers[1]!.toString())!.status).toBe('closed') })
      expect(new Set(pinged)).toEqual(new Set(peers.slice(0, 4).map(String)))
      expect(statuses(conns, peers)).toEqual(['closed', 'closed', 'open', 'open', 'open', 'open'])
      liveness.stop()
    })

    it('pings every other peer when none of the three answers: a connection no RPC used is found dead too; relayed ones are not pinged', async () => {
      // this host is cut off: nobody answers; the last connection is relayed
      const { liveness, peers, conns, pinged } = await connected([{ answer: 'silent' }, { answer: 'silent' }, { answer: 'silent' }, { answer: 'silent' }, { answer: 'silent' }, { answer: 'silent', relayed: true }], () => 1_000)
      await liveness.probe(peers[0]!, only(conns, peers[0]!))
      await vi.waitFor(() => { expect(statuses(conns, peers)).toEqual(['closed', 'closed', 'closed', 'closed', 'closed', 'open']) })
      expect(pinged).not.toContain(peers[5]!.toString())
      expect(liveness.counts).toEqual({ probes: 5, dead: 5 })
      liveness.stop()
    })

    it('sweeps once per interval, and not after a ping that was refused rather than unanswered', async () => {
      let now = 1_000
      const { liveness, peers, conns, pinged } = await connected([{ answer: 'refused' }, { answer: 'silent' }, { answer: 'silent' }, { answer: 'pong' }], () => now)
      // refused (a reset stream): its connections go, but it says nothing of this host
      await liveness.probe(peers[0]!, only(conns, peers[0]!))
      expect(pinged).toEqual([peers[0]!.toString()])
      await liveness.probe(peers[1]!, only(conns, peers[1]!))
      await vi.waitFor(() => { expect(statuses(conns, peers)).toEqual(['closed', 'closed', 'closed', 'open']) })
      // the peer the sweep found dead started no sweep of its own
      expect(pinged).toHaveLength(4)
      now += 59_999
      await liveness.probe(peers[2]!, [new StubConnection()] as unknown as Connection[])
      expect(pinged).toHaveLength(5)
      now += 1
      await liveness.probe(peers[2]!, [new StubConnection()] as unknown as Connection[])
      // the live peer is pinged again (its own interval of 10 s is over)
      await vi.waitFor(() => { expect(pinged.filter(p => p === peers[3]!.toString())).toHaveLength(2) })
      liveness.stop()
    })
  })
})
