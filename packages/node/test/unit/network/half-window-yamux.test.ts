import { describe, it, expect } from 'vitest'
import { StreamState } from '@chainsafe/libp2p-yamux/stream'
import { halfWindow, halfWindowStreams } from '../../../src/network/half-window-yamux.js'
import type { StreamMuxer } from '@libp2p/interface'

/** A yamux stream's window fields, and its own `sendWindowUpdate` counting the updates it sends. */
function fakeStream (state: StreamState, recvWindowCapacity: number): { stream: any, sent: () => number } {
  let sent = 0
  const stream = { state, recvWindow: 256 * 1024, recvWindowCapacity, sendWindowUpdate () { sent++; this.recvWindowCapacity = this.recvWindow } }
  return { stream, sent: () => sent }
}

describe('halfWindow', () => {
  it('skips the update while more than half the window is free, and sends it once half is used', () => {
    const { stream, sent } = fakeStream(StreamState.Established, 256 * 1024)
    halfWindow(stream)
    stream.recvWindowCapacity -= 1000
    stream.sendWindowUpdate()
    expect(sent()).toBe(0)
    stream.recvWindowCapacity = 128 * 1024
    stream.sendWindowUpdate()
    expect(sent()).toBe(1)
    // the update gave everything back: the next small frame needs none
    expect(stream.recvWindowCapacity).toBe(256 * 1024)
  })

  it('sends every update of a stream that is not established (the ACK of a new stream, a paused or closing one)', () => {
    for (const state of [StreamState.Init, StreamState.SYNSent, StreamState.SYNReceived, StreamState.Paused, StreamState.Finished]) {
      const { stream, sent } = fakeStream(state, 256 * 1024 - 10)
      halfWindow(stream).sendWindowUpdate()
      expect(sent()).toBe(1)
    }
  })

  it('wraps the streams a yamux muxer makes, and leaves other muxers and objects as they are', () => {
    const made: any[] = []
    const muxer = { _newStream: () => { const { stream } = fakeStream(StreamState.Established, 256 * 1024 - 10); made.push(stream); return stream } }
    halfWindowStreams(muxer as unknown as StreamMuxer)
    const s = (muxer as any)._newStream()
    expect(made).toEqual([s])
    const before = s.recvWindowCapacity
    s.sendWindowUpdate()
    expect(s.recvWindowCapacity).toBe(before)

    const other = { createStream: () => {} } as unknown as StreamMuxer
    expect(halfWindowStreams(other)).toBe(other)
    const update = (): void => {}
    const plain = { sendWindowUpdate: update }
    expect(halfWindow(plain)).toBe(plain)
    expect(plain.sendWindowUpdate).toBe(update)
  })
})
