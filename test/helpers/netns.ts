/**
 * Test hosts in network namespaces of our own: one namespace per host, each joined by a
 * veth pair to a bridge that lives in a "switch" namespace, so no address of the test
 * network ever appears in the machine's own namespace. Needs root and iproute2.
 *
 * Names carry the test process's pid (`cc<pid in base 36>...`): two runs never share a
 * namespace, and a run deletes what an earlier process with the same pid left behind.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { listNamespaces } from '../../scripts/lib/nat-network.mjs'

/** Every namespace `ip netns list` shows (names only). */
export { listNamespaces }

export interface TestHost {
  name: string
  /** The namespace name. */
  ns: string
  /** The host's address on the test network. */
  ip: string
  /** The switch-side end of its veth pair (down = the host is cut off). */
  port: string
}

function ip (...args: string[]): void {
  try {
    execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' })
  } catch (err: any) {
    throw new Error(`ip ${args.join(' ')} failed: ${String(err.stderr ?? err.message).trim()}`)
  }
}

/**
 * Undefined when this machine lets us build the test network (Linux, root, iproute2, veth
 * and bridge devices, `ip netns exec`); otherwise why not, for the skip message.
 */
export function netnsUnavailable (): string | undefined {
  if (process.platform !== 'linux') return `network namespaces need Linux (this is ${process.platform})`
  if (process.getuid?.() !== 0) return `network namespaces need root (uid ${process.getuid?.()})`
  const probe = `ccprobe${process.pid.toString(36)}`
  const steps: string[][] = [
    ['netns', 'add', probe],
    ['-n', probe, 'link', 'add', 'ccbr', 'type', 'bridge'],
    ['-n', probe, 'link', 'add', 'ccv0', 'type', 'veth', 'peer', 'name', 'ccv1'],
    ['netns', 'exec', probe, 'true']
  ]
  spawnSync('ip', ['netns', 'del', probe])
  try {
    for (const args of steps) {
      const r = spawnSync('ip', args, { encoding: 'utf8' })
      if (r.error != null) return `cannot run \`ip\` (install iproute2): ${r.error.message}`
      if (r.status !== 0) return `\`ip ${args.join(' ')}\` failed: ${r.stderr.trim() || `exit ${r.status}`}`
    }
    return undefined
  } finally {
    spawnSync('ip', ['netns', 'del', probe])
  }
}

/** Namespaces of live TestHosts, deleted if the process exits without cleanup(). */
const live = new Set<TestHosts>()
let exitHook = false

export class TestHosts {
  readonly hosts: TestHost[] = []
  private readonly tag: string
  private readonly switchNs: string
  private readonly subnet: number
  private readonly made: string[] = []

  constructor () {
    // the whole pid: a pid modulo something could collide with another run's
    this.tag = process.pid.toString(36)
    this.switchNs = `cc${this.tag}sw`
    // any subnet works (each switch is its own network); vary it to tell runs apart in logs
    this.subnet = 100 + (process.pid % 100)
  }

  /** The namespaces this object creates or created (for checks that nothing is left). */
  get namespaces (): string[] {
    return [this.switchNs, ...this.hosts.map(h => h.ns)]
  }

  /** Create the switch and `names.length` hosts at 10.213.<subnet>.<1..n>/24. */
  create (names: string[]): TestHost[] {
    if (this.made.length > 0) throw new Error('test hosts already created')
    if (names.length === 0 || names.length > 250) throw new Error('1 to 250 hosts')
    if (!exitHook) {
      exitHook = true
      process.once('exit', () => { for (const t of live) t.cleanup() })
    }
    live.add(this)
    const planned = names.map((name, i): TestHost =>
      ({ name, ns: `cc${this.tag}h${i}`, ip: `10.213.${this.subnet}.${i + 1}`, port: `p${i}` }))
    // leftovers of an earlier process that had our pid and could not clean up
    const existing = new Set(listNamespaces())
    for (const ns of [this.switchNs, ...planned.map(h => h.ns)]) {
      if (existing.has(ns)) spawnSync('ip', ['netns', 'del', ns])
    }
    this.add(this.switchNs)
    ip('-n', this.switchNs, 'link', 'set', 'lo', 'up')
    ip('-n', this.switchNs, 'link', 'add', 'br0', 'type', 'bridge')
    ip('-n', this.switchNs, 'link', 'set', 'br0', 'up')
    for (const host of planned) {
      this.add(host.ns)
      this.hosts.push(host)
      ip('-n', host.ns, 'link', 'set', 'lo', 'up')
      // created inside the host, its peer end moved to the switch: nothing in our namespace
      ip('-n', host.ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', host.port, 'netns', this.switchNs)
      ip('-n', host.ns, 'addr', 'add', `${host.ip}/24`, 'dev', 'eth0')
      ip('-n', host.ns, 'link', 'set', 'eth0', 'up')
      ip('-n', this.switchNs, 'link', 'set', host.port, 'master', 'br0')
      ip('-n', this.switchNs, 'link', 'set', host.port, 'up')
    }
    return this.hosts
  }

  host (name: string): TestHost {
    const h = this.hosts.find(h => h.name === name)
    if (h == null) throw new Error(`no test host ${name}`)
    return h
  }

  /** The command that runs a program inside the host's namespace (`ip netns exec` execs it: same pid). */
  wrapper (name: string): string[] {
    return ['ip', 'netns', 'exec', this.host(name).ns]
  }

  /** Cut the host off the network (a partition: its packets go nowhere, nothing is refused). */
  cut (name: string): void { ip('-n', this.switchNs, 'link', 'set', this.host(name).port, 'down') }

  /** Connect a cut host again. */
  restore (name: string): void { ip('-n', this.switchNs, 'link', 'set', this.host(name).port, 'up') }

  /** Delete every namespace we made (their veths and the bridge go with them). Safe to call twice. */
  cleanup (): void {
    for (const ns of this.made.splice(0).reverse()) spawnSync('ip', ['netns', 'del', ns])
    this.hosts.length = 0
    live.delete(this)
  }

  private add (ns: string): void {
    // recorded first: a namespace that was half made is deleted too
    this.made.push(ns)
    ip('netns', 'add', ns)
  }
}
