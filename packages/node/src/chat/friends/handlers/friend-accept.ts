import { openEnvelope, friendAnswerBodySchema } from '@conf-chat/protocol'
import type { Logger } from '@libp2p/interface'
import { becomeFriends } from '../friend-state.js'
import type { FriendEnvelope, FriendEnvelopeHandler, FriendHandlerComponents } from './handler.js'

export type FriendAcceptHandlerComponents = Pick<FriendHandlerComponents, 'state' | 'keys' | 'onFriend' | 'emit' | 'logger' | 'now'>

/** `friend-accept`: our request was accepted and the friendship begins; without a request of ours, ignored. */
export class FriendAcceptHandler implements FriendEnvelopeHandler {
  private readonly components: FriendAcceptHandlerComponents
  private readonly log: Logger

  constructor (components: FriendAcceptHandlerComponents) {
    this.components = components
    this.log = components.logger.forComponent('conf-chat:chat:friends:accept')
  }

  async handle ({ envelope: env, seen }: FriendEnvelope): Promise<void> {
    const { state, keys, emit } = this.components
    openEnvelope(env, keys, friendAnswerBodySchema)
    const asked = state.state.outgoing.find(e => e.username === env.from)
    if (asked == null) {
      this.log('ignored an accept from %s: no request of ours', env.from)
      void state.update(seen)
      return
    }
    // they know us now: they may hear at once that we are online
    becomeFriends(this.components, asked, seen, true)
    emit('friend:accepted', { username: env.from })
  }
}
