/** The friend-envelope handlers, one per kind, in a map keyed by kind. */
import { FRIEND_REQUEST_KIND, FRIEND_ACCEPT_KIND, FRIEND_REJECT_KIND, FRIEND_REMOVE_KIND, type FriendKind } from '@conf-chat/protocol'
import { FriendRequestHandler } from './friend-request.js'
import { FriendAcceptHandler } from './friend-accept.js'
import { FriendRejectHandler } from './friend-reject.js'
import { FriendRemoveHandler } from './friend-remove.js'
import type { FriendEnvelopeHandler, FriendHandlerComponents } from './handler.js'

export type { FriendEnvelope, FriendEnvelopeHandler, FriendHandlerComponents } from './handler.js'

export function friendHandlers (components: FriendHandlerComponents): ReadonlyMap<string, FriendEnvelopeHandler> {
  const handlers: Record<FriendKind, FriendEnvelopeHandler> = {
    [FRIEND_REQUEST_KIND]: new FriendRequestHandler(components),
    [FRIEND_ACCEPT_KIND]: new FriendAcceptHandler(components),
    [FRIEND_REJECT_KIND]: new FriendRejectHandler(components),
    [FRIEND_REMOVE_KIND]: new FriendRemoveHandler(components)
  }
  return new Map(Object.entries(handlers))
}
