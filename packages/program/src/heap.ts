/**
 * How the programs' node process is set up, before any of their JavaScript runs: V8 flags
 * on node's command line and glibc malloc settings in its environment. Every way of
 * starting the programs passes both (`npm run node` and `npm run supernode`, the bundles'
 * `#!` line, the Docker image's ENV, the test and benchmark harnesses), and
 * test/bundles.test.ts checks that each does.
 *
 * `--max-semi-space-size=1`: the young generation stays at 1 MiB per semi-space instead
 * of growing up to 16 (Node 20's default maximum: 32 MiB of young generation, mostly empty
 * between collections and all of it resident). A peer allocates in small bursts (a
 * message, a DHT response), so a small young generation costs a few more, short,
 * scavenges. V8 reads this maximum only when the heap is set up, before any JavaScript
 * runs, so it cannot be set from the program itself. The programs used to set
 * `--semi-space-growth-factor=1` at run time instead: that held for a test's churn of
 * short-lived objects but not in a peer, whose young generation V8 still resized up to
 * 32 MiB while it registered users (measured by sampling `v8.getHeapSpaceStatistics()`
 * every 20 ms; with the command-line flag it stayed at 2 MiB).
 */
export const NODE_FLAGS: readonly string[] = ['--max-semi-space-size=1']

/**
 * `MALLOC_MMAP_THRESHOLD_=16384`: glibc serves blocks of 16 KiB and more with their own
 * mmap and gives them back to the system when they are freed. By default such blocks (up
 * to 128 KiB, and the threshold rises to 32 MiB as big blocks are freed) come from the
 * process's heap, which glibc can shrink only from its top: V8's compiler zones, which are
 * allocated while the modules load and the code warms up, and freed soon after, left
 * 13-14 MiB of heap resident that nothing used. An idle peer measured 94.6 MiB RSS
 * without it and 76.7 MiB with it (the heap part 16.9 -> 3.9 MiB, /proc/<pid>/smaps);
 * 32 KiB saved the same, 64 KiB nothing. The cost: every 64 KiB buffer Node reads a socket
 * into is mapped and unmapped too (about 15 % fewer acked DMs per second at 64 in flight,
 * within the runs' spread at 16: README's "Memory and start-up of a peer"). glibc reads it
 * when the process starts; other C libraries (musl) ignore it.
 */
export const MALLOC_ENV: Readonly<Record<string, string>> = { MALLOC_MMAP_THRESHOLD_: '16384' }

/** The programs' start command as a shell (or `env -S`) line: `MALLOC_…=… node --…`. */
export const NODE_COMMAND = [...Object.entries(MALLOC_ENV).map(([k, v]) => `${k}=${v}`), 'node', ...NODE_FLAGS].join(' ')
