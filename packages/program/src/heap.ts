/**
 * The programs' V8 heap settings, applied when this module is imported: the entry points
 * (packages/cli/src/main.ts, packages/supernode/src/main.ts) import it first, so the
 * settings hold however the program is started (`npm run node`, the bundle, `node
 * .../dist/main.js`, Docker) without NODE_OPTIONS or flags on a command line.
 */
import { setFlagsFromString } from 'node:v8'

/**
 * The young generation keeps its initial size (1 MiB per semi-space on 64-bit V8)
 * instead of doubling up to 16 MiB per semi-space (Node 20's default maximum, 32 MiB of
 * young generation, mostly empty between collections and all of it resident).
 *
 * Why the growth factor and not `--max-semi-space-size=1`: V8 reads the maximum only when
 * the heap is set up, before any JavaScript runs, so from here it has no effect; the
 * growth factor is read each time the young generation would grow (packages/program/test
 * checks that it stays at its initial size). The effect is the same as the command-line
 * flag: idle RSS of the node program 93.7 -> 87.1 MiB (bundled, joined, 5 s idle).
 * A peer allocates in small bursts (a message, a DHT response), so a small young
 * generation costs a few more, short, scavenges.
 */
export const SEMI_SPACE_GROWTH_FACTOR = 1

setFlagsFromString(`--semi-space-growth-factor=${SEMI_SPACE_GROWTH_FACTOR}`)
