/**
 * Where a put sends its record: the DHT servers closest to the key, found by a
 * closest-peers lookup that stops once it has converged (dht/converged-lookup.ts) instead
 * of running until every disjoint path has heard from k peers, as kad-dht's put does.
 *
 * The lookup stops once the CONVERGED_CLOSEST peers closest to the key among those named
 * have all answered. The record then goes to the PUT_HOLDERS closest in the order of
 * distance, and a PUT_VALUE that is answered confirms a holder as a FIND_NODE answer
 * would have; one that is not answered moves the put on to the next peer.
 *
 * Why CONVERGED_CLOSEST is ABSENT_CLOSEST: a read says "absent" when most of the
 * ABSENT_CLOSEST closest peers it asked answer "none" (quorums.ts), so those are the
 * peers a put must not miss; a put that stopped before they answered could store its
 * record beside them and a read would call it absent.
 *
 * Hostile peers: an answer can name peer ids that do not exist or never answer, placed
 * close to the key (an Ed25519 peer id is a public key: anyone can make them). The lookup
 * does not converge on them (converged-lookup.ts). Of the peers only named, never seen
 * reachable, a put takes at most MAX_UNCHECKED_TARGETS, each skipped after one failed
 * attempt, so the peers that answered still get the record. Real peers with ids close to
 * the key (a Sybil's) are among the holders here as they would be among kad-dht's final
 * peers.
 */
import { fromString as bytesFromString } from 'uint8arrays'
import { ABSENT_CLOSEST } from './quorums.js'
import { convergedLookup } from '../dht/converged-lookup.js'
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
  const { peers, converged } = await convergedLookup(c.self, c.dht, bytesFromString(key), CONVERGED_CLOSEST, options)
  const targets: PeerId[] = []
  let unchecked = 0
  for (const p of peers) {
    if (p.state === 'failed') continue
    if (p.state === 'named' && ++unchecked > MAX_UNCHECKED_TARGETS) continue
    targets.push(p.peer)
  }
  c.log('put targets for %s: %d peers named, %d answered, the lookup %s', key, peers.length,
    peers.filter(p => p.state === 'answered').length, converged ? 'converged' : 'ended')
  return targets
}
