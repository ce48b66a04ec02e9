// bench:scale's table of all N (scripts/bench-scale.mjs): each figure per N, then how
// each grows per doubling of N.
import { fmt } from './bench.mjs'

const log = (...args) => console.log(...args)

/** The figures of the table: name, how to read it from a round, decimals. */
const FIGURES = [
  ['network up (s)', r => r.networkUpMs / 1000, 1],
  ['join p50 (ms)', r => r.joinMs.median, 0],
  ['join p95 (ms)', r => r.joinMs.p95, 0],
  ['joins failed', r => r.joinsFailed, 0],
  ['put p50 (ms)', r => r.putMs.median, 1],
  ['put p95 (ms)', r => r.putMs.p95, 1],
  ['put p50: lookup (ms)', r => r.putLookupMs?.median, 1],
  ['lookup RPCs that dialed (%)', r => r.rpcMs == null ? undefined : 100 * r.rpcMs.openDialed.n / ((r.rpcMs.openDialed.n + r.rpcMs.openConnected.n) || 1), 0],
  ['RPC stream open p50, dialing (ms)', r => r.rpcMs?.openDialed.median, 1],
  ['RPC stream open p50, connected (ms)', r => r.rpcMs?.openConnected.median, 1],
  ['RPC request to answer p50 (ms)', r => r.rpcMs?.answer.median, 1],
  ['network CPU per put + get (ms)', r => r.networkCpuPerPutGetMs, 0],
  ['get p50 (ms)', r => r.getMs.median, 1],
  ['get p95 (ms)', r => r.getMs.p95, 1],
  ['failed gets', r => r.failedGets, 0],
  ['put replicas p50', r => r.putReplicas.median, 0],
  ['log2 N', r => r.lookups.log2N, 2],
  ['get RPCs p50', r => r.lookups.getRpcs.median, 1],
  ['get rounds p50', r => r.lookups.getRounds.median, 1],
  ['get rounds max', r => r.lookups.getRounds.max, 0],
  ['put RPCs p50 (lookup)', r => r.lookups.putLookupRpcs.median, 1],
  ['put RPCs p50 (all)', r => r.lookups.putRpcs.median, 1],
  ['put rounds p50', r => r.lookups.putRounds.median, 1],
  ['idle CPU/peer p50 (%)', r => r.idleCpu?.perPeerPct.median, 3],
  ['idle CPU/peer max (%)', r => r.idleCpu?.perPeerPct.max, 3],
  ['idle CPU all peers (%)', r => r.idleCpu?.allPeersPct, 2],
  ['supernode idle CPU (%)', r => r.idleCpu?.supernodePct, 2],
  ['RSS/peer p50 (MiB)', r => r.rssMiB.perPeer.median, 1],
  ['RSS modules only (MiB)', r => r.rssMiB.modulesOnly.median, 1],
  ['RSS first peer (MiB)', r => r.rssMiB.firstPeer.median, 1],
  ['RSS extra peer (MiB)', r => r.rssMiB.extraPeer.median, 1],
  ['RSS supernode (MiB)', r => r.rssMiB.supernode, 1],
  ['connections/peer p50', r => r.connectionsPerPeer.median, 0],
  ['supernode connections', r => r.supernodeConnections, 0],
  ['routing table p50', r => r.routingTablePerPeer.median, 0],
  ['load average (1 min)', r => r.loadavg[0], 1]
]

/**
 * How a figure grows with N between two rounds: the factor per doubling of N,
 * (b / a) ^ (1 / log2(Nb / Na)). 1.0 is flat; 2.0 is linear in N; for a lookup
 * that grows like log N it falls towards 1 as N grows.
 */
function perDoubling (a, b, na, nb) {
  if (a == null || b == null || !(a > 0) || !(b >= 0)) return null
  return (b / a) ** (1 / Math.log2(nb / na))
}

export function printTable (rounds) {
  const ok = rounds.filter(r => r.error == null)
  const w = 10
  // the name column: as wide as the longest name
  const n = Math.max(26, ...FIGURES.map(([name]) => name.length + 1))
  log(`\n${'peers (N)'.padEnd(n)} ${rounds.map(r => String(r.peers).padStart(w)).join(' ')}`)
  log(`${'processes'.padEnd(n)} ${rounds.map(r => String(r.processes.length).padStart(w)).join(' ')}`)
  for (const [name, get, d] of FIGURES) {
    log(`${name.padEnd(n)} ${rounds.map(r => (r.error != null ? 'failed' : fmt(get(r), d)).padStart(w)).join(' ')}`)
  }
  if (ok.length < 2) return
  log(`\ngrowth per doubling of N (1.00 flat, 2.00 linear; log2 N itself: ${ok.slice(1).map((r, i) => fmt(perDoubling(Math.log2(ok[i].peers), Math.log2(r.peers), ok[i].peers, r.peers), 2)).join(', ')})`)
  log(`${'N'.padEnd(n)} ${ok.slice(1).map((r, i) => `${ok[i].peers}->${r.peers}`.padStart(w)).join(' ')}`)
  for (const [name, get] of FIGURES) {
    if (name === 'log2 N' || name.startsWith('load') || name === 'failed gets' || name === 'joins failed') continue
    log(`${name.padEnd(n)} ${ok.slice(1).map((r, i) => fmt(perDoubling(get(ok[i]), get(r), ok[i].peers, r.peers), 2).padStart(w)).join(' ')}`)
  }
  log(`${'get rounds / log2 N'.padEnd(n)} ${ok.map(r => fmt(r.lookups.getRounds.median / r.lookups.log2N, 2).padStart(w)).join(' ')}   (for ${ok.map(r => r.peers).join(', ')})`)
  log(`${'get RPCs / log2 N'.padEnd(n)} ${ok.map(r => fmt(r.lookups.getRpcs.median / r.lookups.log2N, 2).padStart(w)).join(' ')}`)
}
