/**
 * Messenger over in-memory stream pairs: a stub libp2p whose dialProtocol hands out one
 * end of a stream pair and gives the other end to the handler the far side registered
 * (or to the test, playing a raw peer). Acks carry codes; limits hold on both sides.
 */
import { describe, it, expect, afterEach } from 'vitest'
import * as cborg from 'cborg'
import { streamPair, lpStream } from '@libp2p/utils'
import { defaultLogger } from '@libp2p/logger'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import {
  createEnvelope, encodeEnvelope, decodeCbor, generateAccountKeys, keyIdOf, refusal,
  MAX_ENVELOPE_BYTES, MAX_REFUSAL_REASON_CHARS, type Envelope
} from '@conf-chat/protocol'
import type { Connection, PeerId, Stream, StreamHandler } from '@libp2p/interface'
import { Messenger, CHAT_PROTOCOL, CHAT_WINDOW, type MessengerComponents, type MessengerInit, type EnvelopeReceiver } from '../../../src/delivery/index.js'
import { NotFriendError } from '../../../src/errors.js'

const alice = { username: 'alice', keys: generateAccountKeys() }
const bobKeys = generateAccountKeys()
const bob = { username: 'bob', keyId: keyIdOf(bobKeys.signPublic), boxPublic: bobKeys.boxPublic }
const dm = (text = 'hi'): Envelope => createEnvelope('dm', { text }, alice, bob)

const newPeerId = async (): Promise<PeerId> => peerIdFromPrivateKey(await generateKeyPair('Ed25519'))

/** One side's libp2p, reduced to what Messenger uses. */
interface StubNode extends MessengerComponents {
  handler?: StreamHandler
  /** Where dials go: the far side's inbound end. */
  onDial?: (inbound: Stream) => void
  dials: number
}

async function stubNode (): Promise<StubNode> {
  const node: StubNode = {
    peerId: await newPeerId(),
    peerStore: { merge: async () => ({}) as any },
    logger: defaultLogger(),
    dials: 0,
    async handle (protocol: string | string[], handler: StreamHandler) {
      expect(protocol).toBe(CHAT_PROTOCOL)
      node.handler = handler
    },
    async unhandle () { node.handler = undefined },
    async dialProtocol (_peer: unknown, protocol: string | string[]) {
      expect(protocol).toBe(CHAT_PROTOCOL)
      node.dials++
      const [outbound, inbound] = await streamPair()
      node.onDial?.(inbound)
      return outbound
    }
  } as unknown as StubNode
  return node
}

const started: Messenger[] = []
afterEach(async () => { await Promise.all(started.splice(0).map(async m => { await m.stop() })) })

/** Alice's messenger dialing Bob's, which answers with `receiver`. */
async function pair (receiver: EnvelopeReceiver, init: MessengerInit = {}, bobInit: MessengerInit = {}): Promise<{ sender: Messenger, bobId: string, received: Array<{ envelope: Envelope, from: string }>, node: StubNode }> {
  const a = await stubNode()
  const b = await stubNode()
  const received: Array<{ envelope: Envelope, from: string }> = []
  const receiving = new Messenger(b, bobInit)
  await receiving.start(async (envelope, from, options) => {
    received.push({ envelope, from: from.toString() })
    return await receiver(envelope, from, options)
  })
  a.onDial = inbound => { void b.handler?.(inbound, { remotePeer: a.peerId } as unknown as Connection) }
  const sender = new Messenger(a, init)
  started.push(sender, receiving)
  return { sender, bobId: b.peerId.toString(), received, node: a }
}

/** Alice's messenger dialing a raw peer played by the test. */
async function toRawPeer (init: MessengerInit = {}): Promise<{ sender: Messenger, peerId: string, inbound: Promise<Stream> }> {
  const a = await stubNode()
  let give!: (s: Stream) => void
  const inbound = new Promise<Stream>(resolve => { give = resolve })
  a.onDial = s => { give(s) }
  const sender = new Messenger(a, init)
  started.push(sender)
  return { sender, peerId: (await newPeerId()).toString(), inbound }
}

/** The test as a raw sender on a stream into Bob's messenger. */
async function fromRawPeer (receiver: EnvelopeReceiver, init: MessengerInit = {}): Promise<{ stream: Stream, lp: ReturnType<typeof lpStream<Stream>> }> {
  const b = await stubNode()
  const receiving = new Messenger(b, init)
  await receiving.start(receiver)
  started.push(receiving)
  const [outbound, inbound] = await streamPair()
  void b.handler?.(inbound, { remotePeer: await newPeerId() } as unknown as Connection)
  return { stream: outbound, lp: lpStream(outbound, { maxDataLength: MAX_ENVELOPE_BYTES * 2 }) }
}

const readAck = async (lp: ReturnType<typeof lpStream<Stream>>): Promise<any> => decodeCbor((await lp.read({ signal: AbortSignal.timeout(2_000) })).subarray())

describe('Messenger', { timeout: 5_000 }, () => {
  it('delivers an envelope and gets an ok ack; later sends reuse the stream', async () => {
    const { sender, bobId, received } = await pair(async () => ({ ok: true }))
    const first = dm('one')
    expect(await sender.send(bobId, [], first)).toEqual({ delivered: true })
    expect(await sender.send(bobId, [], dm('two'))).toEqual({ delivered: true })
    expect(received.map(r => r.envelope.id)[0]).toBe(first.id)
    expect(received).toHaveLength(2)
  })

  it('carries a thrown refusal as code and final flag', async () => {
    const { sender, bobId } = await pair(async () => { throw new NotFriendError('carol') })
    expect(await sender.send(bobId, [], dm())).toEqual({ delivered: false, code: 'not-a-friend', final: true, reason: 'not a friend: carol' })
  })

  it('carries a returned refusal, and a plain error as internal, not final', async () => {
    let answer: () => Promise<any> = async () => refusal('rate-limited', 'slow down')
    const { sender, bobId } = await pair(async () => await answer())
    expect(await sender.send(bobId, [], dm())).toEqual({ delivered: false, code: 'rate-limited', final: false, reason: 'slow down' })
    answer = async () => { throw new Error('disk full') }
    expect(await sender.send(bobId, [], dm())).toEqual({ delivered: false, code: 'internal', final: false, reason: 'disk full' })
  })

  it('cuts a long reason on the refusing side', async () => {
    const { lp } = await fromRawPeer(async () => { throw new NotFriendError('x'.repeat(5_000)) })
    const envelope = dm()
    await lp.write(encodeEnvelope(envelope))
    const ack = await readAck(lp)
    expect(ack).toMatchObject({ id: envelope.id, ok: false, code: 'not-a-friend', final: true })
    expect(ack.reason).toHaveLength(MAX_REFUSAL_REASON_CHARS)
  })

  it('cuts a long reason on the receiving side: a refusal, not a stream failure', async () => {
    const { sender, peerId, inbound } = await toRawPeer()
    const envelope = dm()
    const sent = sender.send(peerId, [], envelope)
    const lp = lpStream(await inbound, { maxDataLength: MAX_ENVELOPE_BYTES })
    await lp.read()
    await lp.write(cborg.encode({ id: envelope.id, ok: false, code: 'not-a-friend', final: true, reason: 'y'.repeat(10_000) }))
    const result = await sent
    expect(result).toMatchObject({ delivered: false, code: 'not-a-friend', final: true })
    expect(result.delivered ? '' : result.reason).toBe('y'.repeat(MAX_REFUSAL_REASON_CHARS))
  })

  it("takes an unknown code as 'internal', not final, whatever the peer says", async () => {
    const { sender, peerId, inbound } = await toRawPeer()
    const envelope = dm()
    const sent = sender.send(peerId, [], envelope)
    const lp = lpStream(await inbound, { maxDataLength: MAX_ENVELOPE_BYTES })
    await lp.read()
    await lp.write(cborg.encode({ id: envelope.id, ok: false, code: 'shiny-new-code', final: true, reason: 'from the future' }))
    expect(await sent).toEqual({ delivered: false, code: 'internal', final: false, reason: 'from the future' })
  })

  it('gives up on a peer that never answers after the ack time limit, with no code', async () => {
    const { sender, peerId, inbound } = await toRawPeer({ ackTimeoutMs: 150 })
    const started = Date.now()
    const sent = sender.send(peerId, [], dm())
    await inbound // the frame goes out; nobody answers
    expect(await sent).toEqual({ delivered: false, reason: 'no acknowledgement in time' })
    expect(Date.now() - started).toBeLessThan(2_000)
  })

  it('does not take an ack that fails its schema', async () => {
    const { sender, peerId, inbound } = await toRawPeer({ ackTimeoutMs: 500 })
    const sent = sender.send(peerId, [], dm())
    const lp = lpStream(await inbound, { maxDataLength: MAX_ENVELOPE_BYTES })
    await lp.read()
    await lp.write(cborg.encode({ id: 'x', ok: 'yes' }))
    const result = await sent
    expect(result.delivered).toBe(false)
    expect(result).not.toHaveProperty('code')
  })

  it('never sends an envelope larger than the protocol allows', async () => {
    const { sender, bobId, received, node } = await pair(async () => ({ ok: true }))
    const big = createEnvelope('dm', { text: 'z'.repeat(MAX_ENVELOPE_BYTES) }, alice, bob)
    expect(await sender.send(bobId, [], big)).toMatchObject({ delivered: false, code: 'too-large', final: true })
    expect(received).toEqual([])
    expect(node.dials).toBe(0)
  })

  it('refuses an oversized frame with too-large, and ends that stream', async () => {
    let called = false
    const { stream, lp } = await fromRawPeer(async () => { called = true; return { ok: true } })
    const closed = new Promise(resolve => { stream.addEventListener('close', resolve, { once: true }) })
    await lp.write(new Uint8Array(MAX_ENVELOPE_BYTES + 1))
    expect(await readAck(lp)).toMatchObject({ id: '', ok: false, code: 'too-large', final: true })
    await closed
    expect(called).toBe(false)
  })

  it('refuses a malformed or tampered frame without echoing its id, and goes on serving the stream', async () => {
    const seen: string[] = []
    const { lp } = await fromRawPeer(async env => { seen.push(env.id); return { ok: true } })
    await lp.write(cborg.encode({ not: 'an envelope' }))
    expect(await readAck(lp)).toMatchObject({ id: '', ok: false, code: 'malformed', final: true })
    const genuine = dm('pay 10')
    const tampered = { ...genuine, body: Uint8Array.from(genuine.body, (b, i) => i === 5 ? b ^ 1 : b) }
    await lp.write(encodeEnvelope(tampered))
    expect(await readAck(lp)).toMatchObject({ id: '', ok: false, final: true })
    await lp.write(encodeEnvelope(genuine))
    expect(await readAck(lp)).toEqual({ id: genuine.id, ok: true })
    expect(seen).toEqual([genuine.id])
  })

  it('a sender takes a refusal with an empty id as the answer to its frame', async () => {
    const { sender, peerId, inbound } = await toRawPeer()
    const sent = sender.send(peerId, [], dm())
    const lp = lpStream(await inbound, { maxDataLength: MAX_ENVELOPE_BYTES })
    await lp.read()
    await lp.write(cborg.encode({ id: '', ok: false, code: 'malformed', final: true, reason: 'bad envelope signature' }))
    expect(await sent).toEqual({ delivered: false, code: 'malformed', final: true, reason: 'bad envelope signature' })
  })

  it('handles envelopes from 20 senders at once with no listener warning', async () => {
    const warnings: Error[] = []
    const onWarning = (w: Error): void => { warnings.push(w) }
    process.on('warning', onWarning)
    try {
      const b = await stubNode()
      const receiving = new Messenger(b)
      started.push(receiving)
      // every handler waits until all 20 are in, so all 20 run at the same time
      let handling = 0
      const allIn = Promise.withResolvers<void>()
      await receiving.start(async () => {
        if (++handling === 20) allIn.resolve()
        await allIn.promise
        return { ok: true }
      })
      const results = await Promise.all(Array.from({ length: 20 }, async () => {
        const a = await stubNode()
        a.onDial = inbound => { void b.handler?.(inbound, { remotePeer: a.peerId } as unknown as Connection) }
        const sender = new Messenger(a)
        started.push(sender)
        return await sender.send(b.peerId.toString(), [], dm())
      }))
      expect(results.every(r => r.delivered)).toBe(true)
      expect(handling).toBe(20)
      // (Node emits the warning on the next tick)
      await new Promise(resolve => setImmediate(resolve))
      expect(warnings.filter(w => w.name === 'MaxListenersExceededWarning').map(w => w.message)).toEqual([])
    } finally {
      process.off('warning', onWarning)
    }
  })

  it('has several envelopes in flight on one stream, each acked by id in the order sent', async () => {
    const { sender, peerId, inbound } = await toRawPeer()
    const envelopes = ['one', 'two', 'three', 'four', 'five'].map(t => dm(t))
    const sent = envelopes.map(async e => await sender.send(peerId, [], e))
    const lp = lpStream(await inbound, { maxDataLength: MAX_ENVELOPE_BYTES })
    // every frame arrives before any ack is written: they are in flight together
    const ids: string[] = []
    for (const _ of envelopes) ids.push((decodeCbor((await lp.read()).subarray()) as Envelope).id)
    expect(ids).toEqual(envelopes.map(e => e.id))
    await lp.writeV(envelopes.map((e, i) => cborg.encode(i === 2 ? { id: e.id, ok: false, code: 'not-a-friend', final: true, reason: 'no' } : { id: e.id, ok: true })))
    expect(await Promise.all(sent)).toEqual([
      { delivered: true }, { delivered: true }, { delivered: false, code: 'not-a-friend', final: true, reason: 'no' }, { delivered: true }, { delivered: true }
    ])
  })

  it('the receiver handles envelopes in flight in the order sent; a refusal among them leaves the others alone', async () => {
    const { sender, bobId, received, node } = await pair(async env => {
      if (received.length === 3) throw new NotFriendError('mallory')
      return { ok: true }
    })
    const envelopes = Array.from({ length: 6 }, (_, i) => dm(`n${i}`))
    const results = await Promise.all(envelopes.map(async e => await sender.send(bobId, [], e)))
    expect(received.map(r => r.envelope.id)).toEqual(envelopes.map(e => e.id))
    expect(results.map(r => r.delivered)).toEqual([true, true, false, true, true, true])
    expect(results[2]).toMatchObject({ code: 'not-a-friend', final: true })
    expect(node.dials).toBe(1)
  })

  it('answers an unreadable frame among frames in flight with an empty id, in its place', async () => {
    const seen: string[] = []
    const { lp } = await fromRawPeer(async env => { seen.push(env.id); return { ok: true } })
    const [a, b] = [dm('a'), dm('b')]
    await lp.writeV([encodeEnvelope(a), cborg.encode({ not: 'an envelope' }), encodeEnvelope(b)])
    expect(await readAck(lp)).toEqual({ id: a.id, ok: true })
    expect(await readAck(lp)).toMatchObject({ id: '', ok: false, code: 'malformed', final: true })
    expect(await readAck(lp)).toEqual({ id: b.id, ok: true })
    expect(seen).toEqual([a.id, b.id])
  })

  it('a sender never has more than the window in flight on a stream', async () => {
    const { sender, peerId, inbound } = await toRawPeer({ ackTimeoutMs: 300 })
    const envelopes = Array.from({ length: CHAT_WINDOW + 5 }, (_, i) => dm(`w${i}`))
    const sent = Promise.all(envelopes.map(async e => await sender.send(peerId, [], e)))
    // nobody acks: the first stream carries the window and no more, until it is given up
    const lp = lpStream(await inbound, { maxDataLength: MAX_ENVELOPE_BYTES })
    const ids: string[] = []
    try {
      while (true) ids.push((decodeCbor((await lp.read()).subarray()) as Envelope).id)
    } catch {}
    expect(ids).toEqual(envelopes.slice(0, CHAT_WINDOW).map(e => e.id))
    expect((await sent).every(r => !r.delivered)).toBe(true)
  })

  it('resets the stream of a sender that has more frames in flight than the window', async () => {
    let release!: () => void
    const held = new Promise<void>(resolve => { release = resolve })
    let calls = 0
    const { stream, lp } = await fromRawPeer(async () => { calls++; await held; return { ok: true } })
    const closed = new Promise(resolve => { stream.addEventListener('close', resolve, { once: true }) })
    // the first is being handled (held), CHAT_WINDOW more wait: one too many
    await lp.writeV(Array.from({ length: CHAT_WINDOW + 1 }, (_, i) => encodeEnvelope(dm(`f${i}`))))
    await closed
    expect(stream.status).not.toBe('open')
    expect(calls).toBe(1)
    // the frames read before the reset are dropped, not handled
    release()
    await new Promise(resolve => setImmediate(resolve))
    expect(calls).toBe(1)
  })

  it('ends an inbound stream that stays idle past the limit', async () => {
    const { stream } = await fromRawPeer(async () => ({ ok: true }), { inboundIdleMs: 100 })
    const closed = new Promise(resolve => { stream.addEventListener('close', resolve, { once: true }) })
    const outcome = await Promise.race([closed.then(() => 'closed'), new Promise(resolve => setTimeout(() => { resolve('still open') }, 2_000))])
    expect(outcome).toBe('closed')
  })

  it('a cancelled send reports aborted and sends nothing', async () => {
    const { sender, bobId, received, node } = await pair(async () => ({ ok: true }))
    const controller = new AbortController()
    controller.abort()
    expect(await sender.send(bobId, [], dm(), { signal: controller.signal })).toEqual({ delivered: false, reason: 'aborted' })
    expect(received).toEqual([])
    expect(node.dials).toBe(0)
  })

  it('opens a fresh stream when the cached one broke', async () => {
    const a = await stubNode()
    const b = await stubNode()
    const receiving = new Messenger(b)
    await receiving.start(async () => ({ ok: true }))
    const outbound: Stream[] = []
    a.onDial = inbound => { void b.handler?.(inbound, { remotePeer: a.peerId } as unknown as Connection) }
    const dial = a.dialProtocol.bind(a)
    a.dialProtocol = (async (...args: Parameters<typeof dial>) => { const s = await dial(...args); outbound.push(s); return s }) as typeof dial
    const sender = new Messenger(a)
    started.push(sender, receiving)
    const bobId = b.peerId.toString()
    expect(await sender.send(bobId, [], dm())).toEqual({ delivered: true })
    outbound[0]?.abort(new Error('connection lost'))
    expect(outbound).toHaveLength(1)
    expect(await sender.send(bobId, [], dm())).toEqual({ delivered: true })
    expect(a.dials).toBe(2)
  })
})

describe('Messenger over a relay', { timeout: 5_000 }, () => {
  it('moves a conversation from a relayed connection to a direct one once there is one', async () => {
    const { sender, bobId, received, node } = await pair(async () => ({ ok: true }))
    const relayed = { status: 'open', remoteAddr: { toString: () => `/ip4/10.0.0.1/tcp/4300/p2p/x/p2p-circuit/p2p/${bobId}` } } as unknown as Connection
    let connections: Connection[] = [relayed]
    node.getConnections = (() => connections) as MessengerComponents['getConnections']
    expect(await sender.send(bobId, [], dm('over the relay'))).toEqual({ delivered: true })
    expect(node.dials).toBe(1)
    // the hole punch made a direct connection: the next send opens its stream there
    let directStreams = 0
    const direct = {
      status: 'open',
      remoteAddr: { toString: () => '/ip4/198.51.100.2/tcp/40002' },
      newStream: async (protocol: string) => {
        expect(protocol).toBe(CHAT_PROTOCOL)
        directStreams++
        const [outbound, inbound] = await streamPair()
        node.onDial?.(inbound)
        return outbound
      }
    } as unknown as Connection
    connections = [relayed, direct]
    expect(await sender.send(bobId, [], dm('direct'))).toEqual({ delivered: true })
    expect(await sender.send(bobId, [], dm('direct again'))).toEqual({ delivered: true })
    expect(directStreams).toBe(1)
    expect(node.dials).toBe(1)
    expect(received.map(r => (r.envelope as any).id)).toHaveLength(3)
  })
})
