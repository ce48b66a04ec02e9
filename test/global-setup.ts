/**
 * Builds the packages once (`tsc -b`, incremental, then the programs' bundles) so that the
 * end-to-end tests, which run the bundled programs from dist/, work with a bare `npx vitest
 * run`. A failed build does not stop the other test files (they run the TypeScript
 * sources): the program tests report it.
 */
import { execFile } from 'node:child_process'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import type { TestProject } from 'vitest/node'

declare module 'vitest' {
  export interface ProvidedContext {
    /** Empty when `tsc -b` passed; its output otherwise. */
    buildError: string
  }
}

const ROOT = fileURLToPath(new URL('..', import.meta.url))

export default async function setup (project: TestProject): Promise<void> {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc')
  const run = async (name: string, args: string[]): Promise<string> => await new Promise<string>(resolve => {
    execFile(process.execPath, args, { cwd: ROOT, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      resolve(err == null ? '' : `${name} failed:\n${stdout}${stderr}`.trim())
    })
  })
  let error = await run('tsc -b', [tsc, '-b'])
  if (error === '') error = await run('scripts/build-bundles.mjs', ['scripts/build-bundles.mjs'])
  project.provide('buildError', error)
}
