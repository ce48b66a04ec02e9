/**
 * The dispatch map for inbound envelopes: one handler per envelope kind (friend requests,
 * direct messages, conference changes, session notices...), registered by the part that
 * owns the kind, the way kad-dht's rpc/index.ts maps message types to handlers. Generic
 * over what a handler is told besides the envelope (`Ctx`), so this layer knows nothing of
 * sessions or accounts: the account layer supplies its EnvelopeContext.
 */
import type { AbortOptions } from '@libp2p/interface'
import type { Envelope } from '@conf-chat/protocol'
import { UnknownKindError } from '../errors.js'

/** Handles the envelopes of one kind; throws a refusal (an error with a code) to refuse one. */
export type KindHandler<Ctx> = (envelope: Envelope, ctx: Ctx, options: AbortOptions) => Promise<void>

export interface HandleOptions {
  /** Replace a handler already registered for the kind (else that is an error). @default false */
  force?: boolean
}

export class DuplicateKindHandlerError extends Error {
  override name = 'DuplicateKindHandlerError'
  constructor (kind: string) { super(`a handler for envelope kind ${kind} is already registered`) }
}

export class EnvelopeRouter<Ctx> {
  private readonly handlers = new Map<string, KindHandler<Ctx>>()

  /** Register the handler of `kind`. Throws DuplicateKindHandlerError when one is there, unless `force`. */
  handle (kind: string, handler: KindHandler<Ctx>, options: HandleOptions = {}): void {
    if (this.handlers.has(kind) && options.force !== true) throw new DuplicateKindHandlerError(kind)
    this.handlers.set(kind, handler)
  }

  unhandle (kind: string): void {
    this.handlers.delete(kind)
  }

  /** Whether envelopes of `kind` have a handler here. */
  handles (kind: string): boolean {
    return this.handlers.has(kind)
  }

  /** The kinds with a handler. */
  kinds (): string[] {
    return [...this.handlers.keys()]
  }

  /** Hand the envelope to its kind's handler. Throws UnknownKindError (code 'unknown-kind') when there is none. */
  async route (envelope: Envelope, ctx: Ctx, options: AbortOptions = {}): Promise<void> {
    const handler = this.handlers.get(envelope.kind)
    if (handler == null) throw new UnknownKindError(envelope.kind)
    await handler(envelope, ctx, options)
  }
}
