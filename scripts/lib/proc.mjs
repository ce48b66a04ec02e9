// CPU time of processes from /proc/<pid>/stat (Linux), for idle-CPU figures.
import { execFileSync } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { sleep } from './bench.mjs'

/** Clock ticks per second (utime and stime are counted in these). */
const CLK_TCK = (() => { try { return Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100 } catch { return 100 } })()

/** CPU time (user + system) of process `pid` so far, in ms. */
export async function cpuMs (pid) {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
  // the fields after the command name (which may hold spaces) start at ") "; utime and stime are fields 14 and 15
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK * 1000
}

/** Each process's CPU use over `windowMs` (in which nothing is asked of it), in % of one core. */
export async function idleCpu (pids, windowMs) {
  const before = await Promise.all(pids.map(cpuMs))
  const t = performance.now()
  await sleep(windowMs)
  const after = await Promise.all(pids.map(cpuMs))
  const elapsed = performance.now() - t
  return pids.map((_, i) => (after[i] - before[i]) / elapsed * 100)
}
