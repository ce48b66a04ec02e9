#!/usr/bin/env node
/**
 * Bundles each program into one file with rolldown, after `tsc -b` (run as part of
 * `npm run build`, and so of `npm ci`/`npm install` through `prepare`):
 *
 *   packages/cli/dist/main.js        -> packages/cli/dist/conf-chat.js            (`npm run node`)
 *   packages/supernode/dist/main.js  -> packages/supernode/dist/conf-chat-supernode.js (`npm run supernode`)
 *
 * Why: Node's module loader resolves, reads and compiles each of the ~1,000 files of
 * libp2p and its dependencies one by one; one file loads faster and with less memory
 * (3 starts each on a quiet machine, against one supernode: spawn -> "joined" 1,014-1,343
 * -> 512-592 ms, idle RSS 110 -> 94 MiB; README's "Memory and start-up of a peer"). The bundle is built from tsc's output, so it is exactly the
 * type-checked code. The bundles are written without whitespace and comments, in ASCII only,
 * local names shortened, function and class names kept (V8 keeps a script's source in
 * memory: README's "Memory and start-up"). Only what cannot be bundled stays outside: Node's built-in modules,
 * classic-level (LevelDB) and sodium-native (libsodium's Argon2id), native addons that find
 * their compiled library next to themselves, and the password dictionaries (WORKER_LOADED).
 * dist/main.js (unbundled) still runs the same program.
 *
 *   node scripts/build-bundles.mjs
 */
import { readFileSync } from 'node:fs'
import { chmod } from 'node:fs/promises'
import { builtinModules } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('..', import.meta.url))

/** Each program: its tsc-built entry and its bundle (the file the npm scripts, Docker and `bin` run). */
export const BUNDLES = [
  { input: 'packages/cli/dist/main.js', output: 'packages/cli/dist/conf-chat.js' },
  { input: 'packages/supernode/dist/main.js', output: 'packages/supernode/dist/conf-chat-supernode.js' }
]

/** Native addons: loaded from node_modules at run time. */
export const NATIVE = ['classic-level', 'sodium-native']
/**
 * Loaded by path in a short-lived worker (protocol's password-strength.ts: the password
 * dictionaries), never imported by the bundles: left out so that no peer holds their source.
 */
export const WORKER_LOADED = ['@zxcvbn-ts/core', '@zxcvbn-ts/language-common', '@zxcvbn-ts/language-en']
/** What the bundles load from node_modules at run time (the Dockerfile copies these). */
export const RUNTIME = [...NATIVE, ...WORKER_LOADED]
const external = [/^node:/, ...builtinModules, ...NATIVE]

/**
 * A module that reads its own package.json at run time (`createRequire(import.meta.url)`,
 * as @achingbrain/ssdp does for its name and version) would look for it next to the
 * bundle: its name and version (all they read of it) are put in its place at build time.
 */
const inlinePackageJson = {
  name: 'inline-package-json',
  transform (code, id) {
    if (!code.includes('createRequire(import.meta.url)')) return null
    return code.replace(/\b\w+\((['"`])((?:\.\.?\/)+package\.json)\1\)/g, (_call, _quote, rel) => {
      const { name, version } = JSON.parse(readFileSync(join(dirname(id), rel), 'utf8'))
      return `(${JSON.stringify({ name, version })})`
    })
  }
}

/** Bundles every program; throws on a bundler warning, so that nothing is silently left out. */
export async function buildBundles () {
  // loaded here, not at the top: scripts/build-if-stale.mjs imports BUNDLES on every start
  const { build } = await import('rolldown')
  for (const { input, output } of BUNDLES) {
    const warnings = []
    await build({
      cwd: ROOT,
      input: join(ROOT, input),
      platform: 'node',
      external,
      plugins: [inlinePackageJson],
      onLog: (level, log) => { if (level === 'warn') warnings.push(log.message) },
      output: {
        file: join(ROOT, output),
        format: 'esm',
        // one file: code a program loads later would otherwise be a chunk of its own
        codeSplitting: false,
        // V8 keeps a script's whole source for as long as it runs (functions compile lazily
        // from it): without comments and whitespace, and with short local names, the source
        // is smaller (2.54 -> 2.12 MB). Function and class names are kept (`keepNames`) and
        // nothing is compressed, so stack traces and `.name` read as before.
        minify: { compress: false, mangle: { keepNames: true }, codegen: { removeWhitespace: true, asciiOnly: true } },
        comments: false
      }
    })
    if (warnings.length > 0) throw new Error(`rolldown warned while bundling ${input}:\n${warnings.join('\n')}`)
    await chmod(join(ROOT, output), 0o755)
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const t0 = performance.now()
  await buildBundles()
  console.log(`bundled ${BUNDLES.map(b => b.output).join(', ')} in ${Math.round(performance.now() - t0)} ms`)
}
