/**
 * The docker-compose demo as a user runs it, on a Docker engine of the test's own
 * (scripts/lib/docker-engine.mjs): the image built from the real Dockerfile (on a local
 * stand-in for its base image, as no image registry is reachable here), the real
 * docker-compose.yml brought up with `docker-compose up -d`, two peers driven through
 * their terminal UI with `docker attach` in a pseudo-terminal (tmux): register, a friend
 * request, a live DM, an offline DM read after the peer's restart. Then every container
 * stops cleanly with `docker-compose down`. Needs root, Debian's docker.io,
 * docker-compose and debootstrap (CI installs them); skipped, saying why, without them.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import {
  DockerEngine, ComposeProject, buildBaseImage, buildImage, dockerUnavailable, PEERS, ROOT
} from '../../scripts/lib/docker-engine.mjs'
import { TmuxScreen } from '../helpers/tmux.js'
import { askFirstUser, logIn, register } from '../helpers/tui-flows.js'
import { needs } from '../helpers/needs.js'

const unavailable = dockerUnavailable()
const BASE_IMAGE = 'conf-chat-base:stand-in'
/** A menu shows "at once" after an attach: well within this, on a loaded machine. */
const ATTACH_DRAW_MS = 10_000
/** What a detached peer may write to its log in the whole test: its start-up lines. */
const IDLE_LOG_BYTES = 4096

/** Poll `check` until it holds (a state of another process, not a time). */
async function waitUntil (check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!await check()) {
    if (Date.now() > deadline) throw new Error(`waited ${timeoutMs} ms for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 500))
  }
}

describe('the docker-compose demo on a Docker engine', () => {
  if (unavailable != null) {
    needs('a Docker engine', unavailable)
    return
  }

  let engine: DockerEngine | undefined
  let project: ComposeProject | undefined
  let imageBytes = 0
  /** Set when dockerd is installed but cannot run here (no cgroups, no overlayfs...). */
  let engineFailed: string | undefined
  const screens: TmuxScreen[] = []

  beforeAll(async () => {
    const started = performance.now()
    try {
      engine = await DockerEngine.start()
    } catch (err: any) {
      engineFailed = `dockerd did not start: ${String(err?.message ?? err)}`
      return
    }
    await buildBaseImage(engine, BASE_IMAGE)
    imageBytes = await buildImage(engine, BASE_IMAGE)
    project = new ComposeProject(engine, `conf-chat-test-${randomBytes(3).toString('hex')}`)
    console.log(`[docker] engine, stand-in base image and conf-chat image ready in ${Math.round((performance.now() - started) / 1000)} s`)
  }, 1_500_000)

  afterAll(async () => {
    for (const s of screens) await s.kill()
    await project?.down().catch(() => {})
    await engine?.stop()
  }, 120_000)

  /** `docker attach` to the service's container in a terminal of the given size. */
  async function attach (service: string, width = 100, height = 30): Promise<TmuxScreen> {
    const env: NodeJS.ProcessEnv = { ...engine!.env, TERM: 'xterm-256color' }
    const screen = await TmuxScreen.start({ command: ['docker', 'attach', await project!.container(service)], cwd: ROOT, env, width, height })
    screens.push(screen)
    return screen
  }

  /** Ctrl+P Ctrl+Q: the docker client lets go (and exits with 1), the program goes on. */
  async function detach (screen: TmuxScreen): Promise<void> {
    await screen.press('C-p', 'C-q')
    await screen.waitForExit()
    expect(await screen.everything()).toContain('read escape sequence')
    await screen.kill()
  }

  /**
   * README's throwaway peer, in command mode: `docker-compose run --rm -T guest ...
   * --commands`; once it has joined, `users`, then `quit`. Resolves with its output lines.
   */
  async function guestUsers (): Promise<string[]> {
    const child = spawn('docker-compose', ['-f', join(ROOT, 'docker-compose.yml'), '-p', project!.name, 'run', '--rm', '-T', 'guest',
      'node', 'packages/cli/dist/conf-chat.js', '--commands'], { env: engine!.env, cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] })
    const lines: string[] = []
    const exited = new Promise<number | null>(resolve => child.once('exit', code => { resolve(code) }))
    try {
      for await (const line of createInterface({ input: child.stdout })) {
        lines.push(line)
        if (/^joined the network via /.test(line)) child.stdin.write('users\n')
        if (/^\[users\] /.test(line)) child.stdin.end('quit\n')
      }
      expect(await exited, lines.join('\n')).toBe(0)
      return lines
    } finally {
      if (child.exitCode == null) child.kill('SIGTERM')
    }
  }

  async function inspect (service: string, format: string): Promise<string> {
    return await engine!.run('docker', ['inspect', '--format', format, await project!.container(service)])
  }

  it('is a small image that runs as a non-root user, with a health check and none of the build tools or sources', async () => {
    if (engineFailed != null) throw new Error(engineFailed)
    const base = Number(await engine!.run('docker', ['image', 'inspect', '--format', '{{.Size}}', BASE_IMAGE]))
    console.log(`[docker] image ${(imageBytes / 1e6).toFixed(1)} MB, of which ${((imageBytes - base) / 1e6).toFixed(1)} MB on top of the base image`)
    const config = JSON.parse(await engine!.run('docker', ['image', 'inspect', '--format', '{{json .Config}}', 'conf-chat:latest']))
    expect(config.User).toBe('node')
    expect(config.Healthcheck.Test.join(' ')).toContain('CONF_CHAT_STATUS_FILE')
    const listing = await engine!.run('docker', ['run', '--rm', '--entrypoint', 'sh', 'conf-chat:latest', '-c',
      'id -un; ls /app/node_modules; find /app \\( -name "*.ts" ! -name "*.d.ts" \\) -o -name tsconfig.json -o \\( -name src -type d \\) | head -n 5; command -v cc gcc g++ make tsc || true'])
    const [user, ...rest] = listing.split('\n')
    expect(user).toBe('node')
    // only the native addon the bundles load, and its dependencies
    expect(rest).toContain('classic-level')
    expect(rest.filter(l => /typescript|vitest|rolldown|@libp2p|dependency-cruiser/.test(l))).toEqual([])
    expect(rest.filter(l => l.startsWith('/'))).toEqual([])
    expect(imageBytes - base).toBeLessThan(30e6)
  })

  it('runs: peers join at once and stay quiet until attached; attaching draws the menu, again after a detach; two users befriend and chat live and through the mailbox; down stops all cleanly', async () => {
    if (engineFailed != null) throw new Error(engineFailed)
    const p = project!
    const up = Date.now()
    await p.compose('up', '-d')
    const joined = await p.joined(['supernode', ...PEERS], up)
    console.log(`[docker] up -d until joined (from its container's start): ${['supernode', ...PEERS].map(s => `${s} ${Math.round(joined[s]!.ms)} ms (${Math.round(joined[s]!.fromContainerStartMs)})`).join(', ')}`)
    for (const s of ['supernode', ...PEERS]) expect(await p.state(s)).toBe('joined')

    // nobody attached: each peer has written its start-up lines and waits, drawing nothing
    for (const s of PEERS) expect(await p.logBytes(s)).toBeLessThan(IDLE_LOG_BYTES)

    // attach to alice: the welcome menu at once; detach, attach from another terminal: drawn again
    let alice = await attach('alice', 100, 30)
    await alice.waitFor(/Welcome to conf-chat\n❯ Log in\n {2}Register\n {2}Quit/, ATTACH_DRAW_MS)
    await detach(alice)
    alice = await attach('alice', 90, 26)
    await register(alice, 'alice', 'Alice Liddell', ATTACH_DRAW_MS + 30_000)

    let bob = await attach('bob')
    await register(bob, 'bob', 'Bob Builder', ATTACH_DRAW_MS + 30_000)

    // alice asks bob from his entry in the user list
    await askFirstUser(alice, 'bob', 'Bob Builder')

    // bob accepts on his friend requests screen
    await bob.waitFor(/Friend requests \(1\)/)
    await bob.waitFor(/ Users\n❯ ● alice /)
    await bob.press('Down', 'Enter')
    await bob.waitFor(/❯ \? alice asks to be friends/)
    await bob.press('Enter')
    await bob.waitFor(/❯ Accept/)
    await bob.press('Enter')
    await bob.waitFor(/✔ You and alice are friends now/)
    await bob.waitFor(/No friend requests\n❯ Send a friend request…\n {2}Back/)
    await bob.press('Down', 'Enter')
    await bob.waitFor(/ Friends\n {2}● alice /)

    // a live DM: alice opens the chat, bob sees it arrive in his list
    await alice.waitFor(/★ bob and you are friends now/)
    await alice.waitFor(/ Friends\n❯ ● bob +Bob Builder +online/)
    await alice.press('Enter')
    await alice.waitFor(/── Chat with bob \(Bob Builder\) · online ──[\s\S]*you ›/)
    await alice.type('hello bob, from one container to another')
    await alice.press('Enter')
    await bob.waitFor(/✉ alice: hello bob, from one container to another/)
    await alice.type('/q')
    await alice.press('Enter')
    await alice.waitFor(/ Friends\n❯ ● bob /)

    // bob quits: his program ends with 0 and the container stops
    await bob.press('q')
    expect(await bob.waitForExit()).toBe(0)
    await bob.kill()
    expect(await inspect('bob', '{{.State.Status}} {{.State.ExitCode}}')).toBe('exited 0')

    // an offline DM: alice's message goes to bob's mailbox
    await alice.waitFor(/❯ ○ bob +Bob Builder +offline/)
    await alice.press('Enter')
    await alice.waitFor(/── Chat with bob \(Bob Builder\) · offline ──[\s\S]*you ›/)
    await alice.type('see this when you are back')
    await alice.press('Enter')
    await alice.waitFor(/↳ \(bob is offline: left in their mailbox\)/)

    // bob's container starts again: it joins as fast as a fresh peer, and the message waits for him
    const restart = Date.now()
    await p.compose('start', 'bob')
    const rejoined = await p.joined(['bob'], restart)
    console.log(`[docker] bob restarted (remembered addresses from the last run) until joined: ${Math.round(rejoined.bob!.ms)} ms (${Math.round(rejoined.bob!.fromContainerStartMs)} from the container's start)`)
    bob = await attach('bob')
    await logIn(bob, 'bob', ATTACH_DRAW_MS + 30_000)
    await bob.waitFor(/✉ while you were away: 1 message from alice \(1\)/)
    await bob.press('Enter')
    await bob.waitFor(/── Chat with alice \(Alice Liddell\) · online ──[\s\S]*alice: see this when you are back[\s\S]*you ›/)
    await detach(bob)

    // a throwaway peer (README's `run --rm guest`), in command mode, sees both users
    const guest = await guestUsers()
    expect(guest).toContain('[users] 2 users')
    expect(guest.filter(l => /^ {2}online +(alice|bob) /.test(l))).toHaveLength(2)
    expect(await engine!.run('docker', ['ps', '-aq', '--filter', `label=com.docker.compose.service=guest`])).toBe('') // --rm: gone

    // carol was never attached: her log is still her start-up lines
    const carolLog = await p.logBytes('carol')
    console.log(`[docker] log of the never-attached peer at the end: ${carolLog} bytes`)
    expect(carolLog).toBeLessThan(IDLE_LOG_BYTES)
    expect(await p.state('carol')).toBe('joined')
    // the image's health check (every 30 s) says so too
    await waitUntil(async () => await inspect('carol', '{{.State.Health.Status}}') === 'healthy', 90_000, 'carol to be healthy')

    // every program stops cleanly on the stop signal, and down leaves nothing behind
    await detach(alice)
    const stopping = Date.now()
    await p.compose('stop', '--timeout', '20')
    console.log(`[docker] compose stop until every program exited: ${Date.now() - stopping} ms`)
    for (const s of ['supernode', ...PEERS]) expect(`${s}: ${await inspect(s, '{{.State.Status}} {{.State.ExitCode}}')}`).toBe(`${s}: exited 0`)
    await p.down()
    expect(await engine!.run('docker', ['ps', '-aq'])).toBe('')
    expect(await engine!.run('docker', ['volume', 'ls', '-q'])).toBe('')
  }, 600_000)
})
