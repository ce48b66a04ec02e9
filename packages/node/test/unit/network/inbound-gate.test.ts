/** The half-open connection gate, on stand-in connections (an address, a close event, abort). */
import { describe, it, expect } from 'vitest'
import { multiaddr } from '@multiformats/multiaddr'
import { defaultLogger } from '@libp2p/logger'
import type { MultiaddrConnection } from '@libp2p/interface'
import { InboundGate } from '../../../src/network/inbound-gate.js'

class FakeConn extends EventTarget {
  aborted?: Error
  readonly remoteAddr
  constructor (readonly ip: string, readonly n: number) {
    super()
    this.remoteAddr = multiaddr(`/ip4/${ip}/tcp/${1000 + n}`)
  }

  abort (err: Error): void {
    this.aborted = err
    this.dispatchEvent(new Event('close'))
  }

  close (): void { this.dispatchEvent(new Event('close')) }
}

const log = defaultLogger().forComponent('test')
const conn = (ip: string, n: number): FakeConn & MultiaddrConnection => new FakeConn(ip, n) as unknown as FakeConn & MultiaddrConnection

describe('InboundGate', () => {
  it('admits every new connection, closing the oldest pending one of its address when that address has too many', () => {
    const gate = new InboundGate({ perAddress: 3, total: 100 }, log)
    const attacker = Array.from({ length: 5 }, (_, i) => conn('10.0.0.2', i))
    for (const c of attacker) expect(gate.admit(c)).toBe(false)
    // the two oldest were closed to make room, in order
    expect(attacker.map(c => c.aborted != null)).toEqual([true, true, false, false, false])
    expect(gate.pendingCount('10.0.0.2')).toBe(3)
    // another address is not touched
    const honest = conn('10.0.0.3', 0)
    gate.admit(honest)
    expect(honest.aborted).toBeUndefined()
    expect(gate.counts).toMatchObject({ admitted: 6, evicted: 2 })
  })

  it('keeps the total bounded: the oldest of all goes first', () => {
    const gate = new InboundGate({ perAddress: 10, total: 4 }, log)
    const conns = Array.from({ length: 6 }, (_, i) => conn(`10.0.1.${i}`, i))
    for (const c of conns) gate.admit(c)
    expect(conns.map(c => c.aborted != null)).toEqual([true, true, false, false, false, false])
    expect(gate.pendingCount()).toBe(4)
  })

  it('forgets a connection once upgraded or closed, so it is never closed for room later', () => {
    const gate = new InboundGate({ perAddress: 2, total: 100 }, log)
    const done = conn('10.0.0.2', 0)
    const gone = conn('10.0.0.2', 1)
    gate.admit(done)
    gate.admit(gone)
    expect(gate.upgraded(done)).toBe(false)
    gone.close()
    expect(gate.pendingCount('10.0.0.2')).toBe(0)
    gate.admit(conn('10.0.0.2', 2))
    gate.admit(conn('10.0.0.2', 3))
    gate.admit(conn('10.0.0.2', 4))
    expect(done.aborted).toBeUndefined()
    expect(gate.counts).toMatchObject({ upgraded: 1, evicted: 1 })
  })
})
