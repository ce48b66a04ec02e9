/**
 * The account layer: accounts in the DHT (register, login from any peer, password
 * change), verified profiles, presence, the user directory, the private state, the
 * logged-in session and the check every inbound envelope passes.
 */
export { Accounts, profileOf, type AccountsInit, type AccountsComponents, type Account, type UserProfile, type LoginTimings } from './accounts.js'
export { Profiles, type ProfilesComponents } from './profiles.js'
export { Presence, type PresenceInit, type PresenceComponents, type PresenceInfo, type PresenceOwner } from './presence.js'
export { Directory, type DirectoryComponents, type DirectorySets, type DirectoryUser } from './directory.js'
export { PrivateStateStore, DEFAULT_STATE_RETRY_MS, type PrivateStateInit, type PrivateStateComponents, type StateOwner, type StateMutation } from './private-state.js'
export { SessionKeeper, TAKEOVER_KIND, TAKEOVER_HANDOVER_MS, TAKEOVER_ACK_MS, type SessionKeeperComponents, type SessionHooks, type PeerInfo } from './session-keeper.js'
export { checkInbound, type InboundCheckComponents } from './inbound.js'
export type { Session, SessionEndReason, EnvelopeContext, EnvelopeKindHandler } from './session.js'
