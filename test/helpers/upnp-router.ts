/**
 * A home router that forwards ports on request (UPnP Internet Gateway Device), for the
 * NAT test: miniupnpd (Debian's `miniupnpd-nftables`) run in a NatNetwork router's
 * namespace, answering on the home side only. The router keeps its masquerade and its
 * "only what was opened from inside" rule; a connection to a port miniupnpd forwards is
 * let through as well (`ct status dnat`), and miniupnpd adds its forwarding rules to
 * the chains it expects (nftables' `inet filter` table, as its nft_init.sh makes them).
 *
 * miniupnpd refuses to start with a private or reserved outside address, and every
 * address of the test's internet is private, so it is given a made-up public one
 * (`DECLARED_EXTERNAL_IP`) to report: nothing ever sends a packet to it (the peer
 * announces the router's address as the DHT servers see it, not what the router reports).
 * The process is started and stopped by its pid; its files go in a temp dir of its own.
 */
import { spawn, spawnSync, execFileSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomUUID } from 'node:crypto'
import type { NatRouter } from './nat.js'

const MINIUPNPD = '/usr/sbin/miniupnpd'
/** Reported by the router as its outside address; never on the wire (see above). */
const DECLARED_EXTERNAL_IP = '20.0.0.1'

/** Undefined when miniupnpd can run here; otherwise why not. */
export function upnpRouterUnavailable (): string | undefined {
  const r = spawnSync(MINIUPNPD, ['--version'], { encoding: 'utf8' })
  if (r.error != null) return `cannot run ${MINIUPNPD} (install miniupnpd-nftables): ${r.error.message}`
  return undefined
}

export class UpnpRouter {
  private readonly dir: string
  private readonly child: ChildProcess
  readonly log: string[] = []
  private readonly exited: Promise<void>

  private constructor (router: NatRouter) {
    execFileSync('ip', ['netns', 'exec', router.ns, 'nft', '-f', '-'], {
      input: [
        // the router's own filter (nat.ts) lets through a connection to a forwarded port
        'insert rule ip home through ct status dnat accept',
        'table inet filter {',
        '  chain forward {',
        '    type filter hook forward priority 0; policy accept;',
        '    jump miniupnpd',
        '  }',
        '  chain miniupnpd {',
        '  }',
        '  chain prerouting {',
        '    type nat hook prerouting priority -100; policy accept;',
        '    jump prerouting_miniupnpd',
        '  }',
        '  chain postrouting {',
        '    type nat hook postrouting priority 100; policy accept;',
        '    jump postrouting_miniupnpd',
        '  }',
        '  chain prerouting_miniupnpd {',
        '  }',
        '  chain postrouting_miniupnpd {',
        '  }',
        '}',
        ''
      ].join('\n'),
      stdio: ['pipe', 'ignore', 'pipe']
    })
    this.dir = mkdtempSync(join(tmpdir(), 'conf-chat-upnp-'))
    const conf = join(this.dir, 'miniupnpd.conf')
    writeFileSync(conf, [
      'ext_ifname=eth0',
      'listening_ip=lan0',
      `ext_ip=${DECLARED_EXTERNAL_IP}`,
      'enable_upnp=yes',
      'enable_natpmp=no',
      'secure_mode=yes',
      `uuid=${randomUUID()}`,
      'allow 1024-65535 192.168.1.0/24 1024-65535',
      'deny 0-65535 0.0.0.0/0 0-65535',
      ''
    ].join('\n'))
    // `ip netns exec` execs miniupnpd: the child's pid is miniupnpd's
    this.child = spawn('ip', ['netns', 'exec', router.ns, MINIUPNPD, '-4', '-d', '-f', conf, '-P', join(this.dir, 'miniupnpd.pid')], { stdio: ['ignore', 'pipe', 'pipe'] })
    this.exited = new Promise(resolve => { this.child.once('exit', () => { resolve() }) })
    for (const stream of [this.child.stdout, this.child.stderr]) {
      stream?.setEncoding('utf8')
      stream?.on('data', (chunk: string) => { this.log.push(...chunk.split('\n').filter(l => l !== '')) })
    }
  }

  /** Make `router` forward ports on request; resolves once miniupnpd answers on the home side. */
  static async start (router: NatRouter): Promise<UpnpRouter> {
    const r = new UpnpRouter(router)
    await new Promise<void>((resolve, reject) => {
      const onData = (): void => { if (r.log.some(l => l.includes('HTTP listening on port'))) { done(); resolve() } }
      const onExit = (): void => { done(); reject(new Error(`miniupnpd exited: ${r.log.join('\n')}`)) }
      const done = (): void => {
        r.child.stderr?.off('data', onData)
        r.child.stdout?.off('data', onData)
        r.child.off('exit', onExit)
      }
      // after the constructor's listeners, which keep the lines
      r.child.stderr?.on('data', onData)
      r.child.stdout?.on('data', onData)
      r.child.once('exit', onExit)
    })
    return r
  }

  /** End miniupnpd (by its pid) and remove its files. Safe to call twice. */
  async stop (): Promise<void> {
    if (this.child.exitCode == null && this.child.signalCode == null) {
      this.child.kill('SIGTERM')
      await this.exited
    }
    rmSync(this.dir, { recursive: true, force: true })
  }
}
