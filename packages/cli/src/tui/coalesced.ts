/**
 * A task that may be asked for many times in a row (each message shown asks for a read
 * receipt): one run at a time, and one more after it for all the asks that came during it.
 */
export function coalesced (task: () => Promise<void>): { run: () => void, idle: () => Promise<void> } {
  let running: Promise<void> | undefined
  let again = false
  const run = (): void => {
    if (running != null) { again = true; return }
    running = task().catch(() => {}).finally(() => {
      running = undefined
      if (again) { again = false; run() }
    })
  }
  return { run, idle: async () => { while (running != null) await running } }
}
