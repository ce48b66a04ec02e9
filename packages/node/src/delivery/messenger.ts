/**
 * Direct delivery of envelopes over the project's chat protocol: a long-lived stream per
 * remote peer, one length-prefixed CBOR frame per envelope, each answered by an ack frame
 * from the recipient. No ack in time means "not delivered": the caller falls back to the
 * recipient's mailbox.
 */
import * as cborg from 'cborg'
import { z } from 'zod'
import { lpStream, type LengthPrefixedStream } from '@libp2p/utils'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { logger } from '@libp2p/logger'
import { decodeEnvelope, encodeEnvelope, decodeCbor, MAX_ENVELOPE_BYTES, type Envelope } from '@conf-chat/protocol'
import type { Stream, PeerId, Connection } from '@libp2p/interface'
import type { ChatLibp2p } from '../network/peer.js'

const log = logger('conf-chat:messenger')

export const CHAT_PROTOCOL = '/conf-chat/chat/1.0.0'

/** How long a sender waits for the recipient's ack. */
export const DEFAULT_ACK_TIMEOUT_MS = 5_000

const ackSchema = z.object({ id: z.string().max(64), ok: z.boolean(), error: z.string().max(200).optional() }).strict()
export type Ack = z.infer<typeof ackSchema>

/** What the local side does with an envelope that arrived; its answer becomes the ack. */
export type EnvelopeHandler = (envelope: Envelope, from: PeerId) => Promise<{ ok: boolean, error?: string }>

export interface DeliveryResult {
  delivered: boolean
  /** Why it was not delivered (unreachable, refused, no ack in time). */
  reason?: string
}

export interface MessengerInit {
  /** @default 5000 ms */
  ackTimeoutMs?: number
}

interface Channel {
  lp: LengthPrefixedStream<Stream>
  /** Frames on one stream go one at a time: request, then its ack. */
  queue: Promise<unknown>
}

export class Messenger {
  private readonly libp2p: ChatLibp2p
  private readonly ackTimeoutMs: number
  private readonly channels = new Map<string, Promise<Channel>>()
  private handler?: EnvelopeHandler

  constructor (libp2p: ChatLibp2p, init: MessengerInit = {}) {
    this.libp2p = libp2p
    this.ackTimeoutMs = init.ackTimeoutMs ?? DEFAULT_ACK_TIMEOUT_MS
  }

  async start (handler: EnvelopeHandler): Promise<void> {
    this.handler = handler
    await this.libp2p.handle(CHAT_PROTOCOL, (stream, connection) => {
      this.serve(stream, connection).catch(err => { log('inbound chat stream ended: %s', err.message) })
    }, { runOnLimitedConnection: false })
  }

  async stop (): Promise<void> {
    await this.libp2p.unhandle(CHAT_PROTOCOL).catch(() => {})
    for (const ch of this.channels.values()) {
      ch.then(async c => { await c.lp.unwrap().close() }).catch(() => {})
    }
    this.channels.clear()
  }

  /** Send one envelope to a peer and wait for its ack. Never throws. */
  async send (peerId: string, addrs: string[], envelope: Envelope): Promise<DeliveryResult> {
    const frame = encodeEnvelope(envelope)
    // one retry on a fresh stream: a cached stream may have died with its connection
    for (let attempt = 0; attempt < 2; attempt++) {
      let channel: Channel
      try {
        channel = await this.channel(peerId, addrs)
      } catch (err: any) {
        return { delivered: false, reason: `unreachable: ${err.message ?? err.name ?? String(err)}` }
      }
      const result = channel.queue.then(async () => await this.exchange(channel, frame, envelope.id))
      channel.queue = result.catch(() => {})
      try {
        const ack = await result
        return ack.ok ? { delivered: true } : { delivered: false, reason: ack.error ?? 'refused' }
      } catch (err: any) {
        this.channels.delete(peerId)
        channel.lp.unwrap().abort(err)
        if (err.name === 'TimeoutError' || err.name === 'AbortError') return { delivered: false, reason: 'no acknowledgement in time' }
        log('send to %s failed (%s), attempt %d', peerId, err.message, attempt + 1)
      }
    }
    return { delivered: false, reason: 'stream failed' }
  }

  private async exchange (channel: Channel, frame: Uint8Array, id: string): Promise<Ack> {
    const signal = AbortSignal.timeout(this.ackTimeoutMs)
    await channel.lp.write(frame, { signal })
    const ack = ackSchema.parse(decodeCbor((await channel.lp.read({ signal })).subarray()))
    if (ack.id !== id) throw new Error('ack for another envelope')
    return ack
  }

  private async channel (peerId: string, addrs: string[]): Promise<Channel> {
    let ch = this.channels.get(peerId)
    if (ch == null) {
      ch = this.open(peerId, addrs)
      this.channels.set(peerId, ch)
      ch.catch(() => { this.channels.delete(peerId) })
    }
    return await ch
  }

  private async open (peerIdStr: string, addrs: string[]): Promise<Channel> {
    const peerId = peerIdFromString(peerIdStr)
    if (peerId.equals(this.libp2p.peerId)) throw new Error('that is this peer')
    const multiaddrs = addrs.flatMap(a => { try { return [multiaddr(a)] } catch { return [] } })
    if (multiaddrs.length > 0) await this.libp2p.peerStore.merge(peerId, { multiaddrs })
    const stream = await this.libp2p.dialProtocol(peerId, CHAT_PROTOCOL, { signal: AbortSignal.timeout(this.ackTimeoutMs) })
    stream.addEventListener('close', () => { this.channels.delete(peerIdStr) })
    return { lp: lpStream(stream, { maxDataLength: MAX_ENVELOPE_BYTES }), queue: Promise.resolve() }
  }

  /** Answer frames on an inbound stream until the sender closes it. */
  private async serve (stream: Stream, connection: Connection): Promise<void> {
    const lp = lpStream(stream, { maxDataLength: MAX_ENVELOPE_BYTES })
    while (true) {
      const frame = (await lp.read()).subarray()
      let ack: Ack
      let envelope: Envelope | undefined
      try {
        envelope = decodeEnvelope(frame)
        const answer = this.handler == null ? { ok: false, error: 'not ready' } : await this.handler(envelope, connection.remotePeer)
        ack = { id: envelope.id, ...answer }
      } catch (err: any) {
        log('dropped an envelope from %p: %s', connection.remotePeer, err.message)
        ack = { id: envelope?.id ?? '', ok: false, error: String(err.message).slice(0, 200) }
      }
      await lp.write(cborg.encode(ack))
    }
  }
}
