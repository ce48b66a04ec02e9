/**
 * kad-dht's closest-peers query, read as it goes and stopped once it converged: once the
 * `closest` peers closest to the key among all those named in answers have answered,
 * none of them knew a closer live peer that was not asked. That is Kademlia's own rule
 * for ending a lookup, with `closest` in place of k.
 *
 * kad-dht runs its query to its end, and ends each disjoint path only when that path has
 * had answers from k (20) peers: in a network larger than k, about paths x k FIND_NODEs
 * (57-61 at 200 peers with 3 paths, most of them dialing first), although the peers
 * closest to the key are usually all named after two or three rounds: each answer lists
 * the 20 peers closest to the key that the answering peer knows, and peers near the key
 * know its neighbourhood best. The query here is the same (same paths, same alpha); only
 * its end comes sooner.
 *
 * A peer id named in an answer that never answers itself (made up, or gone) is never
 * "answered", so the lookup does not converge on it: kad-dht tries those it can dial and
 * they fail, and one it cannot dial (no address) keeps the query going to its end, as it
 * would have gone anyway.
 */
import { kadId, compareDistance } from '../records/quorums.js'
import type { KadDHT, QueryEvent } from '@libp2p/kad-dht'
import type { AbortOptions, PeerId } from '@libp2p/interface'

/**
 * What became of a peer in the lookup: only named in an answer; asked (kad-dht had a
 * stream to it: it says SEND_QUERY once the stream is open); answered; failed.
 */
export type LookupState = 'named' | 'asked' | 'answered' | 'failed'

export interface LookupPeer { peer: PeerId, state: LookupState }

export interface ConvergedLookupResult {
  /** Every peer the lookup heard of but this one, closest to the key first. */
  peers: LookupPeer[]
  /** Whether it stopped on convergence (false: the query ended first, as in a network of few servers). */
  converged: boolean
}

interface Candidate extends LookupPeer { id: Uint8Array }

/**
 * Follows one kad-dht query's events (a closest-peers lookup's or a get's: both name
 * closer peers in their answers) and tells when it converged: when the `closest` peers
 * nearest the key that did not fail have all answered.
 */
export class Convergence {
  private readonly target: Uint8Array
  private readonly selfId: string
  private readonly closest: number
  private readonly candidates = new Map<string, Candidate>()
  private ranked: Candidate[] = []
  private dirty = true

  constructor (self: PeerId, keyBytes: Uint8Array, closest: number) {
    this.target = kadId(keyBytes)
    this.selfId = self.toString()
    this.closest = closest
  }

  /** Takes one event of the query; true once the query converged. */
  observe (ev: QueryEvent): boolean {
    if (ev.name === 'SEND_QUERY') {
      this.note(ev.to, 'asked')
    } else if (ev.name === 'PEER_RESPONSE') {
      this.note(ev.from, 'answered')
      for (const peer of ev.closer) this.note(peer.id)
      return this.converged()
    } else if (ev.name === 'QUERY_ERROR' && ev.from != null) {
      this.note(ev.from, 'failed')
      return this.converged()
    } else if (ev.name === 'FINAL_PEER') {
      this.note(ev.peer.id, 'answered')
    }
    return false
  }

  /** Every peer the query heard of but this one, closest to the key first. */
  peers (): LookupPeer[] {
    return this.rank().map(({ peer, state }) => ({ peer, state }))
  }

  private note (peer: PeerId, state?: LookupState): void {
    const id = peer.toString()
    if (id === this.selfId) return
    let candidate = this.candidates.get(id)
    if (candidate == null) {
      candidate = { peer, id: kadId(peer.toMultihash().bytes), state: 'named' }
      this.candidates.set(id, candidate)
      this.dirty = true
    }
    // an answer is final; a failure after an answer (a later RPC) does not undo it
    if (state != null && candidate.state !== 'answered') candidate.state = state
  }

  private rank (): Candidate[] {
    if (this.dirty) {
      this.ranked = [...this.candidates.values()].sort((a, b) => compareDistance(this.target, a.id, b.id))
      this.dirty = false
    }
    return this.ranked
  }

  private converged (): boolean {
    let answered = 0
    for (const candidate of this.rank()) {
      if (candidate.state === 'failed') continue
      if (candidate.state !== 'answered') return false
      if (++answered >= this.closest) return true
    }
    return false
  }
}

/**
 * Runs `dht.getClosestPeers(keyBytes)` until the `closest` peers nearest the key that did
 * not fail have all answered, or the query ends. Throws only with the caller's abort (a
 * query that failed or ended early gives what it found).
 */
export async function convergedLookup (self: PeerId, dht: Pick<KadDHT, 'getClosestPeers'>, keyBytes: Uint8Array, closest: number, options: AbortOptions = {}): Promise<ConvergedLookupResult> {
  options.signal?.throwIfAborted()
  const convergence = new Convergence(self, keyBytes, closest)
  const stop = new AbortController()
  const signal = options.signal == null ? stop.signal : AbortSignal.any([options.signal, stop.signal])
  let converged = false
  try {
    for await (const ev of dht.getClosestPeers(keyBytes, { ...options, signal })) {
      if (convergence.observe(ev)) { converged = true; break }
    }
  } catch (err: any) {
    // kad-dht ends an aborted query quietly, but a caller's abort is no result
    options.signal?.throwIfAborted()
    if (err.name !== 'AbortError') throw err
  } finally {
    // ends the query's RPCs still in flight
    stop.abort()
  }
  options.signal?.throwIfAborted()
  return { peers: convergence.peers(), converged }
}
