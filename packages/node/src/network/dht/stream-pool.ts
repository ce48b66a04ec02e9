/**
 * Outbound DHT streams kept open and used again, one request/response at a time.
 *
 * kad-dht opens a stream for every RPC (`connectionManager.openStream`), writes one
 * message, reads one and closes it. A new stream costs a yamux open, a protocol
 * negotiation and a peer-store merge of the protocol on both sides; kad-dht's inbound
 * handler already reads message after message on one stream (rpc/index.js loops until
 * the remote closes). So the pool hands kad-dht a lease on an open stream: the lease is
 * the stream with its own listeners, and its `close()` gives the stream back instead of
 * closing it. A stream goes back only if it is still open both ways and exactly one
 * length-prefixed frame (the response) came in during the lease; anything else (an abort,
 * a closed end, no answer, a stray frame) ends the stream for good.
 */
import type { AbortOptions, Logger, PeerId, Stream } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

/** What the pool needs from libp2p: its connection manager's `openStream`. */
export interface StreamOpener {
  openStream(peer: PeerId | Multiaddr | Multiaddr[], protocol: string | string[], options?: AbortOptions): Promise<Stream>
}

export interface StreamPoolComponents {
  opener: StreamOpener
  log: Logger
  /** An RPC to `peer` timed out with no byte of answer, or an answer its caller gave up on
   * never came: the connection may be dead (see liveness.ts). */
  onStall?: (peer: PeerId) => void
}

export interface StreamPoolInit {
  /** The protocol whose streams are pooled; other protocols go straight to the opener. */
  protocol: string
  /** Idle streams kept per peer (more may be leased at once; the rest close when given back). @default 2 */
  maxIdlePerPeer?: number
  /** An idle stream closes after this long. Must stay below the remote's idle limit for
   * an inbound stream (kad-dht's `incomingMessageTimeout`, 10 s by default), or the remote
   * may reset a stream the moment we use it again. @default 5000 */
  idleTimeoutMs?: number
  /** How long the answer to an RPC its caller gave up on may take before the stream is
   * dropped instead of kept. @default 2000 */
  drainTimeoutMs?: number
}

/** Streams kept per peer: two RPCs to one peer at once are common (a query's FIND_NODE
 * and GET_VALUE paths meet), more are rare; more than that are opened and closed. */
export const DEFAULT_MAX_IDLE_PER_PEER = 2
/** How long an aborted lease's answer may take before its stream is dropped: an answer
 * normally follows in milliseconds; a slow one only keeps the stream from the pool. */
export const DEFAULT_DRAIN_TIMEOUT_MS = 2_000
/** Abort reasons that mean the caller stopped waiting, not that the stream failed. */
const GAVE_UP = new Set(['AbortError', 'TimeoutError'])

interface Uint8ArrayListLike { byteLength: number, subarray: () => Uint8Array }

/** Half of kad-dht's default inbound idle limit (10 s): the remote never times out a
 * stream we still hold. */
export const DEFAULT_IDLE_TIMEOUT_MS = 5_000

/** Counters, for tests and benchmarks. */
export interface StreamPoolStats {
  /** Streams opened through the opener for the pooled protocol. */
  opened: number
  /** Leases served from an idle stream. */
  reused: number
  /** Leases that ended broken or unclean (aborted, closed end, no answer, a stray frame),
   * and idle streams found unusable when taken: the stream was not used again. */
  dropped: number
  /** Clean streams closed because the peer had `maxIdlePerPeer` idle already. */
  surplus: number
  /** Leases aborted by their caller (a query that ended) whose answer was then read and
   * whose stream went back to the pool. */
  drained: number
  /** Idle streams now. */
  idle: number
}

interface IdleEntry {
  stream: Stream
  timer: ReturnType<typeof setTimeout>
}

export class DhtStreamPool implements StreamOpener {
  private readonly opener: StreamOpener
  private readonly log: Logger
  private readonly onStall?: (peer: PeerId) => void
  private readonly protocol: string
  private readonly maxIdlePerPeer: number
  private readonly idleTimeoutMs: number
  private readonly drainTimeoutMs: number
  private readonly idle = new Map<string, IdleEntry[]>()
  private readonly counts = { opened: 0, reused: 0, dropped: 0, surplus: 0, drained: 0 }
  private closed = false

  constructor (components: StreamPoolComponents, init: StreamPoolInit) {
    this.opener = components.opener
    this.log = components.log
    this.onStall = components.onStall
    this.protocol = init.protocol
    this.maxIdlePerPeer = init.maxIdlePerPeer ?? DEFAULT_MAX_IDLE_PER_PEER
    this.idleTimeoutMs = init.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS
    this.drainTimeoutMs = init.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS
  }

  get stats (): StreamPoolStats {
    let idle = 0
    for (const list of this.idle.values()) idle += list.length
    return { ...this.counts, idle }
  }

  /** `connectionManager.openStream` with pooling for the pool's protocol (to a peer id). */
  async openStream (peer: PeerId | Multiaddr | Multiaddr[], protocol: string | string[], options: AbortOptions = {}): Promise<Stream> {
    if (this.closed || protocol !== this.protocol || !isPeerId(peer)) return await this.opener.openStream(peer, protocol, options)
    const key = peer.toString()
    const stream = this.takeIdle(key)
    if (stream != null) {
      this.counts.reused++
      return this.lease(peer, stream, options)
    }
    let fresh: Stream
    try {
      fresh = await this.opener.openStream(peer, protocol, options)
    } catch (err) {
      if (timedOut(options)) this.onStall?.(peer)
      throw err
    }
    this.counts.opened++
    // a stream that ends while idle leaves the pool; one listener for the stream's life
    fresh.addEventListener('close', () => { this.forget(key, fresh) }, { once: true })
    return this.lease(peer, fresh, options)
  }

  /** Close every idle stream; later calls open plain streams. */
  close (): void {
    this.closed = true
    for (const [key, list] of this.idle) {
      for (const { stream, timer } of list) {
        clearTimeout(timer)
        void stream.close().catch((err: Error) => { stream.abort(err) })
      }
      this.idle.delete(key)
    }
  }

  private takeIdle (key: string): Stream | undefined {
    const list = this.idle.get(key)
    while (list != null && list.length > 0) {
      const entry = list.pop() as IdleEntry
      clearTimeout(entry.timer)
      if (list.length === 0) this.idle.delete(key)
      if (usable(entry.stream)) return entry.stream
      this.drop(entry.stream, 'unusable when taken from the pool')
    }
    return undefined
  }

  private giveBack (key: string, stream: Stream): void {
    const list = this.idle.get(key) ?? []
    if (this.closed || list.length >= this.maxIdlePerPeer) {
      this.counts.surplus++
      void stream.close().catch((err: Error) => { stream.abort(err) })
      return
    }
    const timer = setTimeout(() => {
      this.forget(key, stream)
      void stream.close().catch((err: Error) => { stream.abort(err) })
    }, this.idleTimeoutMs)
    timer.unref?.()
    list.push({ stream, timer })
    this.idle.set(key, list)
  }

  /** Remove `stream` from the idle list (it closed, or its idle time ran out). */
  private forget (key: string, stream: Stream): void {
    const list = this.idle.get(key)
    if (list == null) return
    const i = list.findIndex(e => e.stream === stream)
    if (i < 0) return
    const [entry] = list.splice(i, 1)
    clearTimeout(entry?.timer)
    if (list.length === 0) this.idle.delete(key)
  }

  /**
   * Read the one answer still owed on `stream` (whose lease was aborted by its caller) and
   * give the stream back; if it does not come within `drainTimeoutMs`, or more comes,
   * or the stream ends, drop it.
   */
  private drain (peer: PeerId, stream: Stream, frame: FrameCounter, stallReported: boolean): void {
    const key = peer.toString()
    const done = (keep: boolean, late = false): void => {
      clearTimeout(timer)
      stream.removeEventListener('message', onMessage as any)
      stream.removeEventListener('close', onClose)
      if (keep && usable(stream)) {
        this.counts.drained++
        this.giveBack(key, stream)
      } else {
        this.drop(stream, 'no clean answer after its caller gave up')
        if (late && frame.isEmpty() && !stallReported) this.onStall?.(peer)
      }
    }
    const onMessage = (evt: { data: Uint8Array | Uint8ArrayListLike }): void => {
      frame.add(evt.data)
      if (frame.isOneFrame()) done(true)
      else if (frame.hasMore()) done(false)
    }
    const onClose = (): void => { done(false) }
    const timer = setTimeout(() => { done(false, true) }, this.drainTimeoutMs)
    timer.unref?.()
    stream.addEventListener('close', onClose)
    if (frame.isOneFrame()) { done(true); return }
    stream.addEventListener('message', onMessage as any)
  }

  private drop (stream: Stream, why: string): void {
    this.counts.dropped++
    this.log.trace('dropping a %s stream: %s', this.protocol, why)
    if (stream.status === 'open') stream.abort(new Error(`pooled stream dropped: ${why}`))
  }

  /**
   * The stream as kad-dht sees it for one request: listeners added through the lease are
   * removed when it ends; `close()` gives the stream back if the exchange was clean;
   * `abort()` ends the stream. After the lease ended both do nothing, so a late call never
   * touches a stream that serves another request by then.
   */
  private lease (peer: PeerId, stream: Stream, options: AbortOptions): Stream {
    const key = peer.toString()
    const listeners: Array<[string, any, any]> = []
    const frame = new FrameCounter()
    const onMessage = (evt: { data: Uint8Array | Uint8ArrayListLike }): void => { frame.add(evt.data) }
    // added before anyone reads through the lease, so it sees every byte of the response
    stream.addEventListener('message', onMessage as any)
    let ended = false
    let sent = 0
    const end = (): void => {
      ended = true
      stream.removeEventListener('message', onMessage as any)
      for (const [type, fn, opts] of listeners) stream.removeEventListener(type as any, fn, opts)
      listeners.length = 0
    }
    const overrides: Partial<Stream> = {
      addEventListener: ((type: string, fn: any, opts?: any) => {
        if (ended) return
        listeners.push([type, fn, opts])
        stream.addEventListener(type as any, fn, opts)
      }) as Stream['addEventListener'],
      removeEventListener: ((type: string, fn: any, opts?: any) => {
        const i = listeners.findIndex(([t, f]) => t === type && f === fn)
        if (i >= 0) listeners.splice(i, 1)
        stream.removeEventListener(type as any, fn, opts)
      }) as Stream['removeEventListener'],
      close: async (options?: AbortOptions) => {
        if (ended) return
        end()
        if (frame.isOneFrame() && usable(stream)) {
          this.giveBack(key, stream)
          return
        }
        this.counts.dropped++
        if (stream.status === 'open') await stream.close(options).catch((err: Error) => { stream.abort(err) })
      },
      send: (data: Uint8Array | Uint8ArrayListLike) => {
        sent += data.byteLength
        return stream.send(data as Uint8Array)
      },
      abort: (err: Error) => {
        if (ended) return
        end()
        // kad-dht's own time limit ran out with nothing back: the connection may be dead
        const stalled = timedOut(options) && frame.isEmpty()
        if (stalled) this.onStall?.(peer)
        // the caller gave up (a query that has its answer ends the RPCs still in flight): the
        // stream itself is fine, so wait for the answer it is owed and keep it
        if (GAVE_UP.has(err?.name) && usable(stream) && sent > 0 && !frame.hasMore()) {
          this.drain(peer, stream, frame, stalled)
          return
        }
        this.counts.dropped++
        stream.abort(err)
      }
    }
    return new Proxy(stream, {
      get (target, prop) {
        if (Object.prototype.hasOwnProperty.call(overrides, prop)) return (overrides as any)[prop]
        const value = Reflect.get(target, prop, target)
        return typeof value === 'function' ? value.bind(target) : value
      },
      set (target, prop, value) {
        return Reflect.set(target, prop, value, target)
      }
    })
  }
}

/** Open both ways with nothing unread: safe to send the next request on. */
function usable (stream: Stream): boolean {
  return stream.status === 'open' && stream.writeStatus === 'writable' && stream.readStatus === 'readable' &&
    stream.remoteWriteStatus === 'writable' && stream.remoteReadStatus === 'readable' && stream.readBufferLength === 0
}

/** Whether the caller's signal ended by a time limit (AbortSignal.timeout), not by a choice. */
function timedOut (options: AbortOptions): boolean {
  return options.signal?.aborted === true && (options.signal.reason as Error | undefined)?.name === 'TimeoutError'
}

function isPeerId (peer: unknown): peer is PeerId {
  return typeof (peer as PeerId)?.toMultihash === 'function' && typeof (peer as PeerId)?.equals === 'function'
}

/** Whether the bytes seen so far are exactly one varint-length-prefixed frame. */
export class FrameCounter {
  private total = 0
  private head: number[] = []

  add (data: Uint8Array | Uint8ArrayListLike): void {
    if (this.head.length < MAX_VARINT_BYTES) {
      const bytes = data instanceof Uint8Array ? data : data.subarray()
      for (const byte of bytes.subarray(0, MAX_VARINT_BYTES - this.head.length)) this.head.push(byte)
    }
    this.total += data.byteLength
  }

  /** Nothing came yet. */
  isEmpty (): boolean {
    return this.total === 0
  }

  isOneFrame (): boolean {
    const size = this.frameSize()
    return size != null && this.total === size
  }

  /** Whether more bytes came than one frame holds. */
  hasMore (): boolean {
    const size = this.frameSize()
    return size != null && this.total > size
  }

  /** Length prefix plus payload of the first frame, once its prefix is in. */
  private frameSize (): number | undefined {
    let length = 0
    for (const [i, byte] of this.head.entries()) {
      length += (byte & 0x7f) * 2 ** (7 * i)
      if ((byte & 0x80) === 0) return i + 1 + length
    }
    return undefined
  }
}

/** A message length is under 2^63: at most 9 bytes of varint (kad-dht's limit is 4 MiB). */
const MAX_VARINT_BYTES = 9
