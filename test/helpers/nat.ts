/**
 * An "internet" of network namespaces with home networks behind NAT routers, for the NAT
 * test: public hosts on one bridge (in a switch namespace), and for each home a router
 * namespace with one leg on that bridge and one on the home's own subnet, where the home
 * host sits. The router masquerades the home subnet with nftables and lets in only
 * packets of connections opened from inside, as home routers do:
 *
 * - `cone`: plain masquerade, which keeps a connection's source port where it can
 *   (endpoint-independent mapping, as common home routers do);
 * - `symmetric`: masquerade with random ports, a new port for each connection
 *   (per-destination mapping: hole punching cannot predict it).
 *
 * Nothing of the test network is in the machine's own namespace. Names carry the test
 * process's pid, as in netns.ts. Needs root, iproute2 and nftables (`nft`).
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { listNamespaces } from './netns.js'

export type NatKind = 'cone' | 'symmetric'

export interface NatHost {
  name: string
  ns: string
  /** The host's own address (a public host: on the internet bridge; a home host: in its home subnet). */
  ip: string
  /** Set for a home host: its router. */
  router?: NatRouter
}

export interface NatRouter {
  name: string
  ns: string
  /** The router's address on the internet bridge: what public hosts see a home host as. */
  publicIp: string
  kind: NatKind
}

function run (cmd: string, args: string[], input?: string): void {
  try {
    execFileSync(cmd, args, { stdio: ['pipe', 'ignore', 'pipe'], encoding: 'utf8', input })
  } catch (err: any) {
    throw new Error(`${cmd} ${args.join(' ')} failed: ${String(err.stderr ?? err.message).trim()}`)
  }
}

/** Undefined when nftables can be used in a namespace here; otherwise why not. */
export function nftUnavailable (): string | undefined {
  const probe = `ccnft${process.pid.toString(36)}`
  spawnSync('ip', ['netns', 'del', probe])
  try {
    const add = spawnSync('ip', ['netns', 'add', probe], { encoding: 'utf8' })
    if (add.status !== 0) return `cannot make a namespace: ${add.stderr.trim()}`
    const r = spawnSync('ip', ['netns', 'exec', probe, 'nft', '-f', '-'], { input: 'table ip probe {\n  chain post {\n    type nat hook postrouting priority 100;\n  }\n}\n', encoding: 'utf8' })
    if (r.error != null) return `cannot run \`nft\` (install nftables): ${r.error.message}`
    if (r.status !== 0) return `nft in a namespace failed: ${r.stderr.trim()}`
    return undefined
  } finally {
    spawnSync('ip', ['netns', 'del', probe])
  }
}

const live = new Set<NatNetwork>()
let exitHook = false

export class NatNetwork {
  readonly hosts: NatHost[] = []
  readonly routers: NatRouter[] = []
  private readonly tag = process.pid.toString(36)
  private readonly switchNs: string
  private readonly made: string[] = []
  /** Third octet of the internet subnet 10.214.<n>.0/24 (varies by pid, for logs). */
  private readonly subnet = 100 + (process.pid % 100)
  private nextPublic = 1
  private ports = 0

  constructor () {
    this.switchNs = `cc${this.tag}nsw`
    if (!exitHook) {
      exitHook = true
      process.once('exit', () => { for (const n of live) n.cleanup() })
    }
  }

  get namespaces (): string[] { return [...this.made] }

  /** Make the internet bridge (call first). */
  create (): void {
    live.add(this)
    const existing = new Set(listNamespaces())
    for (const ns of existing) if (ns.startsWith(`cc${this.tag}n`)) spawnSync('ip', ['netns', 'del', ns])
    this.add(this.switchNs)
    run('ip', ['-n', this.switchNs, 'link', 'set', 'lo', 'up'])
    run('ip', ['-n', this.switchNs, 'link', 'add', 'br0', 'type', 'bridge'])
    run('ip', ['-n', this.switchNs, 'link', 'set', 'br0', 'up'])
  }

  /** A host on the internet bridge, with a public address. */
  publicHost (name: string): NatHost {
    const ns = `cc${this.tag}n${this.made.length}`
    const ip = this.attach(ns)
    const host: NatHost = { name, ns, ip }
    this.hosts.push(host)
    return host
  }

  /** A home network: a router of `kind` on the internet bridge, and one host behind it. */
  homeHost (name: string, kind: NatKind): NatHost {
    const router: NatRouter = { name: `${name}-router`, ns: `cc${this.tag}n${this.made.length}`, publicIp: '', kind }
    router.publicIp = this.attach(router.ns)
    this.routers.push(router)
    const ns = `cc${this.tag}n${this.made.length}`
    this.add(ns)
    run('ip', ['-n', ns, 'link', 'set', 'lo', 'up'])
    run('ip', ['-n', ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'lan0', 'netns', router.ns])
    // every home uses the same private subnet, as real ones do
    run('ip', ['-n', ns, 'addr', 'add', '192.168.1.2/24', 'dev', 'eth0'])
    run('ip', ['-n', ns, 'link', 'set', 'eth0', 'up'])
    run('ip', ['-n', ns, 'route', 'add', 'default', 'via', '192.168.1.1'])
    run('ip', ['-n', router.ns, 'addr', 'add', '192.168.1.1/24', 'dev', 'lan0'])
    run('ip', ['-n', router.ns, 'link', 'set', 'lan0', 'up'])
    run('ip', ['netns', 'exec', router.ns, 'sysctl', '-q', '-w', 'net.ipv4.ip_forward=1'])
    const masquerade = kind === 'symmetric' ? 'masquerade random' : 'masquerade'
    run('ip', ['netns', 'exec', router.ns, 'nft', '-f', '-'], [
      'table ip home {',
      '  chain nat_out {',
      '    type nat hook postrouting priority 100;',
      `    oifname "eth0" ${masquerade}`,
      '  }',
      // from the internet only what answers a connection opened from inside
      '  chain through {',
      '    type filter hook forward priority 0; policy drop;',
      '    ct state established,related accept',
      '    iifname "lan0" oifname "eth0" accept',
      '  }',
      // nothing from the internet to the router itself either
      '  chain to_router {',
      '    type filter hook input priority 0; policy accept;',
      '    iifname "eth0" ct state new drop',
      '  }',
      '}',
      ''
    ].join('\n'))
    const host: NatHost = { name, ns, ip: '192.168.1.2', router }
    this.hosts.push(host)
    return host
  }

  host (name: string): NatHost {
    const h = this.hosts.find(h => h.name === name)
    if (h == null) throw new Error(`no test host ${name}`)
    return h
  }

  wrapper (name: string): string[] { return ['ip', 'netns', 'exec', this.host(name).ns] }

  /** The router's connection tracking entries (for a failure's report). */
  conntrack (router: NatRouter): string {
    return spawnSync('ip', ['netns', 'exec', router.ns, 'cat', '/proc/net/nf_conntrack'], { encoding: 'utf8' }).stdout ?? ''
  }

  /** Delete every namespace we made (their veths, the bridge and the nft tables go with them). Safe to call twice. */
  cleanup (): void {
    for (const ns of this.made.splice(0).reverse()) spawnSync('ip', ['netns', 'del', ns])
    this.hosts.length = 0
    this.routers.length = 0
    live.delete(this)
  }

  /** A namespace with a veth on the internet bridge and the next public address; returns the address. */
  private attach (ns: string): string {
    const ip = `10.214.${this.subnet}.${this.nextPublic++}`
    const port = `p${this.ports++}`
    this.add(ns)
    run('ip', ['-n', ns, 'link', 'set', 'lo', 'up'])
    run('ip', ['-n', ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', port, 'netns', this.switchNs])
    run('ip', ['-n', ns, 'addr', 'add', `${ip}/24`, 'dev', 'eth0'])
    run('ip', ['-n', ns, 'link', 'set', 'eth0', 'up'])
    run('ip', ['-n', this.switchNs, 'link', 'set', port, 'master', 'br0'])
    run('ip', ['-n', this.switchNs, 'link', 'set', port, 'up'])
    return ip
  }

  private add (ns: string): void {
    this.made.push(ns)
    run('ip', ['netns', 'add', ns])
  }
}
