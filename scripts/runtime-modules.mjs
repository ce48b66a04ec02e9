#!/usr/bin/env node
/**
 * The folders under node_modules that a package needs at run time: the package and,
 * recursively, its dependencies (and optional ones that are installed), as npm laid them
 * out. The Dockerfile copies only these into its final stage: the bundles hold all the
 * rest (scripts/build-bundles.mjs keeps outside only native addons and what a worker loads by path).
 *
 *   node scripts/runtime-modules.mjs [package...]   # default: what the bundles load at run time (RUNTIME)
 *
 * prints one folder a line, relative to the project's root.
 */
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { RUNTIME } from './build-bundles.mjs'

const ROOT = fileURLToPath(new URL('..', import.meta.url))

/** Node's lookup: node_modules/<name> in `from`, then in each folder above it, up to the root. */
function locate (name, from) {
  for (let dir = from; ; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', name)
    if (existsSync(join(candidate, 'package.json'))) return candidate
    if (dir === ROOT || dirname(dir) === dir) return undefined
  }
}

export function runtimeModules (names) {
  const found = new Set()
  const visit = (name, from, optional) => {
    const dir = locate(name, from)
    if (dir == null) {
      if (optional) return
      throw new Error(`${name} (needed from ${relative(ROOT, from) || '.'}) is not installed`)
    }
    if (found.has(dir)) return
    found.add(dir)
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'))
    for (const dep of Object.keys(pkg.dependencies ?? {})) visit(dep, dir, false)
    for (const dep of Object.keys(pkg.optionalDependencies ?? {})) visit(dep, dir, true)
  }
  for (const name of names) visit(name, ROOT, false)
  return [...found].map(dir => relative(ROOT, dir)).sort()
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const names = process.argv.slice(2)
  for (const dir of runtimeModules(names.length > 0 ? names : RUNTIME)) console.log(dir)
}
