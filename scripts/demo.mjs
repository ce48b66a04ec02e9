#!/usr/bin/env node
/**
 * `npm run demo`: a supernode and three peers (alice, bob, carol), each a separate process
 * with its own temporary CONF_CHAT_HOME on 127.0.0.1, play a short scripted conversation
 * through command mode and the demo prints what is typed (`>`) and what the programs print
 * (`|`, stderr `!`). Every step waits for the lines that prove it worked; if one does not
 * come within its timeout, the demo says which step and which program, shows that program's
 * last lines and exits 1. So it is a smoke test too (CI runs it). On success, failure,
 * SIGINT or SIGTERM it stops the processes it started (by pid: SIGTERM, then SIGKILL) and
 * deletes its temporary directories.
 *
 * Run after a build (`npm run demo` builds first): node scripts/demo.mjs
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const SUPERNODE_MAIN = join(ROOT, 'packages/supernode/dist/main.js')
const NODE_MAIN = join(ROOT, 'packages/cli/dist/main.js')

/** How long one expected line may take (two cores, maybe shared with test runs). */
const WAIT_MS = 60_000
/** A peer checks its mailbox every 60 s while logged in: a line that may come that way waits longer. */
const MAILBOX_WAIT_MS = 100_000
/** After SIGTERM, how long a program may take to stop before SIGKILL. */
const STOP_GRACE_MS = 10_000
/** Fast settings for the demo (README flags table): cheap password hashing, short presence expiry. */
const FAST_FLAGS = ['--bcrypt-cost', '4', '--kdf-memory', '8', '--presence-ttl', '30']
const HOST = '127.0.0.1'

/** Start-up lines left out of the transcript (kept for failure reports); the supernode's address is shown. */
const BOILERPLATE = {
  supernode: /^(supernode peer id: |data directory: |address file: )/,
  peer: /^(peer id: |listening on |data directory: |bootstrap: )/
}
const TIME = '\\(\\d\\d:\\d\\d:\\d\\d\\)'

const started = Date.now()
const programs = []
const tempDirs = []

// ---------------------------------------------------------------- transcript

let out = process.stdout
process.stdout.on('error', () => { out = null }) // a reader that went away (| head) must not stop cleanup
function say (line) { out?.write(line + '\n') }
const elapsed = () => `${((Date.now() - started) / 1000).toFixed(1)}s`.padStart(6)
const NAME_WIDTH = '[supernode]'.length
function show (name, mark, text) { say(`${elapsed()} ${`[${name}]`.padEnd(NAME_WIDTH)} ${mark} ${text}`) }

// ---------------------------------------------------------------- programs

class StepError extends Error {
  constructor (message, program) {
    super(message)
    this.program = program
  }
}

/** One program: spawned with its own home, stdout read line by line, lines typed on stdin. */
class Program {
  /** `shownArgs`: the arguments as the transcript shows them (long addresses abbreviated). */
  constructor (name, main, args, { boilerplate, shownArgs = args }) {
    this.name = name
    this.lines = [] // stdout and stderr, for failure reports
    this.stdout = []
    this.matched = new Set() // indexes of stdout lines already used by waitFor()
    this.waiters = new Set()
    this.exit = null
    this.home = mkdtempSync(join(tmpdir(), `conf-chat-demo-${name}-`))
    tempDirs.push(this.home)
    const env = {}
    for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('CONF_CHAT_') && k !== 'DEBUG') env[k] = v
    Object.assign(env, { NO_COLOR: '1', CONF_CHAT_HOME: this.home })
    this.child = spawn(process.execPath, [main, ...args], { cwd: ROOT, env, stdio: ['pipe', 'pipe', 'pipe'] })
    this.pid = this.child.pid
    show(name, '$', `node ${relative(ROOT, main)} ${shownArgs.join(' ')}   (pid ${this.pid})`)
    programs.push(this)
    this.child.stdin.on('error', () => {}) // typing to a program that already exited
    createInterface({ input: this.child.stdout }).on('line', line => {
      this.stdout.push(line)
      this.lines.push(line)
      if (!boilerplate.test(line)) show(name, '|', line)
      this.check()
    })
    createInterface({ input: this.child.stderr }).on('line', line => {
      this.lines.push(`(stderr) ${line}`)
      show(name, '!', line)
    })
    this.exited = new Promise(resolve => {
      this.child.once('close', (code, signal) => {
        this.exit = { code, signal }
        resolve(this.exit)
        this.check()
      })
    })
    this.child.once('error', err => {
      this.lines.push(`(spawn error) ${err.message}`)
      this.exit ??= { code: null, signal: null }
      this.check()
    })
  }

  get running () { return this.exit == null && this.child.exitCode == null && this.child.signalCode == null }

  /** Type one line; `secret` lines (passwords) show as ***. */
  send (line, { secret = false } = {}) {
    show(this.name, '>', secret ? '***' : line)
    this.child.stdin.write(line + '\n')
  }

  /** The first stdout line not matched before that matches `re` (now or within `timeoutMs`). */
  waitFor (re, timeoutMs = WAIT_MS) {
    return new Promise((resolve, reject) => {
      const waiter = {
        check: () => {
          for (let i = 0; i < this.stdout.length; i++) {
            if (this.matched.has(i)) continue
            const match = this.stdout[i].match(re)
            if (match != null) {
              this.matched.add(i)
              finish()
              resolve(match)
              return
            }
          }
          if (this.exit != null) {
            finish()
            reject(new StepError(`${this.name} exited (${describeExit(this.exit)}) before printing a line matching ${re}`, this))
          }
        }
      }
      const timer = setTimeout(() => {
        finish()
        reject(new StepError(`${this.name} printed no line matching ${re} within ${timeoutMs / 1000} s`, this))
      }, timeoutMs)
      const finish = () => {
        clearTimeout(timer)
        this.waiters.delete(waiter)
      }
      this.waiters.add(waiter)
      waiter.check()
    })
  }

  check () { for (const w of [...this.waiters]) w.check() }

  /** Waits for the program to end by itself (after `quit` or a signal). */
  async waitForExit (timeoutMs = WAIT_MS) {
    let timer
    const timeout = new Promise((_resolve, reject) => {
      timer = setTimeout(() => { reject(new StepError(`${this.name} did not exit within ${timeoutMs / 1000} s`, this)) }, timeoutMs)
    })
    try {
      return await Promise.race([this.exited, timeout])
    } finally {
      clearTimeout(timer)
    }
  }

  /** SIGTERM (a clean stop), then SIGKILL if it is still running after the grace time. */
  async stop () {
    if (!this.running) return
    try { process.kill(this.pid, 'SIGTERM') } catch {}
    let timer
    const graceOver = new Promise(resolve => { timer = setTimeout(() => resolve('timeout'), STOP_GRACE_MS) })
    const result = await Promise.race([this.exited, graceOver])
    clearTimeout(timer)
    if (result === 'timeout' && this.running) {
      try { process.kill(this.pid, 'SIGKILL') } catch {}
      await this.exited
    }
  }
}

function describeExit (exit) {
  return exit.signal != null ? `signal ${exit.signal}` : `code ${exit.code}`
}

function supernode () {
  return new Program('supernode', SUPERNODE_MAIN, ['--host', HOST, '--port', '0'], { boilerplate: BOILERPLATE.supernode })
}

function peer (name, bootstrap) {
  const args = (addr) => ['--commands', '--host', HOST, '--port', '0', '--bootstrap', addr, ...FAST_FLAGS]
  return new Program(name, NODE_MAIN, args(bootstrap), { boilerplate: BOILERPLATE.peer, shownArgs: args('<supernode address>') })
}

// ---------------------------------------------------------------- cleanup

let cleaning
/** Set by SIGINT or SIGTERM: the steps still running fail, and that is no failure to report. */
let interrupted = false
/** Stops every program this demo started (by pid) and deletes its temp dirs; runs once. */
function cleanup () {
  cleaning ??= (async () => {
    await Promise.all(programs.map(async p => { await p.stop() }))
    for (const dir of tempDirs) {
      try { rmSync(dir, { recursive: true, force: true }) } catch {}
    }
  })()
  return cleaning
}

// last resort (an exception nobody caught): no child may outlive the demo
process.on('exit', () => {
  for (const p of programs) if (p.running) { try { process.kill(p.pid, 'SIGKILL') } catch {} }
  for (const dir of tempDirs) { try { rmSync(dir, { recursive: true, force: true }) } catch {} }
})

for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]]) {
  process.on(signal, () => {
    if (interrupted) process.exit(code) // a second Ctrl+C: no more waiting (the exit handler kills)
    interrupted = true
    say(`\n${signal}: stopping the demo's programs`)
    cleanup().finally(() => { process.exit(code) })
  })
}

// ---------------------------------------------------------------- the script

const PASSWORDS = { alice: 'alice-secret-1', bob: 'bob-secret-2', carol: 'carol-secret-3' }
const FULL_NAMES = { alice: 'Alice Adams', bob: 'Bob Brown', carol: 'Carol Clark' }

let bootstrap, alice, bob, carol, confId

const steps = [
  ['start the supernode', async () => {
    const s = supernode()
    const [, addr] = await s.waitFor(/^listening on (\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\/\S+)$/)
    await s.waitFor(/^address file: /)
    bootstrap = addr
  }],

  ['start three peers that join through the supernode', async () => {
    alice = peer('alice', bootstrap)
    bob = peer('bob', bootstrap)
    carol = peer('carol', bootstrap)
    for (const p of [alice, bob, carol]) await p.waitFor(/^joined the network via /)
  }],

  ['alice, bob and carol register', async () => {
    for (const p of [alice, bob, carol]) {
      p.send(`register ${p.name}`)
      p.send(PASSWORDS[p.name], { secret: true })
      p.send(FULL_NAMES[p.name])
      await p.waitFor(new RegExp(`^\\[register\\] Registered ${p.name} \\(${FULL_NAMES[p.name]}\\); logged in$`))
    }
  }],

  ['alice asks bob and carol to be friends; they accept', async () => {
    for (const p of [bob, carol]) {
      alice.send(`friend-add ${p.name} hi, it's Alice`)
      await alice.waitFor(new RegExp(`^\\[friends\\] Friend request sent to ${p.name} `))
      await p.waitFor(/^\[friends\] alice wants to be your friend/)
      p.send('friend-accept alice')
      await p.waitFor(/^\[friends\] You and alice are now friends/)
      await alice.waitFor(new RegExp(`^\\[friends\\] ${p.name} accepted: you are now friends$`))
    }
    alice.send('friends')
    await alice.waitFor(/^\[friends\] 2 friends$/)
    await alice.waitFor(/^ {2}bob \((online|offline)\)$/)
    await alice.waitFor(/^ {2}carol \((online|offline)\)$/)
  }],

  ['alice and bob chat live', async () => {
    alice.send('msg bob hi Bob, are you there?')
    await alice.waitFor(/^\[msg\] to bob: delivered$/)
    await bob.waitFor(new RegExp(`^\\[DM from alice\\] ${TIME} hi Bob, are you there\\?$`))
    bob.send('msg alice yes! live from my peer')
    await bob.waitFor(/^\[msg\] to alice: delivered$/)
    await alice.waitFor(new RegExp(`^\\[DM from bob\\] ${TIME} yes! live from my peer$`))
  }],

  ['carol logs out; alice leaves her a message', async () => {
    carol.send('logout')
    await carol.waitFor(/^\[logout\] Logged out carol$/)
    await alice.waitFor(/^\[presence\] carol is offline$/)
    alice.send('msg carol see you at the meeting tomorrow')
    await alice.waitFor(/^\[msg\] to carol: queued for offline delivery$/)
  }],

  ['alice starts a conference with bob and carol; alice and bob talk in it', async () => {
    alice.send('conf-create team bob carol')
    confId = (await alice.waitFor(/^\[conf-create\] Created conference (conf-[0-9a-f]+) \(team\) with participants: alice, bob, carol$/))[1]
    await bob.waitFor(new RegExp(`^\\[conf\\] alice invited you to conference ${confId} \\(team\\)$`))
    alice.send(`conf-send ${confId} welcome to the team chat`)
    await alice.waitFor(new RegExp(`^\\[conf-send\\] to ${confId}: 1 delivered, 1 queued for offline delivery$`))
    await bob.waitFor(new RegExp(`^\\[CONF ${confId} / from alice\\] ${TIME} welcome to the team chat$`))
    bob.send(`conf-send ${confId} thanks Alice`)
    await bob.waitFor(new RegExp(`^\\[conf-send\\] to ${confId}: 1 delivered, 1 queued for offline delivery$`))
    await alice.waitFor(new RegExp(`^\\[CONF ${confId} / from bob\\] ${TIME} thanks Alice$`))
  }],

  ['carol logs in again: the invite and everything sent while she was away', async () => {
    carol.send('login carol')
    carol.send(PASSWORDS.carol, { secret: true })
    await carol.waitFor(/^\[login\] Logged in as carol \(Carol Clark\)$/)
    await carol.waitFor(new RegExp(`^\\[conf\\] alice invited you to conference ${confId} \\(team\\)$`))
    await carol.waitFor(/^\[offline\] You have 3 message\(s\):$/)
    await carol.waitFor(/^ {2}\[\d\d:\d\d:\d\d\] \[DM from alice\] see you at the meeting tomorrow$/)
    await carol.waitFor(new RegExp(`^ {2}\\[\\d\\d:\\d\\d:\\d\\d\\] \\[CONF ${confId} / from alice\\] welcome to the team chat$`))
    await carol.waitFor(new RegExp(`^ {2}\\[\\d\\d:\\d\\d:\\d\\d\\] \\[CONF ${confId} / from bob\\] thanks Alice$`))
    await alice.waitFor(/^\[presence\] carol is online$/)
  }],

  ['carol answers in the conference; alice and bob receive it', async () => {
    carol.send(`conf-send ${confId} hello both, I am back`)
    await carol.waitFor(new RegExp(`^\\[conf-send\\] to ${confId}: `))
    // live, or (if carol's fresh session did not read a presence in time) from the mailbox a minute later
    const line = new RegExp(`\\[CONF ${confId} / from carol\\] .*hello both, I am back$`)
    await alice.waitFor(line, MAILBOX_WAIT_MS)
    await bob.waitFor(line, MAILBOX_WAIT_MS)
  }],

  ['everybody quits; the supernode stops', async () => {
    for (const p of [carol, bob, alice]) {
      p.send('quit')
      const exit = await p.waitForExit()
      show(p.name, '-', `exited (${describeExit(exit)})`)
      if (exit.code !== 0) throw new StepError(`${p.name} exited with ${describeExit(exit)} after quit`, p)
    }
    const s = programs.find(p => p.name === 'supernode')
    show('supernode', '-', 'SIGTERM')
    process.kill(s.pid, 'SIGTERM')
    const exit = await s.waitForExit()
    show('supernode', '-', `exited (${describeExit(exit)})`)
    if (exit.code !== 0) throw new StepError(`the supernode exited with ${describeExit(exit)} after SIGTERM`, s)
  }]
]

async function main () {
  say('conf-chat demo: a supernode and three peers (alice, bob, carol), each its own process')
  say(`with its own temporary CONF_CHAT_HOME, on ${HOST}, in command mode.`)
  say(`Fast settings for the demo: ${FAST_FLAGS.join(' ')} (README flags table).`)
  say('Lines: "$ " a program started, "> " typed into it (passwords as ***), "| " printed by it,')
  say('"! " its stderr, "- " its end. Start-up lines (peer ids, data directories) are left out.')
  let passed = 0
  for (const [index, [title, run]] of steps.entries()) {
    if (interrupted) return await new Promise(() => {}) // the signal handler cleans up and exits
    say(`\n== step ${index + 1}/${steps.length}: ${title}`)
    try {
      await run()
      passed++
    } catch (err) {
      if (interrupted) return await new Promise(() => {}) // the signal handler cleans up and exits
      const seconds = ((Date.now() - started) / 1000).toFixed(1)
      const reason = `demo FAILED at step ${index + 1}/${steps.length} (${title}): ${err.message.split('\n')[0]} [${passed}/${steps.length} steps passed, ${seconds} s]`
      const lines = [reason]
      if (err.program != null) {
        lines.push(`--- last lines of ${err.program.name} (pid ${err.program.pid}):`)
        lines.push(...err.program.lines.slice(-20).map(l => `    ${l}`))
      } else if (err.stack != null) {
        lines.push(err.stack)
      }
      say(`\n== step ${index + 1} failed: stopping the programs`)
      await cleanup()
      process.stderr.write(lines.join('\n') + '\n')
      return 1
    }
  }
  await cleanup()
  const seconds = ((Date.now() - started) / 1000).toFixed(1)
  say(`\ndemo passed: ${passed}/${steps.length} steps in ${seconds} s`)
  return 0
}

process.exitCode = await main()
