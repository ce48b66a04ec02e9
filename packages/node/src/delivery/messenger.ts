/**
 * Direct delivery of envelopes over the project's chat protocol: a long-lived stream per
 * remote peer, one length-prefixed CBOR frame per envelope, each answered by an ack frame
 * from the recipient: `{ id, ok: true }`, or `{ id, ok: false, code, final, reason }` when
 * it refuses the envelope (see @conf-chat/protocol refusals.ts). No ack in time means "not
 * delivered": the caller falls back to the recipient's mailbox.
 *
 * Up to CHAT_WINDOW envelopes are in flight on a stream; the recipient handles them in
 * order and acks them in that order (chat-wire.ts), the sending side is chat-channel.ts
 * and the receiving side chat-inbound.ts.
 */
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import {
  decodeEnvelope, refusal, MAX_ENVELOPE_BYTES,
  type Envelope, type Refusal, type RefusalCode
} from '@conf-chat/protocol'
import type { AbortOptions, ComponentLogger, Connection, Libp2p, Logger, PeerId, PeerStore, Stream } from '@libp2p/interface'
import { isRelayed } from '../network/index.js'
import { refusalOf } from '../errors.js'
import { abortable, shutdownController, timeLimit } from '../utils/index.js'
import { ChatChannel, NotSentError } from './chat-channel.js'
import { serveChatStream } from './chat-inbound.js'
import { ackOf, envelopeBytes, CHAT_PROTOCOL, CHAT_MAX_INBOUND_STREAMS, type Ack } from './chat-wire.js'

export { CHAT_PROTOCOL, CHAT_WINDOW, parseAck } from './chat-wire.js'
export type { Ack } from './chat-wire.js'

/** How long a sender waits for the recipient's ack (and for the dial before it). */
export const DEFAULT_ACK_TIMEOUT_MS = 5_000
/** How long an inbound chat stream may wait for its next frame before this side ends it. */
export const DEFAULT_INBOUND_IDLE_MS = 60_000
/** Longest the receiving side spends on one envelope (its handler) before it gives up. */
export const DEFAULT_HANDLE_TIMEOUT_MS = 30_000

/** What the receive callback answers: accepted, or a refusal (a thrown error is one too, see refusalOf). */
export type ReceiveAnswer = { ok: true } | (Refusal & { ok?: false })

/** What the local side does with an envelope that arrived; its answer (or what it throws) becomes the ack. */
export type EnvelopeReceiver = (envelope: Envelope, from: PeerId, options: AbortOptions) => Promise<ReceiveAnswer>

/**
 * The outcome of one send. `code` and `final` are there when the recipient refused the
 * envelope; a transport failure (dial error, no ack in time, broken stream) has neither.
 */
export type DeliveryResult =
  | { delivered: true }
  | { delivered: false, reason: string, code?: RefusalCode, final?: boolean }

export interface MessengerInit {
  /** How long a send waits for the dial and then for the ack. @default 5000 ms */
  ackTimeoutMs?: number
  /** How long an inbound stream may stay without a frame before it is closed. @default 60 s */
  inboundIdleMs?: number
  /** Limit for the receive callback on one envelope. @default 30 s */
  handleTimeoutMs?: number
}

/**
 * What the messenger needs of libp2p. A libp2p node is one; its methods are called on
 * this object, so pass the node itself or bound functions.
 */
export interface MessengerComponents {
  peerId: PeerId
  peerStore: Pick<PeerStore, 'merge'>
  handle: Libp2p['handle']
  unhandle: Libp2p['unhandle']
  dialProtocol: Libp2p['dialProtocol']
  /** The open connections to a peer: a conversation on a relayed one moves to a direct one once there is one (hole-punch.ts). */
  getConnections?: Libp2p['getConnections']
  /**
   * An inbound chat stream over a relay ended. A relay ends a connection at its limits,
   * also in the middle of an envelope too large for what is left; its sender then puts it
   * into the mailbox, which the recipient should read soon rather than at its next poll.
   */
  relayedStreamEnded?: (from: PeerId) => void
  logger: ComponentLogger
}

export class Messenger {
  private readonly c: MessengerComponents
  private readonly log: Logger
  private readonly ackTimeoutMs: number
  private readonly inboundIdleMs: number
  private readonly handleTimeoutMs: number
  private readonly channels = new Map<string, Promise<ChatChannel>>()
  /** Channels whose stream goes through a relay. */
  private readonly relayed = new WeakSet<ChatChannel>()
  private readonly inbound = new Set<Stream>()
  private receiver?: EnvelopeReceiver
  private shutdown = shutdownController()

  constructor (components: MessengerComponents, init: MessengerInit = {}) {
    this.c = components
    this.log = components.logger.forComponent('conf-chat:delivery:messenger')
    this.ackTimeoutMs = init.ackTimeoutMs ?? DEFAULT_ACK_TIMEOUT_MS
    this.inboundIdleMs = init.inboundIdleMs ?? DEFAULT_INBOUND_IDLE_MS
    this.handleTimeoutMs = init.handleTimeoutMs ?? DEFAULT_HANDLE_TIMEOUT_MS
  }

  /** Answer the chat protocol: each envelope that arrives goes to `receiver`. */
  async start (receiver: EnvelopeReceiver, options: AbortOptions = {}): Promise<void> {
    this.receiver = receiver
    if (this.shutdown.signal.aborted) this.shutdown = shutdownController()
    await this.c.handle(CHAT_PROTOCOL, (stream, connection) => {
      this.serve(stream, connection)
        .catch(err => { this.log('inbound chat stream from %p ended: %s', connection.remotePeer, err.message) })
        .finally(() => {
          if (connection.remoteAddr != null && isRelayed(connection.remoteAddr) && !this.shutdown.signal.aborted) this.c.relayedStreamEnded?.(connection.remotePeer)
        })
    // a relayed connection (to or from a peer behind NAT) is "limited" by the relay's
    // duration and data limits: chat runs on it; one that hits a limit is dialled again
    }, { ...options, runOnLimitedConnection: true, maxInboundStreams: CHAT_MAX_INBOUND_STREAMS })
  }

  async stop (options: AbortOptions = {}): Promise<void> {
    this.shutdown.abort(new Error('messenger stopped'))
    await this.c.unhandle(CHAT_PROTOCOL, options).catch(() => {})
    for (const ch of this.channels.values()) {
      ch.then(c => { c.fail(new Error('messenger stopped')) }).catch(() => {})
    }
    this.channels.clear()
    for (const stream of this.inbound) stream.abort(new Error('messenger stopped'))
    this.inbound.clear()
  }

  /**
   * Send one envelope to a peer and wait for its ack (`options.ackTimeoutMs`: longer than
   * the messenger's limit, for an envelope whose handler has work to finish first). Never throws.
   */
  async send (peerId: string, addrs: string[], envelope: Envelope, options: AbortOptions & { ackTimeoutMs?: number } = {}): Promise<DeliveryResult> {
    const frame = envelopeBytes(envelope)
    if (frame.length > MAX_ENVELOPE_BYTES) {
      return { delivered: false, ...refusal('too-large', `envelope of ${frame.length} bytes exceeds ${MAX_ENVELOPE_BYTES}`) }
    }
    const aborted = (): boolean => options.signal?.aborted === true
    // one retry on a fresh stream: a cached stream may have died with its connection
    for (let attempt = 0; attempt < 2; attempt++) {
      if (aborted()) return { delivered: false, reason: 'aborted' }
      let channel: ChatChannel
      try {
        channel = await abortable(this.channel(peerId, addrs), options)
      } catch (err: any) {
        if (aborted()) return { delivered: false, reason: 'aborted' }
        return { delivered: false, reason: `unreachable: ${describe(err)}` }
      }
      try {
        const ack = await channel.exchange(envelope.id, frame, options.ackTimeoutMs ?? this.ackTimeoutMs, options.signal)
        if (ack.ok) return { delivered: true }
        return { delivered: false, code: ack.code, final: ack.final, reason: ack.reason }
      } catch (err: any) {
        // cancelled before its frame went out, or after (the stream goes on for the others)
        if (err instanceof NotSentError || aborted()) return { delivered: false, reason: 'aborted' }
        if (err.name === 'TimeoutError') return { delivered: false, reason: 'no acknowledgement in time' }
        this.log('send to %s failed (%s), attempt %d', peerId, err.message, attempt + 1)
      }
    }
    return { delivered: false, reason: 'stream failed' }
  }

  private forget (peerId: string, channel: ChatChannel): void {
    this.channels.get(peerId)?.then(c => { if (c === channel) this.channels.delete(peerId) }).catch(() => {})
  }

  private async channel (peerId: string, addrs: string[]): Promise<ChatChannel> {
    let ch = this.channels.get(peerId)
    if (ch != null) {
      const cached = await ch
      if (!cached.failed && !(this.relayed.has(cached) && this.direct(peerId) != null)) return cached
      if (!cached.failed) this.retire(cached)
      if (this.channels.get(peerId) === ch) this.channels.delete(peerId)
      ch = this.channels.get(peerId)
    }
    if (ch == null) {
      ch = this.open(peerId, addrs)
      this.channels.set(peerId, ch)
      const opened = ch
      ch.catch(() => { if (this.channels.get(peerId) === opened) this.channels.delete(peerId) })
    }
    return await ch
  }

  /** Dial a stream shared by every send to the peer: bounded by the ack limit and by stop(), not by one caller. */
  private async open (peerIdStr: string, addrs: string[]): Promise<ChatChannel> {
    const peerId = peerIdFromString(peerIdStr)
    if (peerId.equals(this.c.peerId)) throw new Error('that is this peer')
    const signal = timeLimit(this.ackTimeoutMs, { signal: this.shutdown.signal })
    const multiaddrs = addrs.flatMap(a => { try { return [multiaddr(a)] } catch { return [] } })
    if (multiaddrs.length > 0) await this.c.peerStore.merge(peerId, { multiaddrs }, { signal })
    const direct = this.direct(peerIdStr)
    const stream = direct != null
      ? await direct.newStream(CHAT_PROTOCOL, { signal })
      : await this.c.dialProtocol(peerId, CHAT_PROTOCOL, { signal, runOnLimitedConnection: true })
    const channel = new ChatChannel(stream, this.log, channel => { this.forget(peerIdStr, channel) })
    if (direct == null && this.connections(peerIdStr).every(c => isRelayed(c.remoteAddr))) this.relayed.add(channel)
    return channel
  }

  private connections (peerId: string): Connection[] {
    return this.c.getConnections?.(peerIdFromString(peerId)) ?? []
  }

  /** An open connection to the peer that does not go through a relay. */
  private direct (peerId: string): Connection | undefined {
    return this.connections(peerId).find(c => c.status === 'open' && !isRelayed(c.remoteAddr))
  }

  /** A channel over a relay, replaced by one over a direct connection: what it carries now
   * is acked (or times out) within the ack limit; then its stream is closed. */
  private retire (channel: ChatChannel): void {
    this.relayed.delete(channel)
    setTimeout(() => { channel.fail(new Error('moved to a direct connection')) }, this.ackTimeoutMs).unref()
  }

  /**
   * Answer frames on an inbound stream until the sender closes it or it stays idle too
   * long. Reads and writes have their own time limits; stop() ends the stream itself (no
   * per-frame signal tied to the messenger's lifetime).
   */
  private async serve (stream: Stream, connection: Connection): Promise<void> {
    this.inbound.add(stream)
    try {
      const from = connection.remotePeer
      await serveChatStream<Envelope | Ack>(stream, from, {
        read: frame => this.read(frame, from),
        answer: async read => 'ok' in read ? read : await this.answer(read, from)
      }, {
        idleMs: this.inboundIdleMs,
        writeMs: this.ackTimeoutMs
      }, this.log)
    } finally {
      this.inbound.delete(stream)
    }
  }

  /** A frame's envelope, checked (shape, size, signature), or the ack that refuses it. */
  private read (frame: Uint8Array, from: PeerId): Envelope | Ack {
    try {
      return decodeEnvelope(frame)
    } catch (err: any) {
      // never echo an id from a frame that does not verify
      this.log('refused an unreadable envelope from %p: %s', from, err.message)
      return ackOf('', refusalOf(err))
    }
  }

  /** The ack for one envelope: the receiver's answer, or the refusal it threw. */
  private async answer (envelope: Envelope, from: PeerId): Promise<Ack> {
    if (this.receiver == null) return ackOf(envelope.id, refusal('not-ready', 'not ready'))
    const limit = clearableLimit(this.handleTimeoutMs, this.shutdown.signal)
    try {
      const answer = await this.receiver(envelope, from, { signal: limit.signal })
      return answer.ok === true ? { id: envelope.id, ok: true } : ackOf(envelope.id, refusalOf(answer))
    } catch (err: any) {
      this.log('refused envelope %s from %p: %s', envelope.id, from, err.message)
      return ackOf(envelope.id, refusalOf(err))
    } finally {
      limit.clear()
    }
  }
}

/**
 * A signal that aborts after `ms` or when `parent` does, and `clear()` to drop its timer
 * once the work is done. AbortSignal.timeout's timer cannot be cleared: one per envelope
 * kept 30 s of timers and signals alive (30,000 at 1,000 envelopes a second), each firing
 * a TimeoutError in the end; in a profile of bench:messages making and firing them cost
 * about as much as the ack's CBOR and schema.
 */
function clearableLimit (ms: number, parent: AbortSignal): { signal: AbortSignal, clear: () => void } {
  const controller = new AbortController()
  const onParent = (): void => { controller.abort(parent.reason) }
  const timer = setTimeout(() => { controller.abort(new DOMException(`no answer in ${ms} ms`, 'TimeoutError')) }, ms)
  if (parent.aborted) onParent()
  else parent.addEventListener('abort', onParent, { once: true })
  return {
    signal: controller.signal,
    clear: () => {
      clearTimeout(timer)
      parent.removeEventListener('abort', onParent)
    }
  }
}

function describe (err: any): string {
  return String(err?.message != null && err.message !== '' ? err.message : err?.name ?? err)
}
