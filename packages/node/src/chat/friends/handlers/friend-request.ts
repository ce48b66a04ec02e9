import { openEnvelope, friendRequestBodySchema, FRIEND_ACCEPT_KIND, type FriendRequestEntry } from '@conf-chat/protocol'
import type { Logger } from '@libp2p/interface'
import { becomeFriends, findFriend, pruneStrangers, without } from '../friend-state.js'
import { RefusalError } from '../../../errors.js'
import type { FriendEnvelope, FriendEnvelopeHandler, FriendHandlerComponents } from './handler.js'

export type FriendRequestHandlerComponents = Pick<FriendHandlerComponents, 'state' | 'keys' | 'deliver' | 'onFriend' | 'emit' | 'logger' | 'now' | 'limits'>

/**
 * `friend-request`: kept as an incoming request (and told to the user), unless we are
 * friends already or asked them too: then both want it, and the friendship begins. With
 * `limits.maxIncoming` requests waiting (expired ones not counted), a request from someone
 * new is refused as 'full' (passing: its sender keeps it and tries again later).
 */
export class FriendRequestHandler implements FriendEnvelopeHandler {
  private readonly components: FriendRequestHandlerComponents
  private readonly log: Logger

  constructor (components: FriendRequestHandlerComponents) {
    this.components = components
    this.log = components.logger.forComponent('conf-chat:chat:friends:request')
  }

  async handle ({ envelope: env, sender, seen }: FriendEnvelope): Promise<void> {
    const { state, keys, deliver, emit } = this.components
    const from = env.from
    const body = openEnvelope(env, keys, friendRequestBodySchema)
    const request: FriendRequestEntry = {
      username: from, keyId: sender.keyId, signPublic: sender.signPublic, boxPublic: sender.boxPublic, at: env.sentAt,
      ...(body.note != null ? { note: body.note } : {})
    }
    if (findFriend(state.state, from, sender.signPublic) != null || state.state.outgoing.some(e => e.username === from)) {
      // they ask while we are friends (they lost or dropped us) or while we asked them: both want it
      const wasFriend = findFriend(state.state, from) != null
      becomeFriends(this.components, request, seen)
      // not tied to this envelope's handling (nor its signal): the outbox keeps and retries it
      deliver(FRIEND_ACCEPT_KIND, {}, sender).catch(err => { this.log('accept to %s failed: %s', from, err.message) })
      if (!wasFriend) emit('friend:accepted', { username: from })
      return
    }
    const { now, limits } = this.components
    const waiting = state.state.incoming.filter(e => e.username !== from && e.at >= now() - limits.ttlMs).length
    if (waiting >= limits.maxIncoming) {
      this.log('refused a friend request from %s: %d requests wait already', from, waiting)
      throw new RefusalError('full', `${waiting} friend requests wait for an answer`)
    }
    void state.update(s => { pruneStrangers(now(), limits.ttlMs)(s); s.incoming = [...without(s.incoming, from), request]; seen(s) })
    emit('friend:request', { username: from, at: env.sentAt, ...(body.note != null ? { note: body.note } : {}) })
  }
}
