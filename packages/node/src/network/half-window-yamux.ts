/**
 * @chainsafe/libp2p-yamux with window updates sent once half the receive window is used.
 *
 * js-yamux answers every data frame it receives with a window update (its
 * `sendWindowUpdate` runs after each frame, and any data leaves the window short of its
 * size), where go-yamux waits until half the window is used. Every request and every
 * response is then followed by a 12-byte frame the other way: encrypted, written on its
 * own (the reply comes later, in another tick), and read, decrypted and parsed by the other
 * side, which wakes for nothing else. On a DHT RPC or a chat message that is two of the
 * four messages a round trip costs.
 *
 * The muxer here is yamux's own; each stream it makes skips the update while the stream
 * is established and more than half its receive window is still free. The update it sends
 * later gives back all that was used. Updates that carry a flag (the ACK of a new inbound
 * stream), and any in another state (opening, paused, closing), go out as before. The
 * sender never waits: it always has at least half a window (128 KiB by default) to send in.
 */
import { yamux, type YamuxMuxerInit } from '@chainsafe/libp2p-yamux'
import { StreamState, type YamuxStream } from '@chainsafe/libp2p-yamux/stream'
import type { StreamMuxer, StreamMuxerFactory, MultiaddrConnection } from '@libp2p/interface'
import { overriding } from '../utils/index.js'

/** `yamux(init)` whose streams send window updates only once half the window is used (see above). */
export function halfWindowYamux (init?: YamuxMuxerInit): () => StreamMuxerFactory {
  const factory = yamux(init)
  return () => {
    const muxerFactory = factory()
    return overriding(muxerFactory, {
      createStreamMuxer: (maConn: MultiaddrConnection): StreamMuxer => halfWindowStreams(muxerFactory.createStreamMuxer(maConn))
    })
  }
}

/** The fields of yamux's stream this relies on (internal to it: a test checks they are there). */
interface WindowedStream {
  state: StreamState
  recvWindow: number
  recvWindowCapacity: number
  sendWindowUpdate: () => void
}

/**
 * Make every stream `muxer` creates from now on (both directions go through its
 * `_newStream`) skip window updates until half its window is used. A muxer of another
 * kind is returned unchanged.
 */
export function halfWindowStreams<T extends StreamMuxer> (muxer: T): T {
  const m = muxer as unknown as { _newStream?: (...args: unknown[]) => YamuxStream }
  if (typeof m._newStream !== 'function') return muxer
  const newStream = m._newStream.bind(muxer)
  m._newStream = (...args: unknown[]) => halfWindow(newStream(...args))
  return muxer
}

/** `stream`, sending a window update only when one is due (see above). */
export function halfWindow<S> (stream: S): S {
  const s = stream as unknown as WindowedStream
  if (typeof s.sendWindowUpdate !== 'function' || typeof s.recvWindowCapacity !== 'number' || typeof s.recvWindow !== 'number') return stream
  const sendWindowUpdate = s.sendWindowUpdate.bind(stream)
  s.sendWindowUpdate = () => {
    if (s.state === StreamState.Established && s.recvWindowCapacity > s.recvWindow / 2) return
    sendWindowUpdate()
  }
  return stream
}
