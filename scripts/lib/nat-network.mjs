/**
 * An "internet" of network namespaces with home networks behind NAT routers, for the NAT
 * test and the NAT benchmark: public hosts on one bridge (in a switch namespace), and for
 * each home a router namespace with one leg on that bridge and one on the home's own
 * subnet, where the home host sits. The router masquerades the home subnet with nftables
 * and lets in only packets of connections opened from inside, as home routers do:
 *
 * - `cone`: plain masquerade, which keeps a connection's source port where it can
 *   (endpoint-independent mapping, as common home routers do);
 * - `symmetric`: masquerade with random ports, a new port for each connection
 *   (per-destination mapping: hole punching cannot predict it).
 *
 * Nothing of the test network is in the machine's own namespace. Names carry the
 * process's pid, as in test/helpers/netns.ts. Needs root, iproute2 and nftables (`nft`).
 * Types: nat-network.d.mts.
 */
import { execFileSync, spawnSync } from 'node:child_process'

/**
 * @typedef {import('./nat-network.d.mts').NatKind} NatKind
 * @typedef {import('./nat-network.d.mts').NatHost} NatHost
 * @typedef {import('./nat-network.d.mts').NatRouter} NatRouter
 */

/** @param {string} cmd @param {string[]} args @param {string} [input] */
function run (cmd, args, input) {
  try {
    execFileSync(cmd, args, { stdio: ['pipe', 'ignore', 'pipe'], encoding: 'utf8', input })
  } catch (/** @type {any} */ err) {
    throw new Error(`${cmd} ${args.join(' ')} failed: ${String(err.stderr ?? err.message).trim()}`)
  }
}

/** Every namespace `ip netns list` shows (names only). @returns {string[]} */
export function listNamespaces () {
  const r = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' })
  if (r.status !== 0) return []
  return r.stdout.split('\n').map(l => l.trim().split(/\s+/)[0]).filter(n => n !== '')
}

/** Undefined when nftables can be used in a namespace here; otherwise why not. @returns {string | undefined} */
export function nftUnavailable () {
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

/** @type {Set<NatNetwork>} */
const live = new Set()
let exitHook = false

export class NatNetwork {
  constructor () {
    /** @type {NatHost[]} */
    this.hosts = []
    /** @type {NatRouter[]} */
    this.routers = []
    /** @private */
    this.tag = process.pid.toString(36)
    /** @private */
    this.switchNs = `cc${this.tag}nsw`
    /** @private @type {string[]} */
    this.made = []
    /** Third octet of the internet subnet 10.214.<n>.0/24 (varies by pid, for logs). @private */
    this.subnet = 100 + (process.pid % 100)
    /** @private */
    this.nextPublic = 1
    /** @private */
    this.ports = 0
    if (!exitHook) {
      exitHook = true
      process.once('exit', () => { for (const n of live) n.cleanup() })
    }
  }

  /** @returns {string[]} */
  get namespaces () { return [...this.made] }

  /** Make the internet bridge (call first). */
  create () {
    live.add(this)
    const existing = new Set(listNamespaces())
    for (const ns of existing) if (ns.startsWith(`cc${this.tag}n`)) spawnSync('ip', ['netns', 'del', ns])
    this.add(this.switchNs)
    run('ip', ['-n', this.switchNs, 'link', 'set', 'lo', 'up'])
    run('ip', ['-n', this.switchNs, 'link', 'add', 'br0', 'type', 'bridge'])
    run('ip', ['-n', this.switchNs, 'link', 'set', 'br0', 'up'])
  }

  /** A host on the internet bridge, with a public address. @param {string} name @returns {NatHost} */
  publicHost (name) {
    const ns = `cc${this.tag}n${this.made.length}`
    const ip = this.attach(ns)
    /** @type {NatHost} */
    const host = { name, ns, ip }
    this.hosts.push(host)
    return host
  }

  /**
   * A home network: a router of `kind` on the internet bridge, and one host behind it.
   * @param {string} name @param {NatKind} kind @returns {NatHost}
   */
  homeHost (name, kind) {
    /** @type {NatRouter} */
    const router = { name: `${name}-router`, ns: `cc${this.tag}n${this.made.length}`, publicIp: '', kind }
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
    /** @type {NatHost} */
    const host = { name, ns, ip: '192.168.1.2', router }
    this.hosts.push(host)
    return host
  }

  /**
   * Another host in the home of `nextTo` (a home host): the same router and subnet, the
   * next address (192.168.1.3, ...), on a port of its own on the router (`lan1`, ...).
   * The router answers ARP for the hosts of the home on each port (proxy ARP) and forwards
   * between them, so two hosts of one home reach each other at their own addresses, with
   * no NAT in between; to the internet this one is masqueraded as the first is.
   * @param {string} name @param {string} nextTo @returns {NatHost}
   */
  homeNeighbour (name, nextTo) {
    const router = this.host(nextTo).router
    if (router == null) throw new Error(`${nextTo} is not a home host`)
    const index = this.hosts.filter(h => h.router === router).length
    const ip = `192.168.1.${2 + index}`
    const port = `lan${index}`
    const ns = `cc${this.tag}n${this.made.length}`
    this.add(ns)
    run('ip', ['-n', ns, 'link', 'set', 'lo', 'up'])
    run('ip', ['-n', ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', port, 'netns', router.ns])
    run('ip', ['-n', ns, 'addr', 'add', `${ip}/24`, 'dev', 'eth0'])
    run('ip', ['-n', ns, 'link', 'set', 'eth0', 'up'])
    run('ip', ['-n', ns, 'route', 'add', 'default', 'via', '192.168.1.1'])
    run('ip', ['-n', router.ns, 'link', 'set', port, 'up'])
    run('ip', ['-n', router.ns, 'route', 'add', `${ip}/32`, 'dev', port, 'src', '192.168.1.1'])
    for (const dev of ['lan0', port]) run('ip', ['netns', 'exec', router.ns, 'sysctl', '-q', '-w', `net.ipv4.conf.${dev}.proxy_arp=1`])
    // out to the internet as from lan0, and between the home's ports both ways
    run('ip', ['netns', 'exec', router.ns, 'nft', '-f', '-'], [
      `add rule ip home through iifname "${port}" accept`,
      `add rule ip home through iifname "lan0" oifname "${port}" accept`,
      ''
    ].join('\n'))
    /** @type {NatHost} */
    const host = { name, ns, ip, router }
    this.hosts.push(host)
    return host
  }

  /** @param {string} name @returns {NatHost} */
  host (name) {
    const h = this.hosts.find(h => h.name === name)
    if (h == null) throw new Error(`no test host ${name}`)
    return h
  }

  /** @param {string} name @returns {string[]} */
  wrapper (name) { return ['ip', 'netns', 'exec', this.host(name).ns] }

  /** The router's connection tracking entries (for a failure's report). @param {NatRouter} router @returns {string} */
  conntrack (router) {
    return spawnSync('ip', ['netns', 'exec', router.ns, 'cat', '/proc/net/nf_conntrack'], { encoding: 'utf8' }).stdout ?? ''
  }

  /** Delete every namespace we made (their veths, the bridge and the nft tables go with them). Safe to call twice. */
  cleanup () {
    for (const ns of this.made.splice(0).reverse()) spawnSync('ip', ['netns', 'del', ns])
    this.hosts.length = 0
    this.routers.length = 0
    live.delete(this)
  }

  /**
   * A namespace with a veth on the internet bridge and the next public address; returns the address.
   * @private @param {string} ns @returns {string}
   */
  attach (ns) {
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

  /** @private @param {string} ns */
  add (ns) {
    this.made.push(ns)
    run('ip', ['netns', 'add', ns])
  }
}
