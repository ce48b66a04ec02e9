/** The part of the core library the terminal UI uses (a test passes a fake of it). */
import type { ChatNode, ChatPeer } from '@conf-chat/node'

/** The ChatNode calls and events the screens use. */
export type TuiNode = Pick<ChatNode,
'login' | 'register' | 'logout' | 'changePassword' | 'whoami' | 'users' | 'friends' | 'friendRequests' |
'addFriend' | 'acceptFriend' | 'rejectFriend' | 'removeFriend' | 'sendMessage' | 'history' | 'markRead' | 'readReceipts' | 'presenceOf' |
'conferences' | 'createConference' | 'conferenceMembers' | 'sendConferenceMessage' | 'inviteToConference' |
'leaveConference' | 'conferenceHistory' | 'markConferenceRead' |
'addEventListener' | 'removeEventListener' | 'session'
> & {
  peer: Pick<ChatPeer, 'joined' | 'waitJoined'>
}
