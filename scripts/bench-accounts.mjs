#!/usr/bin/env node
// Accounts figures: login time split into the key derivation (Argon2id) and bcrypt, both
// deliberate, and network (the user record's lookup, then the session's start: presence
// read and publish, mailbox), in a network of a supernode and N peer processes (default
// 10), each user logging in on another peer than the one it registered on; and how long
// after a logout another peer reads the user as offline. Prints a table, writes JSON
// under results/.
//
//   npm run bench:accounts -- [--peers 10] [--users 10]
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { BenchRun, RESULTS, ROOT, fmt, stats } from './lib/bench.mjs'

const { values: flags } = parseArgs({
  options: {
    peers: { type: 'string', default: '10' },
    users: { type: 'string', default: '10' },
    out: { type: 'string', default: RESULTS },
    help: { type: 'boolean', default: false }
  }
})
if (flags.help) {
  console.log('usage: node scripts/bench-accounts.mjs [--peers 10] [--users 10 (at most --peers)] [--out results/]')
  process.exit(0)
}
const PEERS = Number(flags.peers)
const USERS = Math.min(Number(flags.users), PEERS)
if (!(PEERS >= 2) || !(USERS >= 1)) {
  console.error('--peers must be at least 2 and --users at least 1')
  process.exit(2)
}

const run = new BenchRun('accounts', { workerScript: join(ROOT, 'scripts', 'bench-accounts-worker.mjs') })

async function main () {
  console.log(`bench-accounts: supernode + ${PEERS} peer processes, ${USERS} users`)
  const supernode = await run.startWorker('supernode', 'supernode')
  const bootstrap = [supernode.info.addrs[0]]
  const peers = []
  for (let i = 0; i < PEERS; i++) peers.push((await run.startWorker(`peer-${i}`, 'node', { bootstrap })).w)
  // default settings (Argon2id 3 x 128 MiB, bcrypt cost 10): the figures are the product's
  const users = Array.from({ length: USERS }, (_, i) => ({ username: `bench${i}`, password: `violet kettle ${i}`, fullName: `Bench ${i}` }))
  for (let i = 0; i < USERS; i++) {
    await peers[i].call('register', users[i])
    await peers[i].call('logout')
  }
  // log each user in on another peer than the one that registered it
  const logins = []
  for (let i = 0; i < USERS; i++) {
    const { totalMs, networkMs, bcryptMs, kdfMs, upgradeMs } = await peers[(i + 1) % PEERS].request('login', { username: users[i].username, password: users[i].password })
    logins.push({ totalMs, networkMs, bcryptMs, kdfMs, sessionMs: totalMs - networkMs - bcryptMs - kdfMs - upgradeMs })
  }
  // presence: user i logs out on peer i+1; peer i+2 polls until it reads offline
  const presence = []
  for (let i = 0; i < USERS; i++) {
    const watcher = peers[(i + 2) % PEERS]
    const seen = watcher.request('waitOffline', { username: users[i].username, timeoutMs: 120_000 })
    const t = Date.now()
    await peers[(i + 1) % PEERS].request('logout')
    presence.push((await seen).at - t)
  }
  const col = k => stats(logins.map(l => l[k]), 1)
  const result = {
    peers: PEERS,
    users: USERS,
    loginMs: {
      total: col('totalMs'),
      bcrypt: col('bcryptMs'),
      kdf: col('kdfMs'),
      network: col('networkMs'),
      session: col('sessionMs')
    },
    logoutSeenOfflineMs: stats(presence, 1),
    samples: { logins, presenceMs: presence },
    notes: {
      network: 'the user record lookup in the DHT (before the password is checked)',
      session: 'login total minus lookup, Argon2id and bcrypt (and an upgrade of the record, none here): the session start (presence read, private state (friends, conferences) read from the DHT, presence publish); the mailbox is fetched after login returns'
    }
  }
  const rows = [
    ['login total', result.loginMs.total],
    ['  Argon2id (3 x 128 MiB)', result.loginMs.kdf],
    ['  bcrypt check (cost 10)', result.loginMs.bcrypt],
    ['  network: user record lookup', result.loginMs.network],
    ['  network: session start', result.loginMs.session],
    ['logout -> offline seen elsewhere', result.logoutSeenOfflineMs]
  ]
  console.log('')
  console.log('what'.padEnd(34), 'n'.padStart(4), 'median ms'.padStart(10), 'p95 ms'.padStart(10))
  for (const [what, s] of rows) console.log(what.padEnd(34), String(s.n).padStart(4), fmt(s.median, 0).padStart(10), fmt(s.p95, 0).padStart(10))
  console.log('(session start = total - lookup - Argon2id - bcrypt: presence read, private state read, presence publish)')
  console.log(run.machineLine())
  const file = await run.writeResult(flags.out, result)
  console.log(`wrote ${file}`)
}

await run.run(main)
