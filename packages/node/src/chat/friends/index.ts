/**
 * Friends of the logged-in account: requests, answers and removals, kept in the
 * account's private state and told to the other side in signed envelopes.
 */
export { Friends } from './friends.js'
export { DEFAULT_REQUEST_LIMITS } from './friend-state.js'
export type {
  FriendsComponents, FriendEvents, FriendActionResult, FriendInfo, FriendRequests, FriendRequestInfo,
  FriendState, DeliverFriendEnvelope, FriendEmit, OnFriend, RequestLimits
} from './types.js'
