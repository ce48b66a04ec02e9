/**
 * Direct delivery of envelopes over the project's chat protocol: a long-lived stream per
 * remote peer, one length-prefixed CBOR frame per envelope, each answered by an ack frame
 * from the recipient: `{ id, ok: true }`, or `{ id, ok: false, code, final, reason }` when
 * it refuses the envelope (see @conf-chat/protocol refusals.ts). No ack in time means "not
 * delivered": the caller falls back to the recipient's mailbox.
 *
 * Frames on one stream go strictly one at a time (a frame, then its ack), so an ack with
 * an empty id is the refusal of a frame that could not be read as an envelope.
 */
import * as cborg from 'cborg'
import { z } from 'zod'
import { lpStream, type LengthPrefixedStream } from '@libp2p/utils'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import {
  decodeEnvelope, encodeEnvelope, decodeCbor, refusal, isRefusalCode, MAX_ENVELOPE_BYTES, MAX_REFUSAL_REASON_CHARS,
  type Envelope, type Refusal, type RefusalCode
} from '@conf-chat/protocol'
import type { AbortOptions, ComponentLogger, Connection, Libp2p, Logger, PeerId, PeerStore, Stream } from '@libp2p/interface'
import { refusalOf } from '../errors.js'
import { abortable, timeLimit } from '../utils/index.js'

export const CHAT_PROTOCOL = '/conf-chat/chat/2.0.0'

/** How long a sender waits for the recipient's ack (and for the dial before it). */
export const DEFAULT_ACK_TIMEOUT_MS = 5_000
/** How long an inbound chat stream may wait for its next frame before this side ends it. */
export const DEFAULT_INBOUND_IDLE_MS = 60_000
/** Longest the receiving side spends on one envelope (its handler) before it gives up. */
export const DEFAULT_HANDLE_TIMEOUT_MS = 30_000

const MAX_ACK_ID_CHARS = 64
const MAX_CODE_CHARS = 40

const ackSchema = z.union([
  z.object({ id: z.string().max(MAX_ACK_ID_CHARS), ok: z.literal(true) }).strict(),
  z.object({
    id: z.string().max(MAX_ACK_ID_CHARS),
    ok: z.literal(false),
    code: z.string().max(MAX_CODE_CHARS),
    final: z.boolean(),
    // a longer reason is cut, not a broken ack: it only goes into logs
    reason: z.string().transform(s => s.slice(0, MAX_REFUSAL_REASON_CHARS))
  }).strict()
])

/** The recipient's answer to one envelope, as it travels. */
export type Ack = { id: string, ok: true } | ({ id: string, ok: false } & Refusal)

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
  logger: ComponentLogger
}

interface Channel {
  lp: LengthPrefixedStream<Stream>
  /** Frames on one stream go one at a time: request, then its ack. */
  queue: Promise<unknown>
}

class AckMismatchError extends Error {
  override name = 'AckMismatchError'
}

/** The send was cancelled before its frame was written. */
class NotSentError extends Error {
  override name = 'NotSentError'
}

export class Messenger {
  private readonly c: MessengerComponents
  private readonly log: Logger
  private readonly ackTimeoutMs: number
  private readonly inboundIdleMs: number
  private readonly handleTimeoutMs: number
  private readonly channels = new Map<string, Promise<Channel>>()
  private readonly inbound = new Set<Stream>()
  private receiver?: EnvelopeReceiver
  private shutdown = new AbortController()

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
    if (this.shutdown.signal.aborted) this.shutdown = new AbortController()
    await this.c.handle(CHAT_PROTOCOL, (stream, connection) => {
      this.serve(stream, connection).catch(err => { this.log('inbound chat stream from %p ended: %s', connection.remotePeer, err.message) })
    }, { ...options, runOnLimitedConnection: false })
  }

  async stop (options: AbortOptions = {}): Promise<void> {
    this.shutdown.abort(new Error('messenger stopped'))
    await this.c.unhandle(CHAT_PROTOCOL, options).catch(() => {})
    for (const ch of this.channels.values()) {
      ch.then(c => { c.lp.unwrap().abort(new Error('messenger stopped')) }).catch(() => {})
    }
    this.channels.clear()
    for (const stream of this.inbound) stream.abort(new Error('messenger stopped'))
    this.inbound.clear()
  }

  /** Send one envelope to a peer and wait for its ack. Never throws. */
  async send (peerId: string, addrs: string[], envelope: Envelope, options: AbortOptions = {}): Promise<DeliveryResult> {
    const frame = encodeEnvelope(envelope)
    if (frame.length > MAX_ENVELOPE_BYTES) {
      return { delivered: false, ...refusal('too-large', `envelope of ${frame.length} bytes exceeds ${MAX_ENVELOPE_BYTES}`) }
    }
    const aborted = (): boolean => options.signal?.aborted === true
    // one retry on a fresh stream: a cached stream may have died with its connection
    for (let attempt = 0; attempt < 2; attempt++) {
      if (aborted()) return { delivered: false, reason: 'aborted' }
      let channel: Channel
      try {
        channel = await abortable(this.channel(peerId, addrs), options)
      } catch (err: any) {
        if (aborted()) return { delivered: false, reason: 'aborted' }
        return { delivered: false, reason: `unreachable: ${describe(err)}` }
      }
      const result = channel.queue.then(async () => await this.exchange(channel, frame, envelope.id, options))
      channel.queue = result.catch(() => {})
      try {
        const ack = await result
        if (ack.ok) return { delivered: true }
        return { delivered: false, code: ack.code, final: ack.final, reason: ack.reason }
      } catch (err: any) {
        // cancelled while waiting for its turn: the stream is untouched
        if (err instanceof NotSentError) return { delivered: false, reason: 'aborted' }
        // the stream is in an unknown state (half a frame, or an ack still to come): drop it
        this.forget(peerId, channel)
        channel.lp.unwrap().abort(err)
        if (aborted()) return { delivered: false, reason: 'aborted' }
        if (err.name === 'TimeoutError' || err.name === 'AbortError') return { delivered: false, reason: 'no acknowledgement in time' }
        this.log('send to %s failed (%s), attempt %d', peerId, err.message, attempt + 1)
      }
    }
    return { delivered: false, reason: 'stream failed' }
  }

  private async exchange (channel: Channel, frame: Uint8Array, id: string, options: AbortOptions): Promise<Ack> {
    if (options.signal?.aborted === true) throw new NotSentError('aborted before its turn')
    const signal = timeLimit(this.ackTimeoutMs, options)
    await channel.lp.write(frame, { signal })
    const ack = parseAck((await channel.lp.read({ signal })).subarray())
    // an empty id refuses a frame the other side could not read as an envelope: this one
    if (ack.id !== id && !(ack.id === '' && !ack.ok)) throw new AckMismatchError('ack for another envelope')
    return ack
  }

  private forget (peerId: string, channel: Channel): void {
    this.channels.get(peerId)?.then(c => { if (c === channel) this.channels.delete(peerId) }).catch(() => {})
  }

  private async channel (peerId: string, addrs: string[]): Promise<Channel> {
    let ch = this.channels.get(peerId)
    if (ch == null) {
      ch = this.open(peerId, addrs)
      this.channels.set(peerId, ch)
      const opened = ch
      ch.catch(() => { if (this.channels.get(peerId) === opened) this.channels.delete(peerId) })
    }
    return await ch
  }

  /** Dial a stream shared by every send to the peer: bounded by the ack limit and by stop(), not by one caller. */
  private async open (peerIdStr: string, addrs: string[]): Promise<Channel> {
    const peerId = peerIdFromString(peerIdStr)
    if (peerId.equals(this.c.peerId)) throw new Error('that is this peer')
    const signal = timeLimit(this.ackTimeoutMs, { signal: this.shutdown.signal })
    const multiaddrs = addrs.flatMap(a => { try { return [multiaddr(a)] } catch { return [] } })
    if (multiaddrs.length > 0) await this.c.peerStore.merge(peerId, { multiaddrs }, { signal })
    const stream = await this.c.dialProtocol(peerId, CHAT_PROTOCOL, { signal })
    const channel: Channel = { lp: lpStream(stream, { maxDataLength: MAX_ENVELOPE_BYTES }), queue: Promise.resolve() }
    stream.addEventListener('close', () => { this.forget(peerIdStr, channel) })
    return channel
  }

  /**
   * Answer frames on an inbound stream until the sender closes it or it stays idle too
   * long. Each read and write has its own time limit; stop() ends the stream itself (no
   * per-frame signal tied to the messenger's lifetime).
   */
  private async serve (stream: Stream, connection: Connection): Promise<void> {
    const lp = lpStream(stream, { maxDataLength: MAX_ENVELOPE_BYTES })
    this.inbound.add(stream)
    try {
      while (true) {
        let frame: Uint8Array
        try {
          frame = (await lp.read({ signal: timeLimit(this.inboundIdleMs) })).subarray()
        } catch (err: any) {
          if (err.name !== 'InvalidDataLengthError' && err.name !== 'InvalidMessageLengthError') throw err
          // the rest of the frame is still on the stream: answer, then end the stream
          this.log('refused an oversized frame from %p: %s', connection.remotePeer, err.message)
          await lp.write(cborg.encode(ackOf('', refusal('too-large', `frame exceeds ${MAX_ENVELOPE_BYTES} bytes`))), { signal: timeLimit(this.ackTimeoutMs) })
          // flush the ack, then reset: what is left of the frame is never read
          await stream.close({ signal: timeLimit(this.ackTimeoutMs) }).catch(() => {})
          stream.abort(new Error('oversized frame'))
          return
        }
        const ack = await this.answer(frame, connection.remotePeer)
        await lp.write(cborg.encode(ack), { signal: timeLimit(this.ackTimeoutMs) })
      }
    } catch (err: any) {
      // an idle or broken stream: the sender opens a new one for its next envelope
      if (stream.status === 'open') stream.abort(err)
      if (err.name !== 'TimeoutError' && err.name !== 'AbortError') throw err
    } finally {
      this.inbound.delete(stream)
    }
  }

  /** The ack for one frame: the receiver's answer, or the refusal it threw. */
  private async answer (frame: Uint8Array, from: PeerId): Promise<Ack> {
    let envelope: Envelope
    try {
      envelope = decodeEnvelope(frame)
    } catch (err: any) {
      // never echo an id from a frame that does not verify
      this.log('refused an unreadable envelope from %p: %s', from, err.message)
      return ackOf('', refusalOf(err))
    }
    if (this.receiver == null) return ackOf(envelope.id, refusal('not-ready', 'not ready'))
    try {
      const answer = await this.receiver(envelope, from, { signal: timeLimit(this.handleTimeoutMs, { signal: this.shutdown.signal }) })
      return answer.ok === true ? { id: envelope.id, ok: true } : ackOf(envelope.id, refusalOf(answer))
    } catch (err: any) {
      this.log('refused envelope %s from %p: %s', envelope.id, from, err.message)
      return ackOf(envelope.id, refusalOf(err))
    }
  }
}

function ackOf (id: string, r: Refusal): Ack {
  return { id, ok: false, code: r.code, final: r.final, reason: r.reason.slice(0, MAX_REFUSAL_REASON_CHARS) }
}

/**
 * An ack frame, checked by its schema. A code this program does not know (a newer peer)
 * counts as 'internal', which is not final: an envelope is never dropped on a code not
 * understood. For a known code, `final` is this side's own table, not the peer's word.
 */
export function parseAck (bytes: Uint8Array): Ack {
  const ack = ackSchema.parse(decodeCbor(bytes))
  if (ack.ok) return ack
  return ackOf(ack.id, refusal(isRefusalCode(ack.code) ? ack.code : 'internal', ack.reason))
}

function describe (err: any): string {
  return String(err?.message != null && err.message !== '' ? err.message : err?.name ?? err)
}
