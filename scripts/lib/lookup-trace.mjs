// What a DHT lookup did, from kad-dht's own query events: how many RPCs it sent and how
// many rounds (hops) deep it went, and how long its RPCs took to open a stream (dialing
// first or not) and to be answered. Taps a peer's kad-dht `get` and `put` (on the
// instance: its own methods, called unchanged, with an onProgress listener added).
//
// Rounds: a peer the lookup queries without having been told of it (one from our own
// routing table) is in round 1; a peer first named in the closer-peers list of an answer
// from a round-r peer is in round r + 1. A lookup's rounds are the highest round of any
// peer it sent a FIND_NODE or GET_VALUE query to (a put's PUT_VALUE messages go to the
// peers the lookup found and add no round). Kademlia's bound is about log2(N) / b rounds
// with b bits per hop; kad-dht with k = 20 on a few hundred peers should need 1-3.

/** One lookup's counters; `observe` each of its events. */
export class LookupTrace {
  /**
   * `isConnected(peerId)`: whether this peer has a connection to that one (without it,
   * every RPC counts as on a connection); `now()`: the clock, in ms.
   */
  constructor (kind, { isConnected, now = () => performance.now() } = {}) {
    this.kind = kind
    this.isConnected = isConnected
    this.now = now
    this.rpcs = 0
    this.lookupRpcs = 0
    this.errors = 0
    this.rounds = 0
    /** peer id -> round */
    this.round = new Map()
    this.startedAt = now()
    /** a put: when its first PUT_VALUE went out (the closest-peers lookup before it had ended) */
    this.firstPutAt = undefined
    /** peer id -> { dialAt, sentAt, connected }: lookup RPCs under way */
    this.pending = new Map()
    /**
     * Lookup RPCs (FIND_NODE, GET_VALUE), ms: `open`, from kad-dht asking for a stream to
     * the peer until it had one (a dial first when `connected` is false); `answer`, from
     * sending the request until the answer was in.
     */
    this.rpcMs = { openConnected: [], openDialed: [], answer: [] }
  }

  observe (ev) {
    const now = this.now()
    if (ev.name === 'DIAL_PEER') {
      // kad-dht emits it just before it opens the stream
      this.pending.set(ev.peer.toString(), { dialAt: now, connected: this.isConnected?.(ev.peer) ?? true })
    } else if (ev.name === 'SEND_QUERY') {
      this.rpcs++
      const to = ev.to.toString()
      const rpc = this.pending.get(to)
      if (ev.messageName === 'PUT_VALUE') {
        this.firstPutAt ??= now
        this.pending.delete(to)
        return
      }
      if (rpc != null) {
        rpc.sentAt = now
        this.rpcMs[rpc.connected ? 'openConnected' : 'openDialed'].push(now - rpc.dialAt)
      }
      this.lookupRpcs++
      if (!this.round.has(to)) this.round.set(to, 1)
      this.rounds = Math.max(this.rounds, this.round.get(to))
    } else if (ev.name === 'PEER_RESPONSE') {
      const from = ev.from.toString()
      const rpc = this.pending.get(from)
      if (rpc?.sentAt != null) this.rpcMs.answer.push(now - rpc.sentAt)
      this.pending.delete(from)
      const r = this.round.get(from) ?? 1
      for (const c of ev.closer ?? []) {
        const id = c.id.toString()
        if (!this.round.has(id)) this.round.set(id, r + 1)
      }
    } else if (ev.name === 'QUERY_ERROR') {
      this.errors++
      this.pending.delete(ev.from?.toString())
    }
  }

  toJSON () {
    return {
      kind: this.kind,
      rpcs: this.rpcs,
      lookupRpcs: this.lookupRpcs,
      rounds: this.rounds,
      errors: this.errors,
      lookupMs: this.firstPutAt == null ? undefined : this.firstPutAt - this.startedAt,
      rpcMs: this.rpcMs
    }
  }
}

/** A signed record's key (protocol's namespaces), as a put's lookup looks it up. */
const RECORD_KEY = /^\/cc-(user|presence|state|state-page|history|conf)\//

/** kad-dht's message type of a PUT_VALUE (its protobuf enum). */
const MESSAGE_PUT_VALUE = 'PUT_VALUE'

/** An onProgress listener that hands kad-dht's events to `trace`, and every event on to `onProgress`. */
function listen (trace, onProgress) {
  return evt => {
    // the options reach libp2p's dialer and stream opening too, whose own progress
    // events are not kad-dht's (and tracing must never break the query)
    if (typeof evt?.type === 'string' && evt.type.startsWith('kad-dht:')) {
      try { trace.observe(evt.detail) } catch {}
    }
    onProgress?.(evt)
  }
}

/**
 * Trace every `get` and `put` of `dht` (a kad-dht instance): returns `take()`, which hands
 * over the traces started since the last call.
 */
export function traceLookups (dht, isConnected) {
  let traces = []
  for (const kind of ['get', 'put']) {
    const original = dht[kind].bind(dht)
    // get(key, options), put(key, value, options): the trace listens through the options'
    // onProgress, which kad-dht calls as it makes each event (its iterator hands them
    // over later, when the caller pulls them, which would blur the times)
    const optionsAt = kind === 'get' ? 1 : 2
    dht[kind] = (...args) => {
      const trace = new LookupTrace(kind, { isConnected })
      traces.push(trace)
      const options = args[optionsAt] ?? {}
      args[optionsAt] = { ...options, onProgress: listen(trace, options.onProgress) }
      return original(...args)
    }
  }
  // a put of a single-writer record runs kad-dht's closest-peers lookup itself and sends
  // its PUT_VALUEs one by one through kad-dht's RPC client (put-targets.ts,
  // record-writer.ts): that lookup is a put's trace, and the PUT_VALUEs sent while it is
  // the latest trace are added to it
  const closest = dht.getClosestPeers.bind(dht)
  dht.getClosestPeers = (key, options = {}) => {
    // the sets' holder lookups and the peer's own lookups use it too
    if (!RECORD_KEY.test(new TextDecoder().decode(key))) return closest(key, options)
    const trace = new LookupTrace('put', { isConnected })
    trace.direct = true
    traces.push(trace)
    return closest(key, { ...options, onProgress: listen(trace, options.onProgress) })
  }
  const network = dht.network
  const sendRequest = network?.sendRequest?.bind(network)
  if (sendRequest != null) {
    network.sendRequest = (to, msg, options = {}) => {
      const trace = traces.at(-1)
      if (trace?.direct !== true || msg?.type !== MESSAGE_PUT_VALUE) return sendRequest(to, msg, options)
      return sendRequest(to, msg, { ...options, onProgress: listen(trace, options.onProgress) })
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
    errors: traces.reduce((a, t) => a + t.errors, 0),
    /** a put: start to its first PUT_VALUE (the closest-peers lookup) */
    lookupMs: traces.find(t => t.firstPutAt != null)?.toJSON().lookupMs,
    rpcMs: {
      openConnected: traces.flatMap(t => t.rpcMs.openConnected),
      openDialed: traces.flatMap(t => t.rpcMs.openDialed),
      answer: traces.flatMap(t => t.rpcMs.answer)
    }
  }
}
