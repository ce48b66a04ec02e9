#!/usr/bin/env node
// The docker-compose demo's figures, on a Docker engine of the script's own
// (scripts/lib/docker-engine.mjs; root, Debian's docker.io, docker-compose, debootstrap):
// the image's size (and what it adds to its base), the time from `docker-compose up -d`
// until each program has joined, and, with nobody attached, each peer's CPU (its
// container's cgroup) and log growth over --window ms, next to a peer of the same image
// in command mode (`docker-compose run -d guest ... --commands`). Then `down -v`, the
// engine stopped and its temp dir removed. Prints a table and writes JSON under results/.
//
//   npm run bench:docker -- [--window 300000]
// (the engine is new, so the image's base is always the stand-in that
// scripts/docker-base-image.sh builds: no image registry is reachable here)
import { parseArgs } from 'node:util'
import { BenchRun, RESULTS, fmt, sleep } from './lib/bench.mjs'
import { ComposeProject, DockerEngine, PEERS, buildBaseImage, buildImage, dockerUnavailable } from './lib/docker-engine.mjs'

const { values: flags } = parseArgs({
  options: {
    window: { type: 'string', default: '300000' },
    out: { type: 'string', default: RESULTS },
    help: { type: 'boolean', default: false }
  }
})
if (flags.help) {
  console.log('usage: node scripts/bench-docker.mjs [--window 300000 (ms measured with nobody attached)] [--out results/]')
  process.exit(0)
}
const WINDOW_MS = Number(flags.window)
const BASE_IMAGE = 'conf-chat-base:stand-in'
const COMMAND_MODE = 'guest'

const run = new BenchRun('docker')
run.run(async () => {
  const why = dockerUnavailable()
  if (why != null) throw new Error(`no Docker engine can run here: ${why}`)
  const engine = await DockerEngine.start()
  // also on Ctrl+C: the project down, then the engine stopped and its dir removed
  const project = new ComposeProject(engine, 'conf-chat-bench')
  run.atStop(async () => await engine.stop())
  run.atStop(async () => { await project.compose('down', '-v', '--timeout', '20').catch(() => {}) })
  let t = performance.now()
  await buildBaseImage(engine, BASE_IMAGE)
  const baseMs = performance.now() - t
  t = performance.now()
  const imageBytes = await buildImage(engine, BASE_IMAGE)
  const buildMs = performance.now() - t
  const baseBytes = Number(await engine.run('docker', ['image', 'inspect', '--format', '{{.Size}}', BASE_IMAGE]))

  const up = Date.now()
  await project.compose('up', '-d')
  const joined = await project.joined(['supernode', ...PEERS], up)
  // the same peer in command mode, in a container of the same image with a TTY nobody reads
  const guestUp = Date.now()
  await project.compose('run', '-d', COMMAND_MODE, 'node', 'packages/cli/dist/conf-chat.js', '--commands')
  const guestJoined = await project.joined([COMMAND_MODE], guestUp)
  await sleep(10_000) // start-up's after-work (the first self lookup, GC) out of the window

  const services = [...PEERS, COMMAND_MODE, 'supernode']
  const cpu0 = await Promise.all(services.map(async s => await project.cpuMs(s)))
  const log0 = await Promise.all(services.map(async s => await project.logBytes(s)))
  const t0 = performance.now()
  await sleep(WINDOW_MS)
  const elapsed = performance.now() - t0
  const cpu1 = await Promise.all(services.map(async s => await project.cpuMs(s)))
  const log1 = await Promise.all(services.map(async s => await project.logBytes(s)))
  const idle = Object.fromEntries(services.map((s, i) => [s, {
    cpuPercent: Math.round((cpu1[i] - cpu0[i]) / elapsed * 100 * 1000) / 1000,
    logBytesBefore: log0[i],
    logBytesGrowth: log1[i] - log0[i]
  }]))

  console.log(run.machineLine())
  console.log(`image: ${fmt(imageBytes / 1e6)} MB (${fmt((imageBytes - baseBytes) / 1e6)} MB on top of the ${fmt(baseBytes / 1e6)} MB base); stand-in base built in ${fmt(baseMs / 1000)} s, image in ${fmt(buildMs / 1000)} s`)
  console.log(`up -d until joined (from its container's start): ${Object.entries(joined).map(([s, j]) => `${s} ${Math.round(j.ms)} ms (${Math.round(j.fromContainerStartMs)})`).join(', ')}; a command-mode peer (run -d) ${Math.round(guestJoined[COMMAND_MODE].ms)} ms (${Math.round(guestJoined[COMMAND_MODE].fromContainerStartMs)})`)
  console.log(`nobody attached, ${fmt(elapsed / 1000, 0)} s:`)
  console.log(`  ${'container'.padEnd(22)} ${'CPU (% of a core)'.padStart(18)} ${'log before (B)'.padStart(15)} ${'log growth (B)'.padStart(15)}`)
  for (const s of services) {
    const name = s === COMMAND_MODE ? `${s} (command mode)` : PEERS.includes(s) ? `${s} (menus)` : s
    console.log(`  ${name.padEnd(22)} ${fmt(idle[s].cpuPercent, 3).padStart(18)} ${String(idle[s].logBytesBefore).padStart(15)} ${String(idle[s].logBytesGrowth).padStart(15)}`)
  }
  const file = await run.writeResult(flags.out, {
    windowMs: Math.round(elapsed),
    imageBytes,
    baseImageBytes: baseBytes,
    buildMs: { baseImage: Math.round(baseMs), image: Math.round(buildMs) },
    joined: { ...joined, [`${COMMAND_MODE} (command mode)`]: guestJoined[COMMAND_MODE] },
    idle
  })
  console.log(`JSON: ${file}`)
})
