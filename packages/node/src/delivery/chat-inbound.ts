/**
 * The receiving side of one chat stream (see chat-wire.ts): frames are read as they come,
 * at most CHAT_WINDOW of them without their acks (one more resets the stream: the sender
 * broke the protocol), handled one at a time in the order they came, and answered in that
 * order. Acks that are ready while more frames wait go out together in one write.
 */
import { lpStream } from '@libp2p/utils'
import type { Logger, PeerId, Stream } from '@libp2p/interface'
import { refusal, MAX_ENVELOPE_BYTES } from '@conf-chat/protocol'
import { ackOf, encodeAck, CHAT_WINDOW, type Ack } from './chat-wire.js'
import { timeLimit } from '../utils/index.js'

/** Acks held back at most while the frames behind them are handled, to write them together. */
const MAX_ACKS_PER_WRITE = 8

export interface InboundLimits {
  /** How long the stream may stay with no frame to answer before this side ends it. */
  idleMs: number
  /** Limit for writing acks (a sender that does not read them holds them up). */
  writeMs: number
  /** Frames the sender may have without acks. @default CHAT_WINDOW */
  window?: number
}

/** The sender had more frames in flight than the protocol's window. */
export class WindowExceededError extends Error {
  override name = 'WindowExceededError'
}

class WriteTimeoutError extends Error {
  override name = 'TimeoutError'
}

class IdleError extends Error {
  override name = 'TimeoutError'
}

const OVERSIZED = Symbol('oversized frame')

/**
 * How a stream's frames are answered: `read` runs on each frame as it arrives (decoding and
 * checking its signature: CPU work done while an earlier envelope's handler waits on disk),
 * `answer` on its result, one at a time in order. Neither throws.
 */
export interface FrameAnswerer<T> {
  read: (frame: Uint8Array) => T
  answer: (read: T) => Promise<Ack>
}

/**
 * Answer the frames of an inbound stream until the sender ends the stream, it breaks, or
 * it stays idle too long.
 */
export async function serveChatStream<T> (stream: Stream, from: PeerId, answerer: FrameAnswerer<T>, limits: InboundLimits, log: Logger): Promise<void> {
  const lp = lpStream(stream, { maxDataLength: MAX_ENVELOPE_BYTES })
  const window = limits.window ?? CHAT_WINDOW
  const frames: Array<{ read: T } | typeof OVERSIZED> = []
  let acks: Uint8Array[] = []
  /** Frames read whose ack is not written yet. */
  let unacked = 0
  let readEnd: Error | undefined
  let wake: (() => void) | undefined
  let idle: ReturnType<typeof setTimeout> | undefined

  const armIdle = (): void => {
    if (idle != null || unacked > 0) return
    idle = setTimeout(() => { stream.abort(new IdleError(`no frame in ${limits.idleMs} ms`)) }, limits.idleMs)
  }
  const disarmIdle = (): void => {
    clearTimeout(idle)
    idle = undefined
  }

  const read = async (): Promise<void> => {
    try {
      while (true) {
        armIdle()
        let frame: Uint8Array
        try {
          frame = (await lp.read()).subarray()
        } catch (err: any) {
          if (err.name !== 'InvalidDataLengthError' && err.name !== 'InvalidMessageLengthError') throw err
          // the rest of the frame is still on the stream: answer in turn, then end the stream
          log('refused an oversized frame from %p: %s', from, err.message)
          frames.push(OVERSIZED)
          return
        }
        disarmIdle()
        if (unacked >= window) throw new WindowExceededError(`more than ${window} frames without acks`)
        unacked++
        frames.push({ read: answerer.read(frame) })
        wake?.()
      }
    } catch (err: any) {
      readEnd = err
      if (err.name === 'WindowExceededError') {
        log('reset a chat stream from %p: %s', from, err.message)
        stream.abort(err)
        // a sender that broke the protocol gets nothing more handled
        frames.length = 0
      }
    } finally {
      readEnd ??= new Error('stopped reading')
      wake?.()
    }
  }

  const flush = async (): Promise<void> => {
    if (acks.length === 0) return
    const batch = acks
    acks = []
    // no signal unless the stream pushes back: a write that goes out at once needs no limit
    const written = batch.length === 1 ? lp.write(batch[0] as Uint8Array) : lp.writeV(batch)
    const limit = setTimeout(() => { stream.abort(new WriteTimeoutError(`acks not taken in ${limits.writeMs} ms`)) }, limits.writeMs)
    try {
      await written
    } finally {
      clearTimeout(limit)
    }
    unacked -= batch.length
    armIdle()
  }

  const reading = read()
  try {
    while (true) {
      const frame = frames.shift()
      if (frame == null) {
        await flush()
        if (frames.length > 0) continue
        if (readEnd != null) break
        await new Promise<void>(resolve => { wake = resolve })
        wake = undefined
        continue
      }
      if (frame === OVERSIZED) {
        acks.push(encodeAck(ackOf('', refusal('too-large', `frame exceeds ${MAX_ENVELOPE_BYTES} bytes`))))
        await flush()
        // flush the ack, then reset: what is left of the frame is never read
        await stream.close({ signal: timeLimit(limits.writeMs) }).catch(() => {})
        stream.abort(new Error('oversized frame'))
        return
      }
      acks.push(encodeAck(await answerer.answer(frame.read)))
      if (frames.length === 0 || acks.length >= MAX_ACKS_PER_WRITE) await flush()
    }
    // the sender ended its side and every frame is answered
    if (stream.status === 'open') await stream.close({ signal: timeLimit(limits.writeMs) }).catch(() => {})
  } catch (err: any) {
    // a broken stream, or a sender that does not read its acks: it opens a new one
    if (stream.status === 'open') stream.abort(err)
    log('chat stream from %p ended: %s', from, err.message)
  } finally {
    disarmIdle()
    await reading
  }
  log('chat stream from %p ended: %s', from, readEnd?.message)
}
