/**
 * Mailboxes: offline delivery on the replicated set store. A user's mailbox is the set
 * `/cc-mailbox/<keyId>`, held by the R DHT servers closest to it; an item is one signed
 * envelope under its own id, so concurrent senders never overwrite each other. Holders
 * check each item is a well-formed envelope signed by its `fromKey` and addressed to the
 * mailbox, but cannot open it (sealed to the recipient). Between people who know each
 * other the item is a sealed envelope (protocol's sealed-envelope.ts): holders see
 * neither its sender nor its kind. The recipient reads the union of all holders and
 * then removes what it handled with a signed removal.
 */
import { defaultLogger } from '@libp2p/logger'
import {
  mailboxSetKey, mailboxSetRules, mailboxItemOf, validateMailboxItem, decodeEnvelope, decodeWriterListItem, isWriterListId,
  mailboxOwnerOf, isSealedEnvelopeItem, decodeSealedEnvelopeItem, openSealedEnvelope, sealEnvelope, sealStrangerEnvelope, MAILBOX_SET_NAMESPACE, FRIEND_REQUEST_KIND,
  type Envelope, type AccountKeys, type SetItem, type RefusalCode
} from '@conf-chat/protocol'
import type { AbortOptions, ComponentLogger, Logger } from '@libp2p/interface'
import type { ListOptions, SetStore, SetWriteError } from '../network/index.js'
import { MailboxUnreachableError } from '../errors.js'

export interface StoredReport {
  /** Holders asked. */
  holders: number
  /** Holders that hold the envelope now. */
  copies: number
}

export interface FetchedMail {
  /** Envelopes whose signature checks out, as found (the caller orders them). */
  envelopes: Envelope[]
  /** Ids of items that are no valid envelope (to remove). */
  invalid: Array<{ id: string, reason: string }>
  /** Ids of the owner's writer lists in the mailbox (not fetched), oldest first. */
  writerLists: string[]
}

type BoxKeys = Pick<AccountKeys, 'boxPublic' | 'boxSecret'>

/** Refusals (by every holder) after which Mailbox.store tries the envelope's next form. */
const NEXT_FORM_CODES: readonly RefusalCode[] = ['not-listed', 'malformed', 'rate-limited']

export interface StoreOptions extends AbortOptions {
  /**
   * Seal the sender (sealed-envelope.ts): the sender's box keys and the recipient's box
   * public key. Tried in order, each where every holder refused the one before as not
   * listed (or its key's share full for now): under the pair key (which the recipient's
   * list names for the people it knows), under `writer` (the seed of a conference owner's
   * writer key into the recipient's mailbox, which its list names for the owner), then as
   * a stranger's, with a stranger's work (a friend request only so: it is a stranger's).
   * Where holders take none, the envelope goes as it is.
   */
  seal?: { keys: BoxKeys, recipientBoxPublic: Uint8Array, writer?: Uint8Array }
}

export interface FetchOptions extends ListOptions {
  /** The owner's box keys, to open sealed envelopes; without them those are left in the mailbox, unread. */
  keys?: BoxKeys
}

export interface MailboxComponents {
  sets: Pick<SetStore, 'add' | 'list' | 'remove' | 'registerNamespace' | 'namespaceRules' | 'findHolders' | 'replicas'>
  /** Whether this peer is a DHT server (then it is always among the holders it finds). */
  isDhtServer: () => boolean
  /** @default defaultLogger() */
  logger?: ComponentLogger
}

/**
 * At login, the mailbox's holders looked up at most this long before (ms) are taken, not
 * looked up again: the login looks them up while it checks the password (prefetchHolders),
 * and its read, and the writer list the session stores, join that lookup or take what it found.
 */
export const LOGIN_HOLDERS_MAX_AGE_MS = 10_000

export class Mailbox {
  private readonly c: MailboxComponents
  private readonly log: Logger
  /**
   * Envelopes decoded (and their signatures checked) when their items were checked, by the
   * item's bytes (sealed ones opened, by the owner's check): a listing hands back the very
   * item it checked, so `fetch` does not check each signature a second time (half the CPU
   * of reading a full mailbox).
   */
  private readonly checked = new WeakMap<Uint8Array, Envelope>()

  constructor (c: MailboxComponents) {
    this.c = c
    this.log = (c.logger ?? defaultLogger()).forComponent('conf-chat:delivery:mailbox')
  }

  /**
   * Make this peer, as a holder and as a reader, accept only envelopes addressed to the
   * mailbox, keeping each one it checked for the reader; the rest of the peer's mailbox
   * rules (a holder's check that the sender is registered) stay.
   */
  registerRules (): void {
    this.c.sets.registerNamespace(MAILBOX_SET_NAMESPACE, {
      ...(this.c.sets.namespaceRules(MAILBOX_SET_NAMESPACE) ?? mailboxSetRules()),
      validateItem: (setKey, item) => {
        if (isWriterListId(item.id)) decodeWriterListItem(mailboxOwnerOf(setKey), item)
        else if (isSealedEnvelopeItem(item)) decodeSealedEnvelopeItem(mailboxOwnerOf(setKey), item)
        else this.checked.set(item.data, validateMailboxItem(setKey, item))
      }
    })
  }

  /**
   * Store the owner's writer list (protocol's createWriterListItem) in its own mailbox, on
   * at least one peer other than this one: from then on its holders take only friend
   * requests from senders it does not name.
   */
  async storeWriterList (keyId: string, item: SetItem, options: AbortOptions = {}): Promise<StoredReport> {
    // a list goes to holders looked up at most 10 s before: at login, those the login found (prefetchHolders)
    const result = await this.c.sets.add(mailboxSetKey(keyId), [item], { ...options, holdersMaxAgeMs: LOGIN_HOLDERS_MAX_AGE_MS })
    const copies = result.stored[item.id] ?? 0
    // a server counts its own copy: the holders that matter are the others
    if (copies - (this.c.isDhtServer() ? 1 : 0) < 1) throw new MailboxUnreachableError()
    this.log('stored writer list %s on %d of %d holders', item.id, copies, result.holders)
    return { holders: result.holders, copies }
  }

  /**
   * Store an envelope in its recipient's mailbox, on at least one peer other than this
   * one; sealed if `options.seal` says how. Throws MailboxUnreachableError (only this peer
   * could hold it) and the set store's errors (no holder, none stored it, invalid item).
   */
  async store (envelope: Envelope, options: StoreOptions = {}): Promise<StoredReport> {
    for (const [form, make] of this.sealedForms(envelope, options)) {
      const sealed = await make()
      if (sealed == null) continue
      try {
        return await this.put(envelope, sealed, form, options)
      } catch (err: any) {
        // no holder takes it under this key: the mailbox has no list, or its list does not
        // name the key (yet), or the key's share is full for now, or (a stranger's) holders
        // run a program from before strangers sealed; the next form may pass, or the envelope itself
        if (!(err.name === 'SetWriteError' && (err as SetWriteError).refusedEverywhere(envelope.id, NEXT_FORM_CODES))) throw err
        this.log('%s: %s not taken (%s)', envelope.id, form, err.message)
      }
    }
    return await this.put(envelope, mailboxItemOf(envelope), 'open', options)
  }

  /** The sealed forms to try, in order, before the envelope as it is (StoreOptions.seal). */
  private sealedForms (envelope: Envelope, options: StoreOptions): Array<[string, () => Promise<SetItem | undefined>]> {
    const seal = options.seal
    if (seal == null) return []
    const forms: Array<[string, () => Promise<SetItem | undefined>]> = []
    const writer = seal.writer
    if (envelope.kind !== FRIEND_REQUEST_KIND) {
      forms.push(['sealed', async () => sealEnvelope(envelope, seal.keys, seal.recipientBoxPublic)])
      if (writer != null) forms.push(['sealed by the conference owner\'s key', async () => sealEnvelope(envelope, seal.keys, seal.recipientBoxPublic, writer)])
    }
    // a stranger's (and where the list does not name the pair, or there is no list: anyone's)
    forms.push(['sealed as a stranger\'s', async () => await sealStrangerEnvelope(envelope, seal.keys, seal.recipientBoxPublic, { signal: options.signal })])
    return forms
  }

  private async put (envelope: Envelope, item: SetItem, form: string, options: AbortOptions): Promise<StoredReport> {
    const result = await this.c.sets.add(mailboxSetKey(envelope.toKeyId), [item], options)
    const copies = result.stored[envelope.id] ?? 0
    // a server always finds itself: one holder means no other peer was reached, and a copy
    // on the sender's own peer is no delivery (the outbox keeps it and retries)
    if (result.holders <= 1 && this.c.isDhtServer()) throw new MailboxUnreachableError()
    this.log('stored %s (%s) for %s on %d of %d holders', envelope.id, form, envelope.toKeyId, copies, result.holders)
    return { holders: result.holders, copies }
  }

  /**
   * Look the holders of the mailbox of `keyId` up now, in the background, as many as a read
   * asks: a login starts this once it has found the account, while it checks the password,
   * and its first read (`holdersMaxAgeMs`) joins or reuses this lookup instead of making
   * its own after the session has started.
   */
  prefetchHolders (keyId: string): void {
    this.c.sets.findHolders(mailboxSetKey(keyId), { count: 2 * this.c.sets.replicas })
      .catch((err: Error) => { this.log('holders of the mailbox of %s: %s', keyId, err.message) })
  }

  /**
   * Everything in the mailbox of `keyId`, from all its holders (`options.holdersMaxAgeMs`:
   * a periodic read may reuse the holders found lately; `options.readAs`: the owner's keys,
   * which holders ask for; `options.keys`: the owner's box keys, to open sealed envelopes).
   */
  async fetch (keyId: string, options: FetchOptions = {}): Promise<FetchedMail> {
    const writerLists: string[] = []
    const items = await this.c.sets.list(mailboxSetKey(keyId), {
      ...options,
      ...(options.keys != null ? { validateItem: this.ownersCheck(keyId, options.keys) } : {}),
      // the owner's own lists are not fetched: it knows what it listed
      skip: id => {
        if (isWriterListId(id)) { writerLists.push(id); return true }
        return options.skip?.(id) ?? false
      }
    })
    const out: FetchedMail = { envelopes: [], invalid: [], writerLists: [...new Set(writerLists)].sort() }
    for (const item of items) {
      try {
        let envelope = this.checked.get(item.data)
        if (envelope == null && isSealedEnvelopeItem(item)) {
          if (options.keys == null) continue
          // (this peer's own copy, or one that did not open: see ownersCheck)
          envelope = openSealedEnvelope(decodeSealedEnvelopeItem(keyId, item, { signature: false }), options.keys)
        }
        envelope ??= decodeEnvelope(item.data)
        if (envelope.id !== item.id || envelope.toKeyId !== keyId) throw new Error('item is not the envelope it claims to be')
        out.envelopes.push(envelope)
      } catch (err: any) {
        out.invalid.push({ id: item.id, reason: String(err.message) })
      }
    }
    return out
  }

  /**
   * The owner's check of the items holders send it (ListOptions.validateItem). A sealed
   * envelope is opened and its sender's signature checked, which is what the owner relies
   * on; the pair key's signature (what holders check) is checked only where that fails.
   * Then a good one means the item came in through the holders' checks and is bad all the
   * same (kept: fetch reports it, to remove), a bad one that the holder that sent it made
   * it up (refused: the read asks another holder for the id, and no removal takes the real
   * item away). One signature check per item instead of two.
   */
  private ownersCheck (keyId: string, keys: BoxKeys): (setKey: string, item: SetItem) => void {
    const holderCheck = this.c.sets.namespaceRules(MAILBOX_SET_NAMESPACE)?.validateItem
    return (setKey, item) => {
      if (!isSealedEnvelopeItem(item)) { holderCheck?.(setKey, item); return }
      const sealed = decodeSealedEnvelopeItem(keyId, item, { signature: false })
      try {
        this.checked.set(item.data, openSealedEnvelope(sealed, keys))
      } catch {
        // (fetch opens it again, and reports why it failed)
        decodeSealedEnvelopeItem(keyId, item)
      }
    }
  }

  /** Delete delivered (or worthless) items from every holder, signed by the recipient. */
  async remove (keyId: string, ids: string[], keys: Pick<AccountKeys, 'signPublic' | 'signSecret'>, options: AbortOptions = {}): Promise<void> {
    if (ids.length === 0) return
    const result = await this.c.sets.remove(mailboxSetKey(keyId), ids, keys, options)
    this.log('removed %d items from the mailbox of %s (%d of %d holders)', ids.length, keyId, result.acknowledged, result.holders)
  }
}
