import { describe, it, expect } from 'vitest'
import { cork } from '../../../src/network/corked-tcp.js'
import type { MultiaddrConnection } from '@libp2p/interface'

/** A TCP connection's shape as @libp2p/tcp builds it: a socket, and `sendData` writing each chunk. */
function fakeConnection (): { maConn: MultiaddrConnection, calls: string[] } {
  const calls: string[] = []
  const socket = {
    destroyed: false,
    cork: () => { calls.push('cork') },
    uncork: () => { calls.push('uncork') },
    write: (chunk: string) => { calls.push(`write ${chunk}`); return true }
  }
  const maConn = {
    socket,
    sendData (data: string[]) {
      for (const chunk of data) socket.write(chunk)
      return { sentBytes: data.length, canSendMore: true }
    }
  }
  return { maConn: maConn as unknown as MultiaddrConnection, calls }
}

const send = (maConn: MultiaddrConnection, ...chunks: string[]): unknown =>
  (maConn as unknown as { sendData: (d: string[]) => unknown }).sendData(chunks)

const nextTick = async (): Promise<void> => { await new Promise<void>(resolve => process.nextTick(resolve)) }

describe('cork', () => {
  it('sends the writes of one tick between one cork and one uncork', async () => {
    const { maConn, calls } = fakeConnection()
    cork(maConn)
    expect(send(maConn, 'len', 'cipher')).toEqual({ sentBytes: 2, canSendMore: true })
    send(maConn, 'len2', 'cipher2')
    expect(calls).toEqual(['cork', 'write len', 'write cipher', 'write len2', 'write cipher2'])
    await nextTick()
    expect(calls.at(-1)).toBe('uncork')
    // the next tick is corked on its own
    send(maConn, 'later')
    await nextTick()
    expect(calls.slice(5)).toEqual(['uncork', 'cork', 'write later', 'uncork'])
  })

  it('leaves a connection without a socket as it is', () => {
    const maConn = { sendData: () => ({ sentBytes: 0, canSendMore: true }) } as unknown as MultiaddrConnection
    const sendData = (maConn as any).sendData
    expect(cork(maConn)).toBe(maConn)
    expect((maConn as any).sendData).toBe(sendData)
  })

  it('does not cork a destroyed socket', async () => {
    const { maConn, calls } = fakeConnection()
    cork(maConn);
    (maConn as any).socket.destroyed = true
    send(maConn, 'x')
    await nextTick()
    expect(calls).toEqual(['write x'])
  })
})
