// What a DHT lookup did, from kad-dht's own query events: how many RPCs it sent and how
// many rounds (hops) deep it went. Taps a peer's kad-dht `get` and `put` (on the instance:
// its own methods, called unchanged, their events passed on as they come).
//
// Rounds: a peer the lookup queries without having been told of it (one from our own
// routing table) is in round 1; a peer first named in the closer-peers list of an answer
// from a round-r peer is in round r + 1. A lookup's rounds are the highest round of any
// peer it sent a FIND_NODE or GET_VALUE query to (a put's PUT_VALUE messages go to the
// peers the lookup found and add no round). Kademlia's bound is about log2(N) / b rounds
// with b bits per hop; kad-dht with k = 20 on a few hundred peers should need 1-3.

/** One lookup's counters; `observe` each of its events. */
export class LookupTrace {
  constructor (kind) {
    this.kind = kind
    this.rpcs = 0
    this.lookupRpcs = 0
    this.errors = 0
    this.rounds = 0
    /** peer id -> round */
    this.round = new Map()
  }

  observe (ev) {
    if (ev.name === 'SEND_QUERY') {
      this.rpcs++
      if (ev.messageName === 'PUT_VALUE') return
      this.lookupRpcs++
      const to = ev.to.toString()
      if (!this.round.has(to)) this.round.set(to, 1)
      this.rounds = Math.max(this.rounds, this.round.get(to))
    } else if (ev.name === 'PEER_RESPONSE') {
      const r = this.round.get(ev.from.toString()) ?? 1
      for (const c of ev.closer ?? []) {
        const id = c.id.toString()
        if (!this.round.has(id)) this.round.set(id, r + 1)
      }
    } else if (ev.name === 'QUERY_ERROR') {
      this.errors++
    }
  }

  toJSON () {
    return { kind: this.kind, rpcs: this.rpcs, lookupRpcs: this.lookupRpcs, rounds: this.rounds, errors: this.errors }
  }
}

async function * tap (source, trace) {
  for await (const ev of source) {
    trace.observe(ev)
    yield ev
  }
}

/**
 * Trace every `get` and `put` of `dht` (a kad-dht instance): returns `take()`, which hands
 * over the traces started since the last call.
 */
export function traceLookups (dht) {
  let traces = []
  for (const kind of ['get', 'put']) {
    const original = dht[kind].bind(dht)
    dht[kind] = (key, ...rest) => {
      const trace = new LookupTrace(kind)
      traces.push(trace)
      return tap(original(key, ...rest), trace)
    }
  }
  return {
    take () {
      const t = traces
      traces = []
      return t
    }
  }
}

/** The traces of one operation summed (normally one; a retried read gives more). */
export function sumTraces (traces) {
  return {
    lookups: traces.length,
    rpcs: traces.reduce((a, t) => a + t.rpcs, 0),
    lookupRpcs: traces.reduce((a, t) => a + t.lookupRpcs, 0),
    rounds: traces.reduce((a, t) => Math.max(a, t.rounds), 0),
    errors: traces.reduce((a, t) => a + t.errors, 0)
  }
}
