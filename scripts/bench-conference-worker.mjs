// One peer of scripts/bench-conference.mjs, in a process of its own: the supernode (a
// plain DHT peer) or one user's ChatNode; see scripts/lib/bench-worker.mjs. The user's
// commands (friendships, conference, timed sends and arrivals) are in
// scripts/lib/user-worker.mjs.
import { serve, startPeer } from './lib/bench-worker.mjs'
import { userCommands, watchUser } from './lib/user-worker.mjs'

serve({
  start: msg => startPeer(msg, { joinTimeoutMs: 120_000, setup: watchUser }),
  ...userCommands
})
