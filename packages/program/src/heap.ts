/**
 * The V8 flags the programs run with: every way of starting them passes these on node's
 * command line (`npm run node` and `npm run supernode`, the bundles' `#!` line, the Docker
 * image's NODE_OPTIONS, the test and benchmark harnesses), and test/bundles.test.ts checks
 * that each does.
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
