import { openEnvelope, friendAnswerBodySchema } from '@conf-chat/protocol'
import { findFriend, without } from '../friend-state.js'
import type { FriendEnvelope, FriendEnvelopeHandler, FriendHandlerComponents } from './handler.js'

export type FriendRemoveHandlerComponents = Pick<FriendHandlerComponents, 'state' | 'keys' | 'emit'>

/** `friend-remove`: the sender ended the friendship (or withdrew a request): nothing of them is kept. */
export class FriendRemoveHandler implements FriendEnvelopeHandler {
  private readonly components: FriendRemoveHandlerComponents

  constructor (components: FriendRemoveHandlerComponents) {
    this.components = components
  }

  async handle ({ envelope: env, seen }: FriendEnvelope): Promise<void> {
    const { state, keys, emit } = this.components
    openEnvelope(env, keys, friendAnswerBodySchema)
    const from = env.from
    const wasFriend = findFriend(state.state, from) != null
    void state.update(s => {
      s.friends = without(s.friends, from)
      s.incoming = without(s.incoming, from)
      s.outgoing = without(s.outgoing, from)
      seen(s)
    })
    if (wasFriend) emit('friend:removed', { username: from })
  }
}
