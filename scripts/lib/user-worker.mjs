// Worker-side commands for a user's ChatNode in a benchmark process (see ./bench-worker.mjs):
// friendships and a conference made through the product's own calls, conference sends
// timed to every member's screen (arrival times on the machine's shared wall clock, so
// IPC never sits inside a measured interval), and offline messages queued for a user and
// shown after its login. Used by scripts/bench-conference-worker.mjs and
// scripts/bench-scale-worker.mjs; the parent side is ./conference.mjs.
import { self, sleep, wallNow } from './bench-worker.mjs'

/** When each conference message (by id) was shown to this user. */
const arrivals = new Map()
const waiters = new Map()
/** Offline messages shown since the last login through loginAndWait. */
const offline = { shown: 0, lastAt: 0 }

/** Listeners to add to the node before it starts (`startPeer(msg, { setup: watchUser })`). */
export function watchUser (node) {
  node.addEventListener('conference:message', evt => {
    arrivals.set(evt.detail.id, wallNow())
    waiters.get(evt.detail.id)?.()
  })
  node.addEventListener('messages:offline', evt => {
    offline.shown += evt.detail.messages.length
    offline.lastAt = performance.now()
  })
}

/** Accept a friend request once it has arrived (live, or in the mailbox: looked at every 2 s, not at the poll interval). */
async function acceptWhenAsked ({ from, timeoutMs }) {
  const deadline = Date.now() + timeoutMs
  for (let i = 1; Date.now() < deadline; i++) {
    if ((await self.node.friendRequests()).incoming.some(r => r.username === from)) {
      await self.node.acceptFriend(from)
      return {}
    }
    if (i % 20 === 0) await self.node.checkMailbox().catch(() => {})
    await sleep(100)
  }
  throw new Error(`no friend request from ${from} within ${timeoutMs} ms`)
}

/** Wait until all of `names` are friends (their accepts may come through the mailbox). */
async function waitFriends ({ names, timeoutMs }) {
  const deadline = Date.now() + timeoutMs
  for (let i = 1; Date.now() < deadline; i++) {
    const friends = new Set((await self.node.friends()).map(f => f.username))
    if (names.every(n => friends.has(n))) return {}
    if (i % 4 === 0) await self.node.checkMailbox().catch(() => {})
    await sleep(500)
  }
  throw new Error(`not friends with all of ${names.length} within ${timeoutMs} ms`)
}

async function waitConference ({ conference, timeoutMs }) {
  const deadline = Date.now() + timeoutMs
  for (let i = 1; Date.now() < deadline; i++) {
    if ((await self.node.conferences()).some(c => c.id === conference)) return {}
    if (i % 20 === 0) await self.node.checkMailbox().catch(() => {})
    await sleep(100)
  }
  throw new Error(`not invited to ${conference} within ${timeoutMs} ms`)
}

/** conf-send, timed: its start on the wall clock, and until every member's ack (all shown). */
async function sendTimed ({ conference, text }) {
  const startedAt = wallNow()
  const t = performance.now()
  const r = await self.node.sendConferenceMessage(conference, text)
  const ackMs = performance.now() - t
  const where = {}
  for (const d of r.deliveries) {
    const k = d.delivery.status === 'delivered' ? 'live' : `${d.delivery.status}/${d.delivery.where ?? ''} (${d.delivery.reason ?? ''})`
    where[k] = (where[k] ?? 0) + 1
  }
  return { mid: r.id, startedAt, ackMs, where, live: r.deliveries.filter(d => d.delivery.status === 'delivered').map(d => d.username) }
}

/** When message `mid` was shown here (waits for it up to `timeoutMs`). */
async function arrival ({ mid, timeoutMs }) {
  if (!arrivals.has(mid)) {
    await new Promise(resolve => {
      const timer = setTimeout(resolve, timeoutMs)
      waiters.set(mid, () => { clearTimeout(timer); resolve() })
    })
    waiters.delete(mid)
  }
  return { at: arrivals.get(mid) ?? null }
}

/** Queue `n` messages for an offline recipient, `concurrency` at a time. */
async function sendMany ({ to, n, concurrency }) {
  let next = 0
  const statuses = {}
  const t = performance.now()
  const lane = async () => {
    while (next < n) {
      const i = next++
      const r = await self.node.sendMessage(to, `offline ${String(i).padStart(4, '0')} ${'z'.repeat(32)}`)
      const k = `${r.status}/${r.where ?? ''}`
      statuses[k] = (statuses[k] ?? 0) + 1
    }
  }
  await Promise.all(Array.from({ length: concurrency }, lane))
  return { ms: performance.now() - t, statuses }
}

/** Log in and wait until `expected` offline messages were shown (shownMs: null if they were not, in time); `timings`: the login's parts (LoginTimings). */
async function loginAndWait ({ username, password, expected, timeoutMs }) {
  offline.shown = 0
  offline.lastAt = 0
  const t = performance.now()
  const { timings } = await self.node.login(username, password)
  const loginMs = performance.now() - t
  const deadline = Date.now() + timeoutMs
  while (offline.shown < expected && Date.now() < deadline) await sleep(5)
  return { loginMs, timings, shownMs: offline.shown >= expected ? offline.lastAt - t : null, shown: offline.shown }
}

/** The commands above, to give `serve()`. */
export const userCommands = { acceptWhenAsked, waitFriends, waitConference, sendTimed, arrival, sendMany, loginAndWait }
