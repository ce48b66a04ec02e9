/**
 * The programs' bundles and start-up settings: every way of starting a program (npm
 * scripts, `bin`, Dockerfile, docker-compose.yml, the end-to-end tests' helper) runs the
 * bundle `npm run build` makes; `npm run node`'s pre-step rebuilds exactly when a source
 * changed; every one of them passes the programs' V8 flags, which keep the young generation
 * small. That the bundled programs
 * start, join, answer commands and run the terminal UI (loaded only when it starts) is
 * tested by programs.test.ts, accounts-e2e.test.ts and tui-e2e.test.ts, which run them.
 */
import { execFile } from 'node:child_process'
import { builtinModules } from 'node:module'
import { mkdir, mkdtemp, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterEach, describe, expect, inject, it } from 'vitest'
import { parse } from 'yaml'
import { NODE_MAIN, SUPERNODE_MAIN } from './helpers/programs.js'
import { MALLOC_ENV, NODE_COMMAND, NODE_FLAGS } from '@conf-chat/program/heap'
// @ts-expect-error: plain JavaScript build scripts, no type declarations
import { BUNDLES } from '../scripts/build-bundles.mjs'
// @ts-expect-error: plain JavaScript build scripts, no type declarations
import { staleReason } from '../scripts/build-if-stale.mjs'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const run = promisify(execFile)
const outputs: string[] = (BUNDLES as Array<{ output: string }>).map(b => b.output)
/** `s` as a literal part of a regular expression. */
const escapeRegExp = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

describe('the bundled programs are what every start command runs', () => {
  it('npm run build made both bundles, executable, with only built-ins and the native addons (LevelDB, libsodium) left to import', async () => {
    expect(inject('buildError')).toBe('')
    expect(outputs.sort()).toEqual(['packages/cli/dist/conf-chat.js', 'packages/supernode/dist/conf-chat-supernode.js'])
    for (const output of outputs) {
      const file = join(ROOT, output)
      expect((await stat(file)).mode & 0o111).not.toBe(0)
      const code = await readFile(file, 'utf8')
      expect(code.startsWith(`#!/usr/bin/env -S ${NODE_COMMAND}\n`)).toBe(true)
      // the bundles are written without whitespace: `import{a}from"x";`
      const imported = new Set([...code.matchAll(/(?:^|;)import\b[^;"'`]*?from\s*["'`]([^"'`]+)["'`]/gm)].map(m => m[1]))
      // CommonJS code calls the bundle's require helper (`X = createRequire(import.meta.url)`, its name shortened)
      const createRequireAs = code.match(/import\{createRequire as ([\w$]+)\}from"node:module"/)?.[1]
      const helper = createRequireAs == null ? undefined : code.match(new RegExp(`([\\w$]+)=(?:\\(\\(\\)=>)?${escapeRegExp(createRequireAs)}\\(import\\.meta\\.url\\)`))?.[1]
      const required = new Set(helper == null ? [] : [...code.matchAll(new RegExp(`(?<![\\w$.])${escapeRegExp(helper)}\\(["'\`]([^"'\`]+)["'\`]\\)`, 'g'))].map(m => m[1]))
      expect(imported.size).toBeGreaterThan(0)
      // the native addons are the only packages imported from node_modules at run time
      expect([...imported, ...required]).toEqual(expect.arrayContaining(['classic-level', 'sodium-native']))
      for (const name of [...imported, ...required]) {
        expect(['classic-level', 'sodium-native'].includes(name) || builtinModules.includes(name.replace(/^node:/, '')), name).toBe(true)
      }
      // the password dictionaries are left out: a worker loads them by path while it checks a password
      expect(code).not.toContain('passwords-common')
    }
  })

  it('npm scripts, bin, Dockerfile, docker-compose.yml and the tests\' helper name the bundles, with the programs\' V8 flags and malloc setting', async () => {
    const flags = NODE_FLAGS.join(' ')
    expect(NODE_COMMAND).toBe(`MALLOC_MMAP_THRESHOLD_=16384 node ${flags}`)
    const pkg = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8'))
    expect(pkg.scripts.node).toBe(`${NODE_COMMAND} packages/cli/dist/conf-chat.js`)
    expect(pkg.scripts.supernode).toBe(`${NODE_COMMAND} packages/supernode/dist/conf-chat-supernode.js`)
    expect(pkg.scripts.prenode).toBe('node scripts/build-if-stale.mjs')
    expect(pkg.scripts.presupernode).toBe('node scripts/build-if-stale.mjs')
    expect(pkg.scripts.prepare).toContain('scripts/build-bundles.mjs')
    const cli = JSON.parse(await readFile(join(ROOT, 'packages/cli/package.json'), 'utf8'))
    const supernode = JSON.parse(await readFile(join(ROOT, 'packages/supernode/package.json'), 'utf8'))
    expect(join(ROOT, 'packages/cli', cli.bin['conf-chat'])).toBe(NODE_MAIN)
    expect(join(ROOT, 'packages/supernode', supernode.bin['conf-chat-supernode'])).toBe(SUPERNODE_MAIN)
    expect(NODE_MAIN).toBe(join(ROOT, 'packages/cli/dist/conf-chat.js'))
    expect(SUPERNODE_MAIN).toBe(join(ROOT, 'packages/supernode/dist/conf-chat-supernode.js'))
    const dockerfile = await readFile(join(ROOT, 'Dockerfile'), 'utf8')
    expect(dockerfile).toMatch(/^CMD \["node", "packages\/cli\/dist\/conf-chat\.js"\]$/m)
    // the image's commands (CMD, compose's, `docker-compose run`) get the flags from its environment
    expect(dockerfile).toContain(`    NODE_OPTIONS=${flags} \\\n`)
    for (const [name, value] of Object.entries(MALLOC_ENV)) expect(dockerfile).toMatch(new RegExp(`^    ${name}=${value}$`, 'm'))
    const compose = parse(await readFile(join(ROOT, 'docker-compose.yml'), 'utf8'), { merge: true })
    expect(compose.services.supernode.command).toEqual(['node', 'packages/supernode/dist/conf-chat-supernode.js'])
    for (const name of ['alice', 'bob', 'carol']) expect(compose.services[name].command).toEqual(['node', 'packages/cli/dist/conf-chat.js'])
  })
})

describe('npm run node\'s pre-step rebuilds only when a source changed', () => {
  let root: string | undefined
  afterEach(async () => { if (root != null) await rm(root, { recursive: true, force: true }) })

  /** Sets a file's (or folder's) modification time, in seconds since the epoch. */
  const age = async (path: string, seconds: number): Promise<void> => { await utimes(path, seconds, seconds) }

  it('says what is stale: a missing bundle, a newer source, an added file, package.json; nothing once built', async () => {
    root = await mkdtemp(join(tmpdir(), 'conf-chat-stale-'))
    const src = join(root, 'packages/node/src')
    await mkdir(join(src, 'network'), { recursive: true })
    for (const file of ['package.json', 'packages/node/package.json', 'packages/node/src/index.ts', 'packages/node/src/network/peer.ts']) {
      await writeFile(join(root, file), '{}')
      await age(join(root, file), 1000)
    }
    for (const dir of [join(src, 'network'), src]) await age(dir, 1000)
    expect(staleReason(root)).toMatch(/is not built yet$/)

    for (const output of outputs) {
      await mkdir(join(root, dirname(output)), { recursive: true })
      await writeFile(join(root, output), '')
      await age(join(root, output), 2000)
    }
    expect(staleReason(root)).toBeUndefined()

    await age(join(src, 'network/peer.ts'), 3000)
    expect(staleReason(root)).toBe(`packages/node/src/network/peer.ts is newer than ${outputs[0]}`)
    await age(join(src, 'network/peer.ts'), 1000)

    await rm(join(src, 'index.ts')) // a removed file changes its folder's time
    expect(staleReason(root)).toMatch(/^packages\/node\/src is newer than /)
    await age(src, 1000)
    expect(staleReason(root)).toBeUndefined()

    await age(join(root, 'package.json'), 3000)
    expect(staleReason(root)).toMatch(/^package\.json is newer than /)
  })

  it('the real tree is up to date after the build, so `npm run node` starts the bundle without building', async () => {
    expect(inject('buildError')).toBe('')
    expect(staleReason()).toBeUndefined()
    const { stdout, stderr } = await run(process.execPath, [join(ROOT, 'scripts/build-if-stale.mjs'), '--why'], { cwd: ROOT })
    expect(stdout).toBe('')
    expect(stderr).toBe('the bundles are up to date\n')
  })
})

describe('the programs\' V8 flags and malloc setting', () => {
  /** The young generation's size (MiB) of a peer-like load: ~100 MiB of short-lived objects, and 1 in 3 kept. */
  const youngGenerationMiB = async (flags: readonly string[]): Promise<number> => {
    const churn = 'let keep = []; const old = []; for (let i = 0; i < 2e6; i++) { const o = { i }; keep.push(o); if (i % 3 === 0) old.push(o); if (keep.length > 1e5) keep = [] }' +
      'console.log(require("node:v8").getHeapSpaceStatistics().find(s => s.space_name === "new_space").space_size / 1048576)'
    const { stdout } = await run(process.execPath, [...flags, '-e', churn], { cwd: ROOT })
    return Number(stdout.trim())
  }

  it('keep the young generation at 2 MiB (V8 grows it to 32 MiB without them)', async () => {
    expect(await youngGenerationMiB([])).toBeGreaterThan(8)
    expect(await youngGenerationMiB(NODE_FLAGS)).toBeLessThanOrEqual(2)
  })

  /**
   * The process heap's resident size (MiB, the `[heap]` mapping of /proc/self/smaps) after
   * 2,000 blocks of 32 KiB were allocated and all but the last freed: the blocks V8's
   * compiler zones and Node's buffers are made of.
   */
  const heapAfterFreeMiB = async (env: Readonly<Record<string, string>>): Promise<number> => {
    const churn = 'const fs = require("node:fs"); let keep = []; for (let i = 0; i < 2000; i++) keep.push(Buffer.allocUnsafeSlow(32768).fill(1));' +
      'const last = keep.pop(); keep = null; gc();' +
      'setTimeout(() => { gc(); setTimeout(() => { let cur, kb = 0;' +
      ' for (const l of fs.readFileSync("/proc/self/smaps", "utf8").split("\\n")) { if (/^[0-9a-f]+-[0-9a-f]+ /.test(l)) cur = l.trim().split(/\\s+/)[5]; else if (cur === "[heap]" && l.startsWith("Rss:")) kb += Number(l.split(/\\s+/)[1]) }' +
      ' console.log(kb / 1024, last.length) }, 200) }, 200)'
    const { stdout } = await run(process.execPath, ['--expose-gc', '-e', churn], { cwd: ROOT, env: { ...process.env, ...env } })
    return Number(stdout.trim().split(' ')[0])
  }

  it('give freed blocks of 16 KiB and more back to the system (64 MiB of 32 KiB blocks stay resident without)', async () => {
    expect(await heapAfterFreeMiB({})).toBeGreaterThan(48)
    expect(await heapAfterFreeMiB(MALLOC_ENV)).toBeLessThan(16)
  })

  it('are what the tests\' helper starts the programs with', async () => {
    const { Programs } = await import('./helpers/programs.js')
    const programs = new Programs()
    try {
      const p = programs.node({ home: await programs.home(), args: ['--help'] })
      expect(await p.waitForExit(30_000), p.transcript()).toEqual({ code: 0, signal: null })
      expect(p.child.spawnargs.slice(1, 1 + NODE_FLAGS.length)).toEqual([...NODE_FLAGS])
      for (const [name, value] of Object.entries(MALLOC_ENV)) expect(p.env[name]).toBe(value)
    } finally {
      await programs.cleanup()
    }
  })
})
