/**
 * What travels on the chat protocol, shared by its sending and receiving sides: the
 * protocol id, the window (frames in flight per stream), the ack and its schema.
 *
 * A stream carries length-prefixed CBOR frames: envelopes one way, acks the other. The
 * sender may have up to CHAT_WINDOW envelopes on a stream without their acks; the
 * receiver handles them in the order they came and answers each with one ack, in the
 * same order. So the n-th ack answers the n-th envelope: its `id` is checked against that
 * envelope's, and an ack with an empty id is the refusal of a frame that could not be
 * read as an envelope (an id from a frame that does not verify is never echoed).
 */
import * as cborg from 'cborg'
import { z } from 'zod'
import {
  encodeEnvelope, decodeCbor, refusal, isRefusalCode, MAX_REFUSAL_REASON_CHARS,
  type Envelope, type Refusal
} from '@conf-chat/protocol'

/** 2.1.0: several envelopes in flight per stream, acks in order (2.0.0 had one at a time). */
export const CHAT_PROTOCOL = '/conf-chat/chat/2.1.0'

/**
 * Envelopes a sender may have on one stream without their acks. Part of the protocol: a
 * receiver that reads one more resets the stream. 32 frames keep a conversation's stream
 * busy across a loopback or LAN round trip (about 1,000 envelopes a second need only a few
 * in flight), while a stream holds at most 32 × 64 KiB of unanswered frames.
 */
export const CHAT_WINDOW = 32

/** Inbound chat streams one connection may have open (a sender uses one per peer). */
export const CHAT_MAX_INBOUND_STREAMS = 4

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

/** A refusal ack for envelope `id` ('' for a frame that is no envelope), its reason cut. */
export function ackOf (id: string, r: Refusal): Ack {
  return { id, ok: false, code: r.code, final: r.final, reason: r.reason.slice(0, MAX_REFUSAL_REASON_CHARS) }
}

export function encodeAck (ack: Ack): Uint8Array {
  return cborg.encode(ack)
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

const encoded = new WeakMap<Envelope, Uint8Array>()

/**
 * The envelope's CBOR, encoded once per envelope object: the outbox stores the bytes the
 * messenger then sends. An envelope is never changed after it is made (signed), so the
 * cached bytes stay its own.
 */
export function envelopeBytes (envelope: Envelope): Uint8Array {
  let bytes = encoded.get(envelope)
  if (bytes == null) {
    bytes = encodeEnvelope(envelope)
    encoded.set(envelope, bytes)
  }
  return bytes
}
