/**
 * @libp2p/tcp with the writes of one tick sent together.
 *
 * libp2p's TCP connection writes every chunk it is given with its own `socket.write`, and
 * one message passes through yamux (a frame header, then the data) and noise (a length
 * prefix, then the ciphertext, per frame), so a DHT RPC became 10-14 write system calls
 * with TCP_NODELAY on: a packet each on loopback, and the sender's kernel runs the
 * receiver's TCP stack for every one of them. This wrapper corks the socket at the first
 * write of a tick and uncorks it on the next tick: Node sends what piled up with one
 * `writev`. Nothing waits longer than the current tick, so latency does not change.
 *
 * The transport, its dial and its listener are @libp2p/tcp's own; only the connections it
 * hands to the upgrader are touched (their `sendData`), before the upgrade starts.
 */
import { tcp, type TCPOptions } from '@libp2p/tcp'
import type { MultiaddrConnection, Transport, Upgrader } from '@libp2p/interface'
import type { TCPComponents } from '@libp2p/tcp'
import type { Socket } from 'node:net'
import { overriding } from '../utils/index.js'

/** `tcp(init)` whose connections cork their socket for a tick at a time (see above). */
export function corkedTcp (init?: TCPOptions): (components: TCPComponents) => Transport {
  const factory = tcp(init)
  return (components) => {
    const transport = factory(components)
    return overriding(transport, {
      dial: async (ma: Parameters<Transport['dial']>[0], options: Parameters<Transport['dial']>[1]) =>
        await transport.dial(ma, { ...options, upgrader: corkingUpgrader(options.upgrader) }),
      createListener: (options: Parameters<Transport['createListener']>[0]) =>
        transport.createListener({ ...options, upgrader: corkingUpgrader(options.upgrader) })
    })
  }
}

/** An upgrader that corks each raw connection before handing it to `upgrader`. */
function corkingUpgrader (upgrader: Upgrader): Upgrader {
  return overriding(upgrader, {
    upgradeInbound: async (maConn: MultiaddrConnection, opts: any) => { await upgrader.upgradeInbound(cork(maConn), opts) },
    upgradeOutbound: async (maConn: MultiaddrConnection, opts: any) => await upgrader.upgradeOutbound(cork(opts?.initiator === false ? asResponder(maConn) : maConn), opts)
  })
}

/**
 * A connection this peer dialled but answers as the responder (the answering side of a
 * hole punch, hole-punch.ts: a TCP simultaneous open has two dialers). The upgrader's
 * `initiator: false` makes noise and multistream-select respond; yamux picks its role
 * from the connection's direction, so that says inbound too (else both ends are yamux
 * clients and the first stream ends the connection).
 */
function asResponder (maConn: MultiaddrConnection): MultiaddrConnection {
  (maConn as { direction: 'inbound' | 'outbound' }).direction = 'inbound'
  return maConn
}

/**
 * Make `maConn` (a TCP connection: it has a `socket`) send the writes of one tick with one
 * system call. A connection of another kind is returned unchanged.
 */
export function cork<T extends MultiaddrConnection> (maConn: T): T {
  const socket = (maConn as unknown as { socket?: Socket }).socket
  const conn = maConn as unknown as { sendData?: (data: unknown) => unknown }
  if (socket == null || typeof socket.cork !== 'function' || typeof conn.sendData !== 'function') return maConn
  const sendData = conn.sendData.bind(maConn)
  let corked = false
  const uncork = (): void => {
    corked = false
    socket.uncork()
  }
  conn.sendData = (data: unknown) => {
    if (!corked && !socket.destroyed) {
      corked = true
      socket.cork()
      process.nextTick(uncork)
    }
    return sendData(data)
  }
  return maConn
}
