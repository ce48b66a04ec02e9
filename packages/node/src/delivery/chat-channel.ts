/**
 * The sending side of one chat stream: up to CHAT_WINDOW envelopes in flight, their acks
 * read in order and matched to them (see chat-wire.ts). Frames that are ready while
 * others are in flight go out together in one write.
 */
import { lpStream, type LengthPrefixedStream } from '@libp2p/utils'
import type { Logger, Stream } from '@libp2p/interface'
import { MAX_ENVELOPE_BYTES } from '@conf-chat/protocol'
import { parseAck, CHAT_WINDOW, type Ack } from './chat-wire.js'

/** Largest ack frame read: a peer may send a long reason, which is cut, not a broken stream. */
const MAX_ACK_BYTES = MAX_ENVELOPE_BYTES

/** The send was cancelled before its frame was written: the stream is untouched. */
export class NotSentError extends Error {
  override name = 'NotSentError'
}

/** No ack within the time limit: the stream is given up. */
export class AckTimeoutError extends Error {
  override name = 'TimeoutError'
}

/** The stream failed or was given up while the envelope waited for its ack. */
export class ChannelFailedError extends Error {
  override name = 'ChannelFailedError'
}

class AckMismatchError extends Error {
  override name = 'AckMismatchError'
}

interface Pending {
  id: string
  frame: Uint8Array
  timer?: ReturnType<typeof setTimeout>
  /** Called once: with the ack, or with the error that ended the wait. */
  settle: (err: Error | undefined, ack?: Ack) => void
}

export class ChatChannel {
  readonly stream: Stream
  private readonly lp: LengthPrefixedStream<Stream>
  private readonly log: Logger
  private readonly window: number
  /** Written and waiting for their acks, oldest first: the next ack answers the first. */
  private readonly inFlight: Pending[] = []
  /** Admitted into the window, to go out with the next write. */
  private unsent: Pending[] = []
  /** Sends waiting for room in the window, in the order they came. */
  private readonly waiting: Array<{ admit: () => void, fail: (err: Error) => void }> = []
  /** Sends let into the window that have not added their frame yet. */
  private reserved = 0
  private writeScheduled = false
  private failure?: Error
  private readonly onFail: (channel: ChatChannel) => void

  constructor (stream: Stream, log: Logger, onFail: (channel: ChatChannel) => void, window = CHAT_WINDOW) {
    this.stream = stream
    this.lp = lpStream(stream, { maxDataLength: MAX_ACK_BYTES })
    this.log = log
    this.window = window
    this.onFail = onFail
    stream.addEventListener('close', () => { this.fail(new ChannelFailedError('stream closed')) })
    void this.readAcks()
  }

  /** Whether this stream can no longer be used. */
  get failed (): boolean {
    return this.failure != null
  }

  /**
   * Send one envelope's frame and wait for its ack, at most `timeoutMs` from the moment
   * it has room in the window. Rejects with NotSentError when `signal` aborts before the
   * frame is written; when it aborts later, the wait ends (AbortError) but the stream goes
   * on (the ack, when it comes, is matched and dropped). AckTimeoutError: no ack in time,
   * the stream is given up; ChannelFailedError or another error: the stream failed.
   */
  async exchange (id: string, frame: Uint8Array, timeoutMs: number, signal?: AbortSignal): Promise<Ack> {
    if (this.failure != null) throw this.failedError()
    if (signal?.aborted === true) throw new NotSentError('aborted before its turn')
    if (this.inUse() >= this.window) {
      await this.room(signal)
      this.reserved--
    }
    if (this.failure != null) throw this.failedError()
    return await new Promise<Ack>((resolve, reject) => {
      let done = false
      const onAbort = (): void => {
        const at = this.unsent.indexOf(pending)
        if (at >= 0) {
          this.unsent.splice(at, 1)
          pending.settle(new NotSentError('aborted before it was written'))
          this.admitWaiting()
        } else {
          pending.settle(signal?.reason instanceof Error ? signal.reason : new DOMException('aborted', 'AbortError'))
        }
      }
      const pending: Pending = {
        id,
        frame,
        settle: (err, ack) => {
          if (done) return
          done = true
          clearTimeout(pending.timer)
          signal?.removeEventListener('abort', onAbort)
          if (err != null) reject(err)
          else resolve(ack as Ack)
        }
      }
      pending.timer = setTimeout(() => {
        pending.settle(new AckTimeoutError(`no ack for ${id} in ${timeoutMs} ms`))
        // acks come in order: nothing behind this one will come sooner
        this.fail(new ChannelFailedError('an earlier envelope got no ack in time'))
      }, timeoutMs)
      signal?.addEventListener('abort', onAbort, { once: true })
      this.unsent.push(pending)
      // alone on the stream: out at once; behind others: with whatever else is ready
      if (this.inFlight.length === 0 && this.unsent.length === 1) this.write()
      else this.scheduleWrite()
    })
  }

  /** Give up the stream: every send on it ends with `err` (or a ChannelFailedError). */
  fail (err: Error): void {
    if (this.failure != null) return
    this.failure = err
    if (this.stream.status === 'open') this.stream.abort(err)
    const failed = err instanceof ChannelFailedError ? err : new ChannelFailedError(err.message)
    for (const p of [...this.inFlight.splice(0), ...this.unsent.splice(0)]) p.settle(failed)
    for (const w of this.waiting.splice(0)) w.fail(failed)
    this.onFail(this)
  }

  /** What a send on a given-up stream gets: never its cause's name (a timeout of another send is not this one's). */
  private failedError (): ChannelFailedError {
    const failure = this.failure as Error
    return failure instanceof ChannelFailedError ? failure : new ChannelFailedError(failure.message)
  }

  private async room (signal?: AbortSignal): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        const at = this.waiting.indexOf(entry)
        if (at >= 0) this.waiting.splice(at, 1)
        reject(new NotSentError('aborted while waiting for room'))
      }
      const entry = {
        admit: () => { signal?.removeEventListener('abort', onAbort); resolve() },
        fail: (err: Error) => { signal?.removeEventListener('abort', onAbort); reject(err) }
      }
      this.waiting.push(entry)
      signal?.addEventListener('abort', onAbort, { once: true })
    })
  }

  private inUse (): number {
    return this.inFlight.length + this.unsent.length + this.reserved
  }

  private admitWaiting (): void {
    while (this.waiting.length > 0 && this.inUse() < this.window) {
      // the admitted send adds its frame a step later: its slot is reserved meanwhile
      this.reserved++
      this.waiting.shift()?.admit()
    }
  }

  private scheduleWrite (): void {
    if (this.writeScheduled) return
    this.writeScheduled = true
    setImmediate(() => {
      this.writeScheduled = false
      this.write()
    })
  }

  /** Everything admitted goes out in one write, in order. */
  private write (): void {
    if (this.failure != null || this.unsent.length === 0) return
    const batch = this.unsent
    this.unsent = []
    this.inFlight.push(...batch)
    const frames = batch.map(p => p.frame)
    const written = frames.length === 1 ? this.lp.write(frames[0] as Uint8Array) : this.lp.writeV(frames)
    written.catch((err: Error) => { this.fail(err) })
  }

  private async readAcks (): Promise<void> {
    try {
      while (this.failure == null) {
        const ack = parseAck((await this.lp.read()).subarray())
        const head = this.inFlight.shift()
        if (head == null) throw new AckMismatchError('an ack with no envelope in flight')
        // an empty id refuses a frame the other side could not read as an envelope: this one
        if (ack.id !== head.id && !(ack.id === '' && !ack.ok)) throw new AckMismatchError(`ack for ${ack.id}, expected ${head.id}`)
        head.settle(undefined, ack)
        this.admitWaiting()
      }
    } catch (err: any) {
      if (this.failure == null) this.log('chat stream failed: %s', err.message)
      this.fail(err)
    }
  }
}
