/**
 * `npm run demo` as CI runs it: `node scripts/demo.mjs` (a supernode and three peers in
 * command mode) exits 0 and its transcript shows the key events. The build is done by the
 * global setup. The demo stops its own programs; if it hangs, this test stops the demo
 * (SIGTERM by pid, then SIGKILL to its process group: the demo and what it started).
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, it, expect, beforeAll, afterEach, inject } from 'vitest'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const DEMO = join(ROOT, 'scripts/demo.mjs')
/** The demo's own step timeouts are 60 s (100 s for one); it normally takes under a minute. */
const DEMO_TIMEOUT_MS = 220_000
const KILL_GRACE_MS = 15_000

interface Run { code: number | null, signal: NodeJS.Signals | null, stdout: string, stderr: string }

let demo: ChildProcess | undefined

beforeAll(() => {
  const buildError = inject('buildError')
  if (buildError !== '') throw new Error(buildError)
})

function running (child: ChildProcess): boolean {
  return child.exitCode == null && child.signalCode == null
}

/** SIGTERM to the demo (it stops its programs), then SIGKILL to its whole process group. */
async function stopDemo (child: ChildProcess): Promise<void> {
  if (!running(child)) return
  const closed = new Promise(resolve => child.once('close', resolve))
  try { process.kill(child.pid!, 'SIGTERM') } catch {}
  const timer = setTimeout(() => {
    try { process.kill(-child.pid!, 'SIGKILL') } catch {}
  }, KILL_GRACE_MS)
  await closed
  clearTimeout(timer)
}

afterEach(async () => {
  if (demo != null) await stopDemo(demo)
  demo = undefined
})

async function runDemo (): Promise<Run> {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('CONF_CHAT_') && k !== 'DEBUG') env[k] = v
  // its own process group, so that a hung demo can be killed with everything it started
  const child = spawn(process.execPath, [DEMO], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
  demo = child
  let stdout = ''
  let stderr = ''
  child.stdout!.setEncoding('utf8').on('data', (s: string) => { stdout += s })
  child.stderr!.setEncoding('utf8').on('data', (s: string) => { stderr += s })
  let timedOut = false
  const timer = setTimeout(() => {
    timedOut = true
    stopDemo(child).catch(() => {})
  }, DEMO_TIMEOUT_MS)
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>(resolve => {
    child.once('close', (c, s) => { resolve([c, s]) })
  })
  clearTimeout(timer)
  if (timedOut) throw new Error(`the demo did not finish within ${DEMO_TIMEOUT_MS / 1000} s\n${stdout}\n${stderr}`)
  return { code, signal, stdout, stderr }
}

/** A line the program `name` printed, as the transcript shows it. */
function printed (name: string, text: string): RegExp {
  const escaped = text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/<time>/g, '\\d\\d:\\d\\d:\\d\\d').replace(/<conf>/g, 'conf-[0-9a-f]+')
  return new RegExp(`^ *\\d+\\.\\ds \\[${name}\\] +\\| ${escaped}$`, 'm')
}

describe('npm run demo', () => {
  it('plays the scripted conversation, shows the key events, exits 0 and leaves no program running', async () => {
    const run = await runDemo()
    const report = `exit ${run.code ?? run.signal}\n--- stdout:\n${run.stdout}\n--- stderr:\n${run.stderr}`
    expect(run.code, report).toBe(0)
    expect(run.stderr, report).toBe('')
    const out = run.stdout

    // registrations
    for (const [name, fullName] of [['alice', 'Alice Adams'], ['bob', 'Bob Brown'], ['carol', 'Carol Clark']]) {
      expect(out, report).toMatch(printed(name!, `[register] Registered ${name} (${fullName}); logged in`))
    }
    // friendships accepted
    expect(out, report).toMatch(printed('alice', '[friends] bob accepted: you are now friends'))
    expect(out, report).toMatch(printed('alice', '[friends] carol accepted: you are now friends'))
    // live direct messages, both ways
    expect(out, report).toMatch(printed('bob', '[DM from alice] (<time>) hi Bob, are you there?'))
    expect(out, report).toMatch(printed('alice', '[DM from bob] (<time>) yes! live from my peer'))
    // offline: queued, then listed to carol at login with the conference messages
    expect(out, report).toMatch(printed('alice', '[msg] to carol: queued for offline delivery'))
    expect(out, report).toMatch(printed('carol', '[offline] You have 3 message(s):'))
    expect(out, report).toMatch(printed('carol', '  [<time>] [DM from alice] see you at the meeting tomorrow'))
    expect(out, report).toMatch(printed('carol', '  [<time>] [CONF <conf> / from alice] welcome to the team chat'))
    // the conference: created, messages received by the members
    expect(out, report).toMatch(printed('alice', '[conf-create] Created conference <conf> (team) with participants: alice, bob, carol'))
    expect(out, report).toMatch(printed('bob', '[CONF <conf> / from alice] (<time>) welcome to the team chat'))
    expect(out, report).toMatch(printed('alice', '[CONF <conf> / from bob] (<time>) thanks Alice'))
    expect(out, report).toMatch(/\[bob\] +\| .*\[CONF conf-[0-9a-f]+ \/ from carol\] .*hello both, I am back$/m)
    // passwords are typed but never shown
    expect(out.match(/\[(alice|bob|carol)\] +> \*\*\*$/gm), report).toHaveLength(4)
    expect(out, report).not.toMatch(/secret/)
    expect(out, report).toMatch(/^demo passed: 10\/10 steps in \d+\.\d s$/m)

    // every program the demo started (pids in its `$` lines) is gone
    const pids = [...out.matchAll(/\(pid (\d+)\)$/gm)].map(m => Number(m[1]))
    expect(pids, report).toHaveLength(4)
    for (const pid of pids) expect(() => process.kill(pid, 0), `pid ${pid} still runs`).toThrow()
  }, DEMO_TIMEOUT_MS + 2 * KILL_GRACE_MS)
})
