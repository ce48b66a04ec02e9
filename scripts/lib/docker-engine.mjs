/**
 * A Docker engine of our own for the compose test and bench:docker: `dockerd` started
 * with its data root, exec root and socket in a temp dir (nothing of another engine on
 * the machine is touched) and no default bridge (the compose network is a bridge of its
 * own; builds use the host's network to reach the npm registry). It is stopped by its
 * pid, its temp dir removed, and the firewall rules and IP forwarding it set up are put
 * back as they were (iptables-save before, iptables-restore after). Then the demo's
 * images and the compose project on it.
 */
import { spawn, spawnSync } from 'node:child_process'
import { openSync, closeSync, readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const ROOT = fileURLToPath(new URL('../..', import.meta.url))
/** The peer services of docker-compose.yml. */
export const PEERS = ['alice', 'bob', 'carol']

const has = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0

/** Why no engine can run here (undefined: it can). */
export function dockerUnavailable () {
  if (process.platform !== 'linux') return 'Docker engine tests run on Linux only'
  if (process.getuid?.() !== 0) return 'dockerd and debootstrap need root'
  for (const cmd of ['dockerd', 'docker', 'docker-compose', 'debootstrap']) {
    if (!has(cmd)) return `${cmd} is not installed (Debian: apt-get install docker.io docker-compose debootstrap)`
  }
  return undefined
}

const sleep = (ms) => new Promise(resolve => setTimeout(resolve, ms))

export class DockerEngine {
  constructor (dir, child) {
    this.dir = dir
    this.child = child
    this.pid = child.pid
    this.socket = join(dir, 'docker.sock')
    this.env = { ...process.env, DOCKER_HOST: `unix://${this.socket}` }
    this.exited = new Promise(resolve => child.once('exit', resolve))
    /** Commands run() started that have not ended. */
    this.running = new Set()
  }

  /** Start dockerd; resolves once it answers. */
  static async start () {
    const firewall = saveFirewall()
    const dir = await mkdtemp(join(tmpdir(), 'conf-chat-docker-'))
    const log = openSync(join(dir, 'dockerd.log'), 'a')
    const child = spawn('dockerd', [
      '--data-root', join(dir, 'data'), '--exec-root', join(dir, 'exec'),
      '-H', `unix://${join(dir, 'docker.sock')}`, '--pidfile', join(dir, 'dockerd.pid'),
      '--bridge', 'none'
    ], { stdio: ['ignore', log, log] })
    closeSync(log)
    const engine = new DockerEngine(dir, child)
    engine.firewall = firewall
    try {
      const deadline = Date.now() + 60_000
      for (;;) {
        if (child.exitCode != null) throw new Error(`dockerd exited with ${child.exitCode}`)
        if (await engine.run('docker', ['version', '--format', '{{.Server.Version}}']).then(() => true, () => false)) break
        if (Date.now() > deadline) throw new Error('dockerd did not answer within 60 s')
        await sleep(250)
      }
    } catch (err) {
      const tail = engine.log().split('\n').slice(-15).join('\n')
      await engine.stop()
      throw new Error(`${err.message}; its log ends:\n${tail}`)
    }
    return engine
  }

  log () {
    try { return readFileSync(join(this.dir, 'dockerd.log'), 'utf8') } catch { return '' }
  }

  /**
   * Run a command against this engine; resolves with its stdout, rejects with its stderr.
   * Each runs in a process group of its own, so that `stop()` can end it with whatever it
   * started (debootstrap under the base-image script, say).
   */
  async run (cmd, args, options = {}) {
    return await new Promise((resolve, reject) => {
      const child = spawn(cmd, args, { env: { ...this.env, ...options.env }, cwd: options.cwd ?? ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
      this.running.add(child)
      const out = []
      const err = []
      child.stdout.on('data', d => out.push(d))
      child.stderr.on('data', d => err.push(d))
      const timer = setTimeout(() => { killGroup(child, 'SIGKILL') }, options.timeoutMs ?? 600_000)
      child.once('error', e => { clearTimeout(timer); this.running.delete(child); reject(e) })
      child.once('close', (code, signal) => {
        clearTimeout(timer)
        this.running.delete(child)
        const stdout = Buffer.concat(out).toString().trim()
        const stderr = Buffer.concat(err).toString().trim()
        if (code === 0) resolve(stdout)
        else reject(new Error(`${cmd} ${args.join(' ')} failed (${code ?? signal}): ${stderr.split('\n').slice(-20).join('\n')}`))
      })
    })
  }

  /** Stop dockerd by its pid (containers still running are stopped with it) and remove its dir. */
  async stop () {
    await Promise.all([...this.running].map(async child => {
      const closed = new Promise(resolve => child.once('close', resolve))
      killGroup(child, 'SIGTERM')
      if (await Promise.race([closed.then(() => true), sleep(10_000).then(() => false)]) === false) killGroup(child, 'SIGKILL')
    }))
    if (this.child.exitCode == null && this.child.signalCode == null) {
      this.child.kill('SIGTERM')
      const done = await Promise.race([this.exited.then(() => true), sleep(30_000).then(() => false)])
      if (!done) { this.child.kill('SIGKILL'); await this.exited }
    }
    // mounts dockerd left (it unmounts its own on a clean stop): lazily, so the dir can go
    const mounts = readFileSync('/proc/mounts', 'utf8').split('\n').map(l => l.split(' ')[1]).filter(m => m?.startsWith(this.dir))
    for (const m of mounts.reverse()) spawnSync('umount', ['-l', m])
    await rm(this.dir, { recursive: true, force: true })
    restoreFirewall(this.firewall)
  }
}

/** Signal the process group a run() child leads (its pid is the group's id). */
function killGroup (child, signal) {
  try { process.kill(-child.pid, signal) } catch {}
}

/** The host's iptables rules and IP forwarding, which dockerd changes, to put back after it. */
function saveFirewall () {
  const rules = spawnSync('iptables-save', [], { encoding: 'utf8' })
  let forward
  try { forward = readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim() } catch {}
  return { rules: rules.status === 0 ? rules.stdout : undefined, forward }
}

/** The built-in chains of the tables dockerd writes to, all empty, accepting. */
const EMPTY_TABLES = {
  filter: ['INPUT', 'FORWARD', 'OUTPUT'],
  nat: ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING']
}

function restoreFirewall (saved) {
  if (saved?.rules != null) {
    // a table that had nothing in it before is not in the saved rules: restore it as empty
    let rules = saved.rules
    for (const [table, chains] of Object.entries(EMPTY_TABLES)) {
      if (!rules.includes(`*${table}\n`)) rules += `*${table}\n${chains.map(c => `:${c} ACCEPT [0:0]`).join('\n')}\nCOMMIT\n`
    }
    spawnSync('iptables-restore', [], { input: rules })
  }
  if (saved?.forward != null) spawnSync('sysctl', ['-q', '-w', `net.ipv4.ip_forward=${saved.forward}`])
}

/** Build the stand-in for the Dockerfile's base image (scripts/docker-base-image.sh). */
export async function buildBaseImage (engine, image) {
  const work = join(engine.dir, 'base')
  await engine.run('bash', [join(ROOT, 'scripts/docker-base-image.sh'), image, work], { timeoutMs: 900_000 })
  await rm(work, { recursive: true, force: true })
}

/** Build conf-chat:latest from the Dockerfile on `base`; the build reaches the registry through the host's network. */
export async function buildImage (engine, base, tag = 'conf-chat:latest') {
  await engine.run('docker', ['build', '--network', 'host', '--build-arg', `BASE_IMAGE=${base}`, '-t', tag, '.'], { timeoutMs: 1_200_000 })
  return Number(await engine.run('docker', ['image', 'inspect', '--format', '{{.Size}}', tag]))
}

/** docker-compose (v1, as Debian has it) on the project's docker-compose.yml, as project `name`. */
export class ComposeProject {
  constructor (engine, name) {
    this.engine = engine
    this.name = name
  }

  async compose (...args) {
    return await this.engine.run('docker-compose', ['-f', join(ROOT, 'docker-compose.yml'), '-p', this.name, ...args])
  }

  /** The id of the service's (first) container. */
  async container (service) {
    const id = await this.compose('ps', '-q', service)
    if (id === '') throw new Error(`no container of ${service}`)
    return id.split('\n')[0]
  }

  /** The first word of the program's status file (starting, joined...), or undefined if none. */
  async state (service) {
    try {
      return (await this.engine.run('docker', ['exec', await this.container(service), 'sh', '-c', 'cat "$CONF_CHAT_STATUS_FILE"'])).split(' ')[0]
    } catch {
      return undefined
    }
  }

  /**
   * Wait until every service's program says `joined`; resolves with the ms each took from
   * `since` (a Date.now()) and from its container's start, read off the timestamp Docker
   * gave the program's "joined" line in its log (the first after `since`), so that the
   * polling does not blur it. (docker-compose v1 starts the containers one after another:
   * the last peer's container starts seconds after `up`.)
   */
  async joined (services, since = Date.now(), timeoutMs = 120_000) {
    const deadline = Date.now() + timeoutMs
    let waiting = services
    while (waiting.length > 0) {
      const states = await Promise.all(waiting.map(async s => await this.state(s)))
      waiting = waiting.filter((_, i) => states[i] !== 'joined')
      if (waiting.length === 0) break
      if (Date.now() > deadline) throw new Error(`not joined within ${timeoutMs} ms: ${waiting.join(', ')}`)
      await sleep(100)
    }
    const at = {}
    for (const s of services) {
      const id = await this.container(s)
      const log = await this.engine.run('docker', ['logs', '--timestamps', id])
      const line = log.split('\n').map(l => ({ t: Date.parse(l.slice(0, l.indexOf(' '))), text: l }))
        .find(({ t, text }) => t >= since && /[Jj]oined the network via|^\S+ supernode peer id:/.test(text))
      if (line == null) throw new Error(`${s} says it joined but its log has no line for it`)
      const started = Date.parse(await this.engine.run('docker', ['inspect', '--format', '{{.State.StartedAt}}', id]))
      at[s] = { ms: line.t - since, fromContainerStartMs: line.t - started }
    }
    return at
  }

  /** Bytes the container's log holds. */
  async logBytes (service) {
    return (await this.engine.run('docker', ['logs', await this.container(service)]).catch(err => err.message)).length
  }

  /** CPU time the container has used so far, in ms (its cgroup's cpuacct, v1 or v2). */
  async cpuMs (service) {
    const id = await this.engine.run('docker', ['inspect', '--format', '{{.Id}}', await this.container(service)])
    for (const file of [`/sys/fs/cgroup/cpuacct/docker/${id}/cpuacct.usage`, `/sys/fs/cgroup/cpu,cpuacct/docker/${id}/cpuacct.usage`]) {
      try { return Number(readFileSync(file, 'utf8')) / 1e6 } catch {}
    }
    for (const file of [`/sys/fs/cgroup/system.slice/docker-${id}.scope/cpu.stat`, `/sys/fs/cgroup/docker/${id}/cpu.stat`]) {
      try { return Number(readFileSync(file, 'utf8').match(/usage_usec (\d+)/)[1]) / 1000 } catch {}
    }
    throw new Error(`no cgroup CPU account found for ${service}`)
  }

  /** Stop and remove the containers, the network and the volumes (`down -v`). */
  async down () {
    return await this.compose('down', '-v', '--timeout', '20')
  }
}
