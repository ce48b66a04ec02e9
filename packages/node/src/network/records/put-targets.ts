/**
 * Where a put sends its record: the DHT servers closest to the key, found by a
 * closest-peers lookup that stops once it has converged instead of running until every
 * disjoint path has heard from k peers.
 *
 * kad-dht's own put runs `getClosestPeers` to its end, and kad-dht ends each of its
 * disjoint paths only when that path has had answers from k (20) peers. So a put in a
 * network larger than k sends about paths x k FIND_NODEs (57-61 at 200 peers with 3
 * paths, most of them dialing first), although the peers closest to the key are usually
 * all named after two or three rounds: each answer lists the 20 peers closest to the key
 * that the answering peer knows, and peers near the key know its neighbourhood best.
 *
 * The lookup here is the same kad-dht query (same paths, same alpha), read as it goes: it
 * keeps every peer named in an answer, and stops the query once the CONVERGED_CLOSEST
 * peers closest to the key among those named have all answered, which means none of them
 * knew a closer live peer that was not asked. Kademlia's own rule is the same with k in
 * place of CONVERGED_CLOSEST; here the record then goes to the PUT_HOLDERS closest in the
 * order of distance, and a PUT_VALUE that is answered confirms a holder as a FIND_NODE
 * answer would have. One that is not answered moves the put on to the next peer.
 *
 * Why CONVERGED_CLOSEST is ABSENT_CLOSEST: a read says "absent" when most of the
 * ABSENT_CLOSEST closest peers it asked answer "none" (quorums.ts), so those are the
 * peers a put must not miss; a put that stopped before they answered could store its
 * record beside them and a read would call it absent.
 *
 * Hostile peers: an answer can name peer ids that do not exist or never answer, placed
 * close to the key (an Ed25519 peer id is a public key: anyone can make them). They are
 * never "answered", so the lookup does not converge on them: kad-dht tries those it can
 * dial and they fail, and one it cannot dial (no address) keeps the query going to its
 * end, as kad-dht's put would. Of the peers only named, never seen reachable, a put takes
 * at most MAX_UNCHECKED_TARGETS, each skipped after one failed attempt, so the peers that
 * answered still get the record. Real peers with ids close to the key (a Sybil's) are
 * among the holders here as they would be among kad-dht's final peers.
 */
import { fromString as bytesFromString } from 'uint8arrays'
import { ABSENT_CLOSEST, compareDistance, kadId } from './quorums.js'
import type { KadDHT } from '@libp2p/kad-dht'
import type { AbortOptions, Logger, PeerId } from '@libp2p/interface'

/** The closest named peers that must have answered before the lookup stops (see above). */
export const CONVERGED_CLOSEST = ABSENT_CLOSEST

/** Holders a put stores its record on: kad-dht's k (its put sends to the k closest). */
export const PUT_HOLDERS = 20

/** PUT_VALUEs in flight at once; most of them dial a peer the lookup only heard of. */
export const PUTS_IN_FLIGHT = 10

/** PUT_VALUEs one put sends at most: the holders, and a replacement for each that did not store it. */
export const MAX_PUT_ATTEMPTS = 2 * PUT_HOLDERS

/**
 * Targets that were only named (never asked, so never seen to be reachable) a put may
 * take: the holders beyond the CONVERGED_CLOSEST, which answered. Made-up ids placed close
 * to the key by a hostile answer cost at most this many failed attempts, and the peers
 * that answered come after them.
 */
export const MAX_UNCHECKED_TARGETS = PUT_HOLDERS - CONVERGED_CLOSEST

type State = 'named' | 'asked' | 'answered' | 'failed'

interface Candidate { peer: PeerId, id: Uint8Array, state: State }

export interface PutTargetsComponents {
  self: PeerId
  dht: Pick<KadDHT, 'getClosestPeers'>
  log: Logger
}

/**
 * The peers to put `key`'s record on, closest first: every peer the lookup found but those
 * that failed, and of those only named, the MAX_UNCHECKED_TARGETS closest; once it
 * converged or ended. Throws only with the caller's abort.
 */
export async function findPutTargets (c: PutTargetsComponents, key: string, options: AbortOptions = {}): Promise<PeerId[]> {
  const keyBytes = bytesFromString(key)
  const target = kadId(keyBytes)
  const selfId = c.self.toString()
  const candidates = new Map<string, Candidate>()
  const stop = new AbortController()
  const signal = options.signal == null ? stop.signal : AbortSignal.any([options.signal, stop.signal])
  let ranked: Candidate[] = []
  let dirty = true
  const note = (peer: PeerId, state?: State): void => {
    const id = peer.toString()
    if (id === selfId) return
    let candidate = candidates.get(id)
    if (candidate == null) {
      candidate = { peer, id: kadId(peer.toMultihash().bytes), state: 'named' }
      candidates.set(id, candidate)
      dirty = true
    }
    // an answer is final; a failure after an answer (a later RPC) does not undo it
    if (state != null && candidate.state !== 'answered') candidate.state = state
  }
  const converged = (): boolean => {
    if (dirty) {
      ranked = [...candidates.values()].sort((a, b) => compareDistance(target, a.id, b.id))
      dirty = false
    }
    let answered = 0
    for (const candidate of ranked) {
      if (candidate.state === 'failed') continue
      if (candidate.state !== 'answered') return false
      if (++answered >= CONVERGED_CLOSEST) return true
    }
    return false
  }
  let stoppedEarly = false
  try {
    for await (const ev of c.dht.getClosestPeers(keyBytes, { ...options, signal })) {
      if (ev.name === 'SEND_QUERY') {
        note(ev.to, 'asked')
      } else if (ev.name === 'PEER_RESPONSE') {
        note(ev.from, 'answered')
        for (const peer of ev.closer) note(peer.id)
        if (converged()) { stoppedEarly = true; break }
      } else if (ev.name === 'QUERY_ERROR') {
        note(ev.from, 'failed')
        if (converged()) { stoppedEarly = true; break }
      } else if (ev.name === 'FINAL_PEER') {
        note(ev.peer.id, 'answered')
      }
    }
  } catch (err: any) {
    // kad-dht ends an aborted query quietly, but a caller's abort is no result
    options.signal?.throwIfAborted()
    c.log('put targets for %s: the lookup failed: %s', key, err.message)
  } finally {
    // ends the RPCs of the query still in flight
    stop.abort()
  }
  options.signal?.throwIfAborted()
  converged()
  const targets: PeerId[] = []
  let unchecked = 0
  for (const p of ranked) {
    if (p.state === 'failed') continue
    // asked: kad-dht had a stream to it (SEND_QUERY comes once the stream is open)
    if (p.state === 'named' && ++unchecked > MAX_UNCHECKED_TARGETS) continue
    targets.push(p.peer)
  }
  c.log('put targets for %s: %d peers named, %d answered, the lookup %s', key, ranked.length,
    ranked.filter(p => p.state === 'answered').length, stoppedEarly ? 'converged' : 'ended')
  return targets
}
