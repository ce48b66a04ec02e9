/**
 * Peers behind NAT, end to end: the real supernode (a relay) and node programs in network
 * namespaces of this test. An "internet" bridge holds the supernode and two public peers;
 * alice and bob are each behind a home router that masquerades (endpoint-independent
 * mapping), carol behind one with random ports per connection (symmetric). Checks that
 * the home peers run as DHT clients that nobody has in a routing table, reach each other
 * through the supernode's relay (many messages, one larger than the relay's data limit
 * for a connection), that records and mailboxes stay on public peers, and that a
 * restarted relay takes them back. A second network: a home router that forwards ports on
 * request (UPnP, miniupnpd) makes its peer reachable, a DHT server at the router's
 * address; a peer behind a plain router keeps reservations on two of three relays and
 * moves to the third when one goes. Needs root, iproute2 and nftables (and miniupnpd for
 * the second); where they cannot be used it fails, saying why.
 */
import { spawnSync } from 'node:child_process'
import { describe, it, expect, beforeAll, afterEach, inject, onTestFailed } from 'vitest'
import { Programs, type Program } from './helpers/programs.js'
import { listNamespaces, netnsUnavailable } from './helpers/netns.js'
import { NatNetwork, nftUnavailable } from './helpers/nat.js'
import { UpnpRouter, upnpRouterUnavailable } from './helpers/upnp-router.js'
import { until } from './helpers/until.js'
import { needs } from './helpers/needs.js'

const unavailable = netnsUnavailable() ?? nftUnavailable()
if (unavailable != null) console.warn(`nat.test.ts SKIPPED: ${unavailable}`)
const upnpUnavailable = unavailable ?? upnpRouterUnavailable()

const SUPERNODE_PORT = 4300
const PEER_PORT = 4301
/**
 * The relay's per-connection data limit in the test (KiB): small, so that a relayed
 * connection carries a few messages before the relay ends it (the next dials a new one),
 * and one message (3,000 three-byte characters) exceeds it whole.
 */
const RELAY_DATA_LIMIT_KIB = 4
/**
 * The relays' reservation lifetime in the second test (s): short, so that the test sees a
 * reservation outlive it (libp2p renews a reservation 30 s after it was made at the
 * earliest, so the lifetime must be longer than that).
 */
const RESERVATION_TTL_S = 40
const HOME = ['alice', 'bob', 'carol'] as const
const PUBLIC = ['pub1', 'pub2'] as const
type Name = typeof HOME[number] | typeof PUBLIC[number]
const TIME = '\\(\\d\\d:\\d\\d:\\d\\d\\)'
/** NAT_DEBUG=1: the peers log at debug level, and every transcript is printed at the end. */
const DEBUG = process.env.NAT_DEBUG === '1'

let programs: Programs | undefined
let net: NatNetwork | undefined
let namespaces: string[] = []
let upnp: UpnpRouter | undefined

beforeAll(() => {
  const buildError = inject('buildError')
  if (buildError !== '') throw new Error(buildError)
})

/** Each test's programs and namespaces go when it ends, passed or failed. */
afterEach(async () => {
  await programs?.cleanup()
  await upnp?.stop()
  upnp = undefined
  net?.cleanup()
  programs = undefined
  net = undefined
  const left = listNamespaces().filter(ns => namespaces.includes(ns))
  expect(left, 'namespaces left behind').toEqual([])
})

interface PeerLine { id: string, relayed: boolean, inTable: boolean, addrs: string[] }

/** `peers` on `p`: one entry per connected peer. */
async function peers (p: Program): Promise<PeerLine[]> {
  p.send('peers')
  const n = Number((await p.waitForLine(/^(\d+) connected peers?$/))[1])
  const out: PeerLine[] = []
  for (let i = 0; i < n; i++) {
    const m = await p.waitForLine(/^(\S+) (direct|relayed)( in-table)? ?(.*)$/)
    out.push({ id: m[1]!, relayed: m[2] === 'relayed', inTable: m[3] != null, addrs: m[4]!.split(' ').filter(a => a !== '') })
  }
  return out
}

/** `whoami` on `p`: its peer id, addresses, DHT mode and reachability line. */
async function whoami (p: Program): Promise<{ id: string, addrs: string[], mode: string, reachability: string }> {
  p.send('whoami')
  const id = (await p.waitForLine(/^peer id: (\S+)$/))[1]!
  const addrs: string[] = []
  for (;;) {
    const m = await p.waitForLine(/^(address: (\S+)|data directory: .*)$/)
    if (m[2] == null) break
    addrs.push(m[2])
  }
  const mode = (await p.waitForLine(/^dht mode: (\S+)$/))[1]!
  const reachability = (await p.waitForLine(/^reachability: (.*)$/))[1]!
  return { id, addrs, mode, reachability }
}

describe('peers behind NAT (namespaces, nftables)', () => {
  if (unavailable != null) {
    needs('network namespaces and nftables', unavailable)
    return
  }

  it('home peers are DHT clients reached through the relay; records and mail on public peers; a restarted relay takes them back', async () => {
    const started = Date.now()
    const progress = (step: string): void => { console.log(`[nat +${((Date.now() - started) / 1000).toFixed(1)}s] ${step}`) }
    programs = new Programs()
    net = new NatNetwork()
    const all: Program[] = []
    onTestFailed(() => {
      for (const p of all) console.error(p.transcript())
      for (const r of net?.routers ?? []) console.error(`conntrack of ${r.name}:\n${net?.conntrack(r)}`)
    })

    net.create()
    const snHost = net.publicHost('supernode')
    for (const name of PUBLIC) net.publicHost(name)
    net.homeHost('alice', 'cone')
    net.homeHost('bob', 'cone')
    net.homeHost('carol', 'symmetric')
    namespaces = net.namespaces
    expect(spawnSync('ip', ['-o', 'addr'], { encoding: 'utf8' }).stdout).not.toContain('10.214.')

    const snHome = await programs.home()
    const startSupernode = (): Program => {
      const p = programs!.supernode({
        home: snHome,
        wrapper: net!.wrapper('supernode'),
        env: DEBUG ? { CONF_CHAT_LOG: process.env.NAT_DEBUG_LEVEL ?? 'debug' } : {},
        args: ['--host', snHost.ip, '--port', String(SUPERNODE_PORT), '--relay-data-limit', String(RELAY_DATA_LIMIT_KIB)]
      })
      all.push(p)
      return p
    }
    let supernode = startSupernode()
    const snId = (await supernode.waitForLine(/^supernode peer id: (\S+)$/))[1]!
    await supernode.waitForLine(new RegExp(`^relay: on \\(\\d+ slots, each connection up to \\d+s and ${RELAY_DATA_LIMIT_KIB} KiB\\)$`))
    const snAddr = `/ip4/${snHost.ip}/tcp/${SUPERNODE_PORT}/p2p/${snId}`

    const startPeer = (name: Name, home: string): Program => {
      const p = programs!.node({
        home,
        wrapper: net!.wrapper(name),
        env: DEBUG ? { CONF_CHAT_LOG: process.env.NAT_DEBUG_LEVEL ?? 'debug' } : {},
        args: [
          // no --reachability: each finds out (a dial-back by the supernode it joins through)
          '--host', net!.host(name).ip, '--port', String(PEER_PORT), '--bootstrap', snAddr, '--commands', '--bcrypt-cost', '4', '--kdf-memory', '8'
        ]
      })
      all.push(p)
      return p
    }
    const peer = {} as Record<Name, Program>
    for (const name of [...PUBLIC, ...HOME]) peer[name] = startPeer(name, await programs.home())
    for (const name of [...PUBLIC, ...HOME]) await peer[name].waitForLine(new RegExp(`^joined the network via ${snAddr}$`), 60_000)
    progress('supernode, 2 public and 3 home peers joined')
    const { alice, carol, pub1, pub2 } = peer
    let bob = peer.bob

    // --- (1) the home peers learn that they are not reachable: DHT clients with relayed addresses, in nobody's routing table
    // (said as the join found it, before "joined the network")
    for (const name of HOME) expect(peer[name].stdout.filter(l => /^this peer cannot be dialled from outside \(behind a NAT\)/.test(l)), name).toHaveLength(1)
    for (const name of PUBLIC) expect(peer[name].stdout.filter(l => l.includes('cannot be dialled')), name).toEqual([])
    const ids = {} as Record<Name, string>
    for (const name of [...PUBLIC, ...HOME]) {
      // a public peer whose dial-back got no answer in time (a loaded machine) is a DHT
      // client until its check is made again, 5 s later (reachability-keeper.ts)
      const me = PUBLIC.includes(name as any) ? (await until(async () => await whoami(peer[name]), w => w.mode === 'server', 30_000)).value : await whoami(peer[name])
      ids[name] = me.id
      if (HOME.includes(name as any)) {
        expect(me.mode, name).toBe('client')
        expect(me.reachability, name).toMatch(/^private \(dialled through [12] relay address(es)?\)$/)
        expect(me.addrs.filter(a => a.startsWith(`${snAddr}/p2p-circuit/p2p/${me.id}`)), `${name}'s addresses: ${me.addrs.join(' ')}`).toHaveLength(1)
      } else {
        expect(me.mode, name).toBe('server')
      }
    }
    for (const name of [...PUBLIC, ...HOME]) {
      const list = await peers(peer[name])
      for (const h of HOME) {
        const entry = list.find(l => l.id === ids[h])
        if (entry == null) continue
        expect(entry.inTable, `${name} has ${h} in its routing table`).toBe(false)
      }
      if (PUBLIC.includes(name as any)) {
        // the public peers found each other as servers
        const other = PUBLIC.find(p => p !== name)!
        const seen = (await until(async () => await peers(peer[name]), l => l.some(e => e.id === ids[other] && e.inTable), 30_000)).value
        expect(seen.find(e => e.id === ids[other])?.inTable, `${name} has ${other} in its routing table`).toBe(true)
      }
    }
    progress('home peers are DHT clients; nobody has them in a routing table')

    // --- accounts and friends: alice with bob and with carol
    for (const name of HOME) {
      peer[name].send(`register ${name}`)
      peer[name].send(`${name}'s violet kettle`)
      peer[name].send(`${name[0]!.toUpperCase()}${name.slice(1)}`)
    }
    for (const name of HOME) await peer[name].waitForLine(new RegExp(`^\\[register\\] Registered ${name} \\(`), 60_000)
    for (const name of ['bob', 'carol'] as const) {
      alice.send(`friend-add ${name}`)
      await alice.waitForLine(new RegExp(`^\\[friends\\] Friend request sent to ${name} \\(delivered\\)$`), 60_000)
      await peer[name].waitForLine(/^\[friends\] alice wants to be your friend/)
      peer[name].send('friend-accept alice')
      await peer[name].waitForLine(/^\[friends\] You and alice are now friends/)
      await alice.waitForLine(new RegExp(`^\\[friends\\] ${name} accepted: you are now friends$`))
    }
    progress('registered (records read across the NATs), friends (requests delivered live through the relay)')

    // --- (2) alice -> bob live, through the relay
    alice.send('msg bob hello bob, behind two routers')
    await alice.waitForLine(/^\[msg\] to bob: delivered$/)
    await bob.waitForLine(new RegExp(`^\\[DM from alice\\] ${TIME} hello bob, behind two routers$`))
    bob.send('msg alice hello alice')
    await bob.waitForLine(/^\[msg\] to alice: delivered$/)
    await alice.waitForLine(new RegExp(`^\\[DM from bob\\] ${TIME} hello alice$`))
    progress('alice and bob: live DMs')

    // --- (2b) and within a few seconds directly (their routers keep ports: the hole punch
    // works), while messages go on: sent as the first relayed connection is upgraded
    for (let i = 1; i <= 20; i++) alice.send(`msg bob across the upgrade ${i}`)
    const direct = (await until(async () => await peers(alice), l => l.some(e => e.id === ids.bob && !e.relayed), 15_000)).value
    const toBob = direct.find(e => e.id === ids.bob)
    expect(toBob?.relayed, `alice-bob still relayed: ${JSON.stringify(toBob)}`).toBe(false)
    progress('alice and bob: direct connection')
    await bob.waitForLines(new RegExp(`^\\[DM from alice\\] ${TIME} across the upgrade \\d+$`), 20, 60_000)
    expect(bob.stdout.filter(l => / across the upgrade \d+$/.test(l)), 'each once').toHaveLength(20)

    // --- (3) alice -> carol (symmetric NAT): 200 messages and one larger than the relay's limit, each exactly once
    const COUNT = 200
    for (let i = 1; i <= COUNT; i++) alice.send(`msg carol n${i}`)
    const big = '€'.repeat(3_000)
    expect(Buffer.byteLength(big)).toBeGreaterThan(2 * RELAY_DATA_LIMIT_KIB * 1024)
    alice.send(`msg carol big ${big}`)
    await carol.waitForLines(new RegExp(`^\\[DM from alice\\] ${TIME} n\\d+$`), COUNT, 120_000)
    // too large for one relayed connection: it goes to carol's mailbox, which her peer reads
    // soon after the relay cut the stream it was coming on
    await alice.waitForLine(/^\[msg\] to carol: queued for offline delivery$/, 120_000)
    await carol.waitForLine(new RegExp(`\\[DM from alice\\] (${TIME} )?big €+$`), 90_000)
    const got = carol.stdout.map(l => l.match(/\[DM from alice\] \S+ (n\d+)$/)?.[1]).filter(x => x != null)
    expect(new Set(got).size, 'distinct messages').toBe(COUNT)
    expect(got, 'each message once').toHaveLength(COUNT)
    expect(carol.stdout.filter(l => /\[DM from alice\].* big €+$/.test(l)), 'the big one once').toHaveLength(1)
    const toCarol = (await peers(alice)).find(e => e.id === ids.carol)
    if (toCarol != null) expect(toCarol.relayed, 'alice-carol stays relayed').toBe(true)
    progress('alice -> carol: 200 messages and a big one, each once')
    // half a minute on, alice and bob are still connected directly (the punched connection
    // outlives its dial's time limit and the closing of the relayed one)
    const later = (await peers(alice)).find(e => e.id === ids.bob)
    expect(later?.relayed, `alice-bob after the carol step: ${JSON.stringify(later)}`).toBe(false)

    // --- (4) records and mail on public peers: bob's peer goes away for good; alice's mail to
    // him waits in his mailbox; he logs in on a new peer (new identity, empty datastore)
    // behind the same router, which reads his account and the mailbox from the public peers
    bob.send('quit')
    expect(await bob.waitForExit(30_000), bob.transcript()).toEqual({ code: 0, signal: null })
    await alice.waitForLine(/^\[presence\] bob is offline$/, 60_000)
    alice.send('msg bob while you were out')
    await alice.waitForLine(/^\[msg\] to bob: queued for offline delivery$/, 90_000)
    bob = peer.bob = startPeer('bob', await programs.home())
    await bob.waitForLine(new RegExp(`^joined the network via ${snAddr}$`), 60_000)
    bob.send('login bob')
    bob.send("bob's violet kettle")
    await bob.waitForLine(/^\[login\] Logged in as bob \(Bob\)$/, 60_000)
    await bob.waitForLine(new RegExp(`\\[DM from alice\\] (${TIME} )?while you were out$`), 60_000)
    // his login's notice reaches alice through the relay: she knows where he is before the
    // relay restarts (in one CI run it came only after the restart, and her message sent
    // before it went to his mailbox, shown by his next read instead of live)
    await alice.waitForLine(/^\[presence\] bob is online$/, 60_000)
    progress('bob on a new peer: his account and his mail read from the public peers')

    // --- (5) the relay restarts: new reservations, DMs go on
    supernode.kill('SIGTERM')
    await supernode.exited
    supernode = startSupernode()
    await supernode.waitForLine(/^relay: on /)
    for (const name of ['alice', 'bob'] as const) {
      const me = (await until(async () => await whoami(peer[name]), w => w.addrs.some(a => a.startsWith(`${snAddr}/p2p-circuit`)), 60_000)).value
      expect(me.addrs.some(a => a.startsWith(`${snAddr}/p2p-circuit`)), `${name} reserved again`).toBe(true)
    }
    alice.send('msg bob after the relay restarted')
    await alice.waitForLine(/^\[msg\] to bob: delivered$/, 60_000)
    await bob.waitForLine(new RegExp(`^\\[DM from alice\\] ${TIME} after the relay restarted$`))
    progress('relay restarted: reservations again, live DMs')

    for (const p of [alice, bob, carol, pub1, pub2]) {
      expect(p.running, p.transcript()).toBe(true)
      p.send('quit')
    }
    for (const p of [alice, bob, carol, pub1, pub2]) expect(await p.waitForExit(30_000), p.transcript()).toEqual({ code: 0, signal: null })
    if (DEBUG) for (const p of all) console.log(p.transcript())
    progress('done')
  }, 600_000)

  it('a router that forwards ports (UPnP) makes its peer reachable; a peer behind NAT keeps reservations on two of three relays, renews them, and moves when one goes', async ({ skip }) => {
    if (upnpUnavailable != null) skip(`needs miniupnpd: ${upnpUnavailable}`)
    const started = Date.now()
    const progress = (step: string): void => { console.log(`[nat-upnp +${((Date.now() - started) / 1000).toFixed(1)}s] ${step}`) }
    programs = new Programs()
    net = new NatNetwork()
    const all: Program[] = []
    onTestFailed(() => { for (const p of all) console.error(p.transcript()) })
    const env = DEBUG ? { CONF_CHAT_LOG: process.env.NAT_DEBUG_LEVEL ?? 'debug' } : {}

    net.create()
    const relays = ['sn1', 'sn2', 'sn3'].map(name => net!.publicHost(name))
    net.publicHost('frank')
    const dave = net.homeHost('dave', 'cone')
    net.homeHost('erin', 'cone')
    namespaces = net.namespaces
    upnp = await UpnpRouter.start(dave.router!)
    onTestFailed(() => { console.error(`miniupnpd:\n${upnp?.log.join('\n')}`) })

    const sn = await Promise.all(relays.map(async host => {
      const p = programs!.supernode({ home: await programs!.home(), wrapper: net!.wrapper(host.name), env, args: ['--host', host.ip, '--port', String(SUPERNODE_PORT), '--relay-reservation-ttl', String(RESERVATION_TTL_S)] })
      all.push(p)
      const id = (await p.waitForLine(/^supernode peer id: (\S+)$/))[1]!
      return { p, id, addr: `/ip4/${host.ip}/tcp/${SUPERNODE_PORT}/p2p/${id}` }
    }))
    const start = async (name: 'dave' | 'erin' | 'frank'): Promise<Program> => {
      const p = programs!.node({
        home: await programs!.home(),
        wrapper: net!.wrapper(name),
        env,
        args: ['--host', net!.host(name).ip, '--port', String(PEER_PORT), '--bootstrap', sn.map(s => s.addr).join(','), '--commands', '--bcrypt-cost', '4', '--kdf-memory', '8']
      })
      all.push(p)
      return p
    }
    const peer = { dave: await start('dave'), erin: await start('erin') }
    for (const p of Object.values(peer)) await p.waitForLine(/^joined the network via /, 60_000)
    const erinJoined = Date.now()
    progress('3 relays, dave (UPnP router) and erin (no UPnP) joined')

    // --- dave: the router forwarded his port and the dial-back got through it: a DHT server
    // at the router's address
    const d = await whoami(peer.dave)
    expect(d.mode, 'dave').toBe('server')
    expect(d.reachability, 'dave').toBe('public')
    expect(d.addrs.filter(a => a.startsWith(`/ip4/${dave.router!.publicIp}/tcp/`)), `dave's addresses: ${d.addrs.join(' ')}`).toHaveLength(1)
    expect(d.addrs.filter(a => a.includes('/p2p-circuit')), 'dave has no relayed address').toEqual([])
    expect(peer.dave.stdout.filter(l => l.includes('cannot be dialled')), 'dave').toEqual([])
    progress('dave: public through the forwarded port, a DHT server')

    // --- erin: private, on two relays (two of the three)
    const relaysOf = (addrs: string[]): string[] => [...new Set(addrs.filter(a => a.includes('/p2p-circuit')).map(a => a.split('/p2p-circuit')[0]!))]
    const e = (await until(async () => await whoami(peer.erin), w => relaysOf(w.addrs).length === 2, 30_000)).value
    expect(e.mode, 'erin').toBe('client')
    expect(relaysOf(e.addrs), `erin's addresses: ${e.addrs.join(' ')}`).toHaveLength(2)
    for (const r of relaysOf(e.addrs)) expect(sn.map(s => s.addr), 'a relay of ours').toContain(r)

    // --- erin -> dave: dialled directly at his router's address (no relay, no punch)
    for (const name of ['dave', 'erin'] as const) {
      peer[name].send(`register ${name}`)
      peer[name].send(`${name}'s copper kettle`)
      peer[name].send(`${name[0]!.toUpperCase()}${name.slice(1)}`)
    }
    for (const name of ['dave', 'erin'] as const) await peer[name].waitForLine(new RegExp(`^\\[register\\] Registered ${name} \\(`), 60_000)
    peer.erin.send('friend-add dave')
    await peer.dave.waitForLine(/^\[friends\] erin wants to be your friend/, 60_000)
    peer.dave.send('friend-accept erin')
    await peer.erin.waitForLine(/^\[friends\] dave accepted: you are now friends$/, 60_000)
    peer.erin.send('msg dave hello dave, behind a router that forwards')
    await peer.erin.waitForLine(/^\[msg\] to dave: delivered$/, 60_000)
    await peer.dave.waitForLine(new RegExp(`^\\[DM from erin\\] ${TIME} hello dave, behind a router that forwards$`))
    const toDave = (await peers(peer.erin)).filter(l => l.id === d.id)
    expect(toDave.length, 'erin is connected to dave').toBeGreaterThan(0)
    expect(toDave.every(l => !l.relayed), `erin-dave: ${JSON.stringify(toDave)}`).toBe(true)
    // and as what he is: a DHT server, in her routing table
    expect(toDave.some(l => l.inTable), `erin-dave: ${JSON.stringify(toDave)}`).toBe(true)
    progress('erin -> dave: live, directly; dave in her routing table')

    // --- one of erin's relays goes: she reserves on the third, and is reached again
    const gone = sn.find(s => s.addr === relaysOf(e.addrs)[0])!
    gone.p.kill('SIGTERM')
    await gone.p.exited
    const third = sn.find(s => !relaysOf(e.addrs).includes(s.addr))!
    const moved = (await until(async () => await whoami(peer.erin), w => relaysOf(w.addrs).includes(third.addr) && !relaysOf(w.addrs).includes(gone.addr), 90_000)).value
    expect(relaysOf(moved.addrs), `erin's addresses after a relay went: ${moved.addrs.join(' ')}`).toContain(third.addr)
    expect(relaysOf(moved.addrs)).not.toContain(gone.addr)
    expect(relaysOf(moved.addrs)).toHaveLength(2)
    peer.dave.send('msg erin your relay moved')
    await peer.dave.waitForLine(/^\[msg\] to erin: delivered$/, 60_000)
    await peer.erin.waitForLine(new RegExp(`^\\[DM from dave\\] ${TIME} your relay moved$`))
    progress('a relay went: erin moved to the third; DMs reach her')

    // --- her reservations outlive their lifetime at the relays (renewed): once twice the
    // lifetime has passed since she joined, frank (public, never connected to her) reaches
    // her live, which only a relay holding her reservation can do (her own address is in
    // a home network no public host routes to)
    await new Promise(resolve => setTimeout(resolve, Math.max(0, erinJoined + 2 * RESERVATION_TTL_S * 1000 - Date.now())))
    const frank = await start('frank')
    await frank.waitForLine(/^joined the network via /, 60_000)
    const e2 = await whoami(peer.erin)
    expect(relaysOf(e2.addrs), `erin's addresses after ${2 * RESERVATION_TTL_S} s: ${e2.addrs.join(' ')}`).toHaveLength(2)
    frank.send('register frank')
    frank.send("frank's copper kettle")
    frank.send('Frank')
    await frank.waitForLine(/^\[register\] Registered frank \(/, 60_000)
    frank.send('friend-add erin')
    await frank.waitForLine(/^\[friends\] Friend request sent to erin \(delivered\)$/, 60_000)
    await peer.erin.waitForLine(/^\[friends\] frank wants to be your friend/)
    progress(`after ${2 * RESERVATION_TTL_S} s (reservations of ${RESERVATION_TTL_S} s): frank reaches erin through a relay`)

    for (const p of [peer.dave, peer.erin, frank]) p.send('quit')
    for (const p of [peer.dave, peer.erin, frank]) expect(await p.waitForExit(30_000), p.transcript()).toEqual({ code: 0, signal: null })
    if (DEBUG) for (const p of all) console.log(p.transcript())
  }, 300_000)
})
