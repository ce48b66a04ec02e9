// OpenDHT (C++, UDP) on this machine as the DHT benchmark's baseline: N `dhtnode`
// processes on 127.0.0.1, each bootstrapped from the first, and scripts/opendht-driver.py
// putting on one node and getting from another (Debian's dhtnode and python3-opendht,
// installed here with apt-get when missing and the script runs as root).
import { execFileSync, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { ROOT, sleep } from './bench.mjs'

const PYTHON = '/usr/bin/python3' // Debian's, where python3-opendht installs

function installed () {
  if (!existsSync('/usr/bin/dhtnode')) return false
  try {
    execFileSync(PYTHON, ['-c', 'import opendht'], { stdio: 'ignore' })
    return true
  } catch { return false }
}

/** Make sure dhtnode and python3-opendht are there (apt-get as root), or throw saying what is missing. */
export function ensureOpenDht () {
  if (installed()) return
  if (process.getuid?.() !== 0) throw new Error('OpenDHT baseline: needs Debian\'s dhtnode and python3-opendht (apt-get install dhtnode python3-opendht)')
  console.log('installing dhtnode and python3-opendht (apt-get)...')
  execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'dhtnode', 'python3-opendht'],
    { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } })
  if (!installed()) throw new Error('OpenDHT baseline: dhtnode or python3-opendht still missing after apt-get')
}

/**
 * Run the OpenDHT baseline: `nodes` dhtnode processes from `basePort` on, the driver's
 * two nodes joining at the first and at the middle one. `run` (a BenchRun) tracks every
 * process, so they are killed by pid at the end or on SIGINT. Resolves with the driver's
 * { putMs, getMs, failures }.
 */
export async function runOpenDht (run, { nodes, records, warmup, basePort = 14_700, settleS = 3 }) {
  ensureOpenDht()
  const procs = []
  for (let i = 0; i < nodes; i++) {
    const args = ['-p', String(basePort + i), ...(i > 0 ? ['-b', `127.0.0.1:${basePort}`] : [])]
    // dhtnode reads commands from stdin: an open pipe nobody writes to keeps it running
    const child = run.track(spawn('dhtnode', args, { stdio: ['pipe', 'ignore', 'ignore'] }))
    procs.push(child)
  }
  try {
    await sleep(1_000)
    for (const [i, p] of procs.entries()) if (p.exitCode != null) throw new Error(`dhtnode ${i} exited (${p.exitCode}): port ${basePort + i} in use?`)
    const driver = spawn(PYTHON, [join(ROOT, 'scripts', 'opendht-driver.py'), String(basePort), String(basePort + Math.floor(nodes / 2)),
      String(records), String(warmup), String(settleS)], { stdio: ['ignore', 'pipe', 'inherit'] })
    run.track(driver)
    let out = ''
    driver.stdout.on('data', chunk => { out += chunk })
    const code = await new Promise(resolve => driver.once('exit', resolve))
    if (code !== 0) throw new Error(`the OpenDHT driver exited with ${code}`)
    return JSON.parse(out)
  } finally {
    for (const p of procs) if (p.exitCode == null) p.kill('SIGTERM')
  }
}
