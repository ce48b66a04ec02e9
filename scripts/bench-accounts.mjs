// Accounts figures (issue 3): login time split into bcrypt, KDF (both deliberate) and
// network, in a network of a supernode and N peer processes (default 10); and how long
// after a logout another peer reads the user as offline. Prints a table, writes JSON
// under results/.  Usage: node scripts/bench-accounts.mjs [--peers 10] [--users 10]
import { fork } from 'node:child_process'
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir, loadavg } from 'node:os'
import { join, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const arg = (name, def) => { const i = process.argv.indexOf(`--${name}`); return i > 0 ? Number(process.argv[i + 1]) : def }
const PEERS = arg('peers', 10)
const USERS = Math.min(arg('users', 10), PEERS)

class Worker {
  constructor () {
    this.child = fork(join(here, 'bench-accounts-worker.mjs'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    this.pending = new Map()
    this.next = 0
    this.child.on('message', msg => {
      const p = this.pending.get(msg.id)
      this.pending.delete(msg.id)
      if (msg.error != null) p?.reject(new Error(msg.error)); else p?.resolve(msg)
    })
  }

  call (msg) {
    const id = ++this.next
    return new Promise((resolve, reject) => { this.pending.set(id, { resolve, reject }); this.child.send({ ...msg, id }) })
  }

  stop () { if (this.child.connected) this.child.send({ type: 'stop' }) }
}

const median = xs => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor((s.length - 1) / 2)] }
const p95 = xs => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.ceil(0.95 * s.length) - 1)] }

const dirs = []
const workers = []
try {
  const dir = async () => { const d = await mkdtemp(join(tmpdir(), 'conf-chat-bench-')); dirs.push(d); return d }
  const supernode = new Worker(); workers.push(supernode)
  const { addrs } = await supernode.call({ type: 'start', role: 'supernode', init: { dataDir: await dir(), host: '127.0.0.1', port: 0 } })
  const peers = []
  for (let i = 0; i < PEERS; i++) {
    const w = new Worker(); workers.push(w)
    await w.call({ type: 'start', role: 'node', init: { dataDir: await dir(), host: '127.0.0.1', port: 0, bootstrap: [addrs[0]] } })
    peers.push(w)
  }
  const users = Array.from({ length: USERS }, (_, i) => ({ username: `bench${i}`, password: `password-${i}`, fullName: `Bench ${i}` }))
  for (let i = 0; i < USERS; i++) {
    await peers[i].call({ type: 'register', input: users[i] })
    await peers[i].call({ type: 'logout' })
  }
  // log each user in on another peer than the one that registered it
  const logins = []
  for (let i = 0; i < USERS; i++) {
    const at = peers[(i + 1) % PEERS]
    logins.push(await at.call({ type: 'login', username: users[i].username, password: users[i].password }))
  }
  // presence: user i logs out on peer i+1; peer i+2 polls until it reads offline
  const presence = []
  for (let i = 0; i < USERS; i++) {
    const watcher = peers[(i + 2) % PEERS]
    const seen = watcher.call({ type: 'wait-offline', username: users[i].username })
    const t = Date.now()
    await peers[(i + 1) % PEERS].call({ type: 'logout' })
    presence.push((await seen).at - t)
  }
  const col = k => logins.map(l => l[k])
  const rows = [
    ['login total', median(col('totalMs')), p95(col('totalMs'))],
    ['  network (user record)', median(col('networkMs')), p95(col('networkMs'))],
    ['  bcrypt check (cost 10)', median(col('bcryptMs')), p95(col('bcryptMs'))],
    ['  key decryption (scrypt)', median(col('kdfMs')), p95(col('kdfMs'))],
    ['logout → offline seen elsewhere', median(presence), p95(presence)]
  ]
  console.log(`accounts, ${PEERS} peer processes + supernode, ${USERS} users (load ${loadavg()[0].toFixed(1)})`)
  console.log('what'.padEnd(34), 'median ms'.padStart(10), 'p95 ms'.padStart(10))
  for (const [what, med, p] of rows) console.log(what.padEnd(34), med.toFixed(0).padStart(10), p.toFixed(0).padStart(10))
  await mkdir('results', { recursive: true })
  const file = join('results', `bench-accounts-${new Date().toISOString().replace(/[:.]/g, '-')}.json`)
  await writeFile(file, JSON.stringify({ peers: PEERS, users: USERS, loadavg: loadavg(), logins, presenceMs: presence, rows }, null, 2))
  console.log(`written ${file}`)
} finally {
  for (const w of workers) w.stop()
  await new Promise(resolve => setTimeout(resolve, 1500))
  for (const w of workers) if (w.child.exitCode == null) w.child.kill('SIGKILL')
  await Promise.all(dirs.map(d => rm(d, { recursive: true, force: true })))
}
