// The parent side of a conference benchmark (scripts/bench-conference.mjs,
// scripts/bench-scale.mjs): users (workers serving ./user-worker.mjs's commands) register,
// the first befriends the others and makes a conference of all, then sends messages one
// after another, each timed until every other member has it shown.
import { sleep } from './bench.mjs'

export const PASSWORD = 'bench violet kettle'

/** Setup steps on a loaded machine: a record just written may not be found at once; try again a few times. */
export async function retry (what, fn, { attempts = 5, log = console.log } = {}) {
  for (let i = 1; ; i++) {
    try {
      return await fn()
    } catch (err) {
      if (i >= attempts) throw err
      log(`${what}: ${err.message}; trying again`)
      await sleep(2_000)
    }
  }
}

/** Run `fn` over `items`, `limit` at a time (setup only: registrations, friendships). */
export async function inBatches (items, limit, fn) {
  for (let i = 0; i < items.length; i += limit) await Promise.all(items.slice(i, i + limit).map((x, j) => fn(x, i + j)))
}

/**
 * Register every user (worker name = username), make the first the owner, befriend it
 * with every other, and make a conference of all. Returns { owner, members, conference }.
 */
export async function makeConference (users, { timeoutMs = 120_000, log = console.log } = {}) {
  await inBatches(users, 4, (w, i) => w.call('register', { username: w.name, password: PASSWORD, fullName: `Member ${i}` }))
  const [owner, ...members] = users
  await inBatches(members, 5, async w => {
    const r = await retry(`friend request to ${w.name}`, () => owner.call('addFriend', w.name), { log })
    if (r.delivery.status !== 'delivered') log(`friend request to ${w.name}: ${JSON.stringify(r.delivery)}`)
    await w.request('acceptWhenAsked', { from: owner.name, timeoutMs })
  })
  await owner.request('waitFriends', { names: members.map(w => w.name), timeoutMs })
  const created = await owner.call('createConference', 'bench', members.map(w => w.name))
  const conference = created.conference.id
  await Promise.all(members.map(w => w.request('waitConference', { conference, timeoutMs })))
  return { owner, members, conference }
}

/**
 * `warmup + sends` conference messages from `owner`, one after another with `gapMs`
 * between them. For each measured send: the time from the conf-send call until every
 * member has it shown (the latest arrival), until each member has it shown (one figure
 * per member), and until conf-send resolves (every member's ack); deliveries by kind
 * (`live`, or the mailbox fallback and its reason) and arrivals missing.
 */
export async function measureConference (owner, members, conference, { sends = 30, warmup = 3, gapMs = 200, textChars = 64, timeoutMs = 120_000, log = console.log } = {}) {
  const allShownMs = []
  const eachShownMs = []
  const ackMs = []
  const where = {}
  let missing = 0
  const text = i => `bench ${String(i).padStart(4, '0')} `.padEnd(textChars, 'x')
  for (let i = 0; i < warmup + sends; i++) {
    const sent = await owner.request('sendTimed', { conference, text: text(i) })
    // one that went to a mailbox shows at the member's next login or mailbox check, not now
    const live = new Set(sent.live)
    const arrived = await Promise.all(members.map(async w => live.has(w.name) ? await w.request('arrival', { mid: sent.mid, timeoutMs }) : { at: null }))
    const ats = arrived.map(a => a.at).filter(at => at != null)
    const shown = ats.length === members.length ? `${(Math.max(...ats) - sent.startedAt).toFixed(1)} ms` : `${members.length - ats.length} missing`
    log(`${i < warmup ? 'warm-up' : 'send'} ${i + 1}/${warmup + sends}: all shown ${shown}, acks ${sent.ackMs.toFixed(1)} ms, ${JSON.stringify(sent.where)}`)
    if (i >= warmup) {
      missing += members.length - ats.length
      if (ats.length === members.length) allShownMs.push(Math.max(...ats) - sent.startedAt)
      for (const at of ats) eachShownMs.push(at - sent.startedAt)
      ackMs.push(sent.ackMs)
      for (const [k, v] of Object.entries(sent.where)) where[k] = (where[k] ?? 0) + v
    }
    await sleep(gapMs)
  }
  const fallbacks = Object.entries(where).filter(([k]) => k !== 'live').reduce((a, [, v]) => a + v, 0)
  return { allShownMs, eachShownMs, ackMs, where, missing, fallbacks }
}
