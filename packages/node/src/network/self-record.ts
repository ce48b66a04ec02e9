/**
 * This peer's signed peer record, sealed once per set of addresses and kept in its own
 * peer-store entry, where identify looks for it.
 *
 * @libp2p/identify answers every identify request with `peerStore.get(self)
 * .peerRecordEnvelope`, and seals a new record when there is none; libp2p 3 never
 * stores one for the peer itself. So every new connection cost an Ed25519 signature on
 * each side (both sides ask), and since each new record has a new sequence number
 * (the time), the asker saw a changed record every time it met the peer again: a
 * peer-store write and a `peer:update` event, which also empties the DHT's peer-info
 * cache (dht/peer-info-cache.ts). A put at 200 peers opens ~40 connections (README's
 * performance notes). With the record kept, a peer met again answers with the record the
 * asker already has, and identify stores nothing.
 *
 * The record is sealed before libp2p's start resolves (once a transport listens), and
 * again when the addresses change (libp2p reports that as `self:peer:update`, up to a
 * second after the change: the address manager debounces it). identify-push seals and
 * sends its own fresh record after such a change, so a peer that identified this one in
 * that second gets the new addresses from the push.
 */
import { PeerRecord, RecordEnvelope } from '@libp2p/peer-record'
import { CODE_P2P, type Multiaddr } from '@multiformats/multiaddr'
import type { ComponentLogger, Libp2pEvents, Logger, PeerId, PeerStore, PrivateKey, Startable, TypedEventTarget } from '@libp2p/interface'
import type { AddressManager } from '@libp2p/interface-internal'

/** The longest the first record waits for a transport to listen (ms). */
const LISTENING_WAIT_MS = 5_000

export interface SelfRecordComponents {
  peerId: PeerId
  privateKey: PrivateKey
  peerStore: Pick<PeerStore, 'patch'>
  addressManager: Pick<AddressManager, 'getAddresses'>
  events: TypedEventTarget<Libp2pEvents>
  logger: ComponentLogger
}

export class SelfRecord implements Startable {
  private readonly c: SelfRecordComponents
  private readonly log: Logger
  private running = false
  /** The addresses of the record in the peer store (sorted, joined); undefined before the first. */
  private sealedFor?: string
  /** One update at a time, in order. */
  private updating: Promise<void> = Promise.resolve()
  private readonly onSelfUpdate = (): void => { this.update() }

  constructor (components: SelfRecordComponents) {
    this.c = components
    this.log = components.logger.forComponent('conf-chat:network:self-record')
  }

  readonly [Symbol.toStringTag] = 'conf-chat/self-record'

  start (): void {
    this.running = true
    this.sealedFor = undefined
    this.c.events.addEventListener('self:peer:update', this.onSelfUpdate)
    this.c.events.addEventListener('transport:listening', this.onSelfUpdate)
  }

  /**
   * The first record, before libp2p's start resolves: the peer store is on disk, so until
   * then identify would send the record of the last run (its addresses may be gone). The
   * transports start listening in their own `afterStart`, beside this one.
   */
  async afterStart (): Promise<void> {
    if (this.c.addressManager.getAddresses().length === 0) await this.listening()
    this.update()
    await this.updating
  }

  stop (): void {
    this.running = false
    this.c.events.removeEventListener('self:peer:update', this.onSelfUpdate)
    this.c.events.removeEventListener('transport:listening', this.onSelfUpdate)
  }

  /** Resolves at the first `transport:listening`, or after LISTENING_WAIT_MS (a peer that listens on nothing). */
  private async listening (): Promise<void> {
    await new Promise<void>(resolve => {
      const done = (): void => {
        clearTimeout(timer)
        this.c.events.removeEventListener('transport:listening', done)
        resolve()
      }
      const timer = setTimeout(done, LISTENING_WAIT_MS)
      this.c.events.addEventListener('transport:listening', done)
    })
  }

  /** Resolves once the updates asked for so far are done (for tests). */
  async settled (): Promise<void> {
    await this.updating
  }

  private update (): void {
    this.updating = this.updating.then(async () => { await this.seal() }).catch((err: Error) => {
      this.log.error('could not keep the signed peer record: %e', err)
    })
  }

  private async seal (): Promise<void> {
    if (!this.running) return
    // what identify sends as the listen addresses, without /p2p/<self>
    const multiaddrs: Multiaddr[] = this.c.addressManager.getAddresses().map(ma => ma.decapsulateCode(CODE_P2P))
    if (multiaddrs.length === 0) return
    const key = multiaddrs.map(ma => ma.toString()).sort().join(' ')
    // the peer store's own update of this record comes back as self:peer:update: nothing to do then
    if (key === this.sealedFor) return
    const envelope = await RecordEnvelope.seal(new PeerRecord({ peerId: this.c.peerId, multiaddrs }), this.c.privateKey)
    if (!this.running) return
    // (the update this patch fires queues behind this one, and finds `sealedFor` set)
    await this.c.peerStore.patch(this.c.peerId, { peerRecordEnvelope: envelope.marshal() })
    this.sealedFor = key
    this.log('signed peer record for %d address(es)', multiaddrs.length)
  }
}

/** The service (libp2p's `services`). */
export function selfRecord (): (components: SelfRecordComponents) => SelfRecord {
  return (components) => new SelfRecord(components)
}
