// One peer of scripts/bench-conference.mjs, in a process of its own: the supernode (a
// plain DHT peer) or one user's ChatNode; see scripts/lib/bench-worker.mjs. Arrival times
// are taken here, on the shared wall clock (performance.timeOrigin + now()), so IPC never
// sits inside a measured interval.
import { self, serve, startPeer, wallNow } from './lib/bench-worker.mjs'

/** When each conference message (by id) was shown to this user. */
const arrivals = new Map()
const waiters = new Map()

function recordArrivals (node) {
  node.addEventListener('conference:message', evt => {
    arrivals.set(evt.detail.id, wallNow())
    waiters.get(evt.detail.id)?.()
  })
}

/** Accept a friend request once it has arrived (live, or in the mailbox: looked at every 2 s, not at the 60 s poll). */
async function acceptWhenAsked ({ from, timeoutMs }) {
  const deadline = Date.now() + timeoutMs
  for (let i = 1; Date.now() < deadline; i++) {
    if ((await self.node.friendRequests()).incoming.some(r => r.username === from)) {
      await self.node.acceptFriend(from)
      return {}
    }
    if (i % 20 === 0) await self.node.checkMailbox().catch(() => {})
    await new Promise(resolve => setTimeout(resolve, 100))
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
    await new Promise(resolve => setTimeout(resolve, 500))
  }
  throw new Error(`not friends with all of ${names.length} within ${timeoutMs} ms`)
}

async function waitConference ({ conference, timeoutMs }) {
  const deadline = Date.now() + timeoutMs
  for (let i = 1; Date.now() < deadline; i++) {
    if ((await self.node.conferences()).some(c => c.id === conference)) return {}
    if (i % 20 === 0) await self.node.checkMailbox().catch(() => {})
    await new Promise(resolve => setTimeout(resolve, 100))
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

serve({
  start: msg => startPeer(msg, { joinTimeoutMs: 120_000, setup: recordArrivals }),
  acceptWhenAsked,
  waitFriends,
  waitConference,
  sendTimed,
  arrival
})
