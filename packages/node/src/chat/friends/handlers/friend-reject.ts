import { openEnvelope, friendAnswerBodySchema } from '@conf-chat/protocol'
import { without } from '../friend-state.js'
import type { FriendEnvelope, FriendEnvelopeHandler, FriendHandlerComponents } from './handler.js'

export type FriendRejectHandlerComponents = Pick<FriendHandlerComponents, 'state' | 'keys' | 'emit'>

/** `friend-reject`: our request was turned down; told to the user only if we had asked. */
export class FriendRejectHandler implements FriendEnvelopeHandler {
  private readonly components: FriendRejectHandlerComponents

  constructor (components: FriendRejectHandlerComponents) {
    this.components = components
  }

  async handle ({ envelope: env, seen }: FriendEnvelope): Promise<void> {
    const { state, keys, emit } = this.components
    openEnvelope(env, keys, friendAnswerBodySchema)
    const from = env.from
    const asked = state.state.outgoing.some(e => e.username === from)
    void state.update(s => { s.outgoing = without(s.outgoing, from); seen(s) })
    if (asked) emit('friend:rejected', { username: from })
  }
}
