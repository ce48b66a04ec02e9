/**
 * The namespaces this peer serves and the rules each one sets for its keys, items and
 * removals. Holders and readers check every item with the same rules.
 */
import {
  parseSetKey, setItemSchema, UnknownSetNamespaceError, MAX_SET_CLOCK_SKEW_MS,
  type SetItem, type SetNamespaceRules
} from '@conf-chat/protocol'
import { ITEM_EXPIRED, ITEM_IN_FUTURE } from './set-errors.js'

export interface SetNamespacesInit {
  /** Item lifetime for namespaces that set none (ms). */
  itemTtlMs: number
  /** The namespaces served at first, by name. */
  namespaces: Record<string, SetNamespaceRules>
}

export class SetNamespaces {
  /** Item lifetime for namespaces that set none (ms). */
  readonly itemTtlMs: number
  private readonly rules = new Map<string, SetNamespaceRules>()

  constructor (init: SetNamespacesInit) {
    this.itemTtlMs = init.itemTtlMs
    for (const [ns, rules] of Object.entries(init.namespaces)) this.rules.set(ns, rules)
  }

  /** Serve (and accept writes to) sets of namespace `ns` under these rules; replaces earlier rules. */
  register (ns: string, rules: SetNamespaceRules): void {
    this.rules.set(ns, rules)
  }

  /** The rules of namespace `ns`, if it is served. */
  rulesOf (ns: string): SetNamespaceRules | undefined {
    return this.rules.get(ns)
  }

  /** The rules for a set key; throws InvalidSetKeyError or UnknownSetNamespaceError. */
  rulesFor (setKey: string): SetNamespaceRules {
    const { namespace, parts } = parseSetKey(setKey)
    const rules = this.rules.get(namespace)
    if (rules == null) throw new UnknownSetNamespaceError(`unknown set namespace ${namespace}`)
    rules.checkKey(parts)
    return rules
  }

  /** How long an item of the set lives (ms); the default for a key no namespace takes. */
  ttlFor (setKey: string): number {
    try {
      return this.rulesFor(setKey).itemTtlMs ?? this.itemTtlMs
    } catch {
      return this.itemTtlMs
    }
  }

  /** The shortest item lifetime of any namespace served (ms). */
  shortestTtl (): number {
    return Math.min(this.itemTtlMs, ...[...this.rules.values()].map(r => r.itemTtlMs ?? Infinity))
  }

  /** Why an item may not be stored at `now`, or undefined if it may. */
  checkItem (setKey: string, rules: SetNamespaceRules, item: SetItem, now: number): string | undefined {
    const parsed = setItemSchema.safeParse(item)
    if (!parsed.success) return `malformed item: ${parsed.error.issues[0]?.path.join('.') ?? ''} ${parsed.error.issues[0]?.message ?? ''}`.trim()
    if (item.addedAt > now + MAX_SET_CLOCK_SKEW_MS) return ITEM_IN_FUTURE
    if (item.addedAt + (rules.itemTtlMs ?? this.itemTtlMs) <= now) return ITEM_EXPIRED
    try {
      rules.validateItem(setKey, parsed.data)
    } catch (err: any) {
      return String(err.message ?? err)
    }
    return undefined
  }
}
