#!/usr/bin/env node
/**
 * `npm run node`'s and `npm run supernode`'s pre-step: runs `npm run build` (tsc -b, then
 * the bundles) only when a source is newer than the programs' bundles, so that an edit
 * is always picked up, and an unchanged tree costs a few milliseconds of `stat` instead
 * of `tsc -b`'s ~500 ms up-to-date check.
 *
 * Inputs: every file and folder under packages/<pkg>/src (a folder's time changes when a
 * file in it is added, removed or renamed), each package's package.json and tsconfig.json,
 * the root's package.json, package-lock.json and tsconfig files, and the bundler script.
 *
 *   node scripts/build-if-stale.mjs [--why]     (--why: say which file is newer)
 */
import { spawnSync } from 'node:child_process'
import { readdirSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { BUNDLES } from './build-bundles.mjs'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const ROOT_INPUTS = ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.base.json', 'scripts/build-bundles.mjs']

/** mtime in ms, or undefined if the file does not exist. */
function mtime (path) {
  try { return statSync(path).mtimeMs } catch { return undefined }
}

/** The newest input under `root`: [mtime, path]. */
function newestInput (root) {
  let newest = [0, '']
  const see = path => {
    const t = mtime(path)
    if (t != null && t > newest[0]) newest = [t, path]
  }
  const walk = dir => {
    see(dir)
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name)
      if (entry.isDirectory()) walk(path)
      else see(path)
    }
  }
  for (const file of ROOT_INPUTS) see(join(root, file))
  const packages = join(root, 'packages')
  for (const pkg of readdirSync(packages)) {
    see(join(packages, pkg, 'package.json'))
    see(join(packages, pkg, 'tsconfig.json'))
    if (mtime(join(packages, pkg, 'src')) != null) walk(join(packages, pkg, 'src'))
  }
  return newest
}

/** Why a build is needed, or undefined when the bundles are newer than every input. */
export function staleReason (root = ROOT) {
  const built = BUNDLES.map(b => [mtime(join(root, b.output)), b.output])
  const missing = built.find(([t]) => t == null)
  if (missing != null) return `${missing[1]} is not built yet`
  const [oldest, oldestPath] = built.sort((a, b) => a[0] - b[0])[0]
  const [newest, newestPath] = newestInput(root)
  if (newest > oldest) return `${relative(root, newestPath)} is newer than ${oldestPath}`
  return undefined
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const reason = staleReason()
  if (process.argv.includes('--why')) console.error(reason ?? 'the bundles are up to date')
  if (reason != null) {
    const npm = process.env.npm_execpath != null ? [process.execPath, [process.env.npm_execpath]] : ['npm', []]
    // the build's output (tsc's errors too) on stderr: stdout is the program's
    const build = spawnSync(npm[0], [...npm[1], 'run', '--silent', 'build'], { cwd: ROOT, stdio: ['ignore', process.stderr, 'inherit'] })
    process.exitCode = build.status ?? 1
  }
}
