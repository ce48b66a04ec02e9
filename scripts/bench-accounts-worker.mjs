// One peer of the accounts benchmark (scripts/bench-accounts.mjs), in its own process: a
// supernode (ChatPeer) or a ChatNode; see scripts/lib/bench-worker.mjs.
import { self, serve, sleep } from './lib/bench-worker.mjs'

serve({
  /** Log in, timed here: the total, and the account layer's split (record lookup, Argon2id, bcrypt). */
  login: async ({ username, password }) => {
    const t = performance.now()
    const { timings } = await self.node.login(username, password)
    return { totalMs: performance.now() - t, ...timings }
  },
  logout: async () => {
    await self.node.logout()
    return { at: Date.now() }
  },
  /** Poll the user's presence record until it says offline; when it first did. */
  waitOffline: async ({ username, timeoutMs }) => {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const p = await self.node.presenceOf(username)
      if (p != null && !p.online) return { at: Date.now() }
      if (Date.now() > deadline) throw new Error(`${username} still not seen offline after ${timeoutMs} ms`)
      await sleep(20)
    }
  }
})
