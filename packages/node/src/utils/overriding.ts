/**
 * A view of `real` in which the named properties are replaced and every other property
 * is `real`'s own (methods bound to `real`): how the peer hands libp2p's and kad-dht's
 * objects a changed method without subclassing or patching them.
 */
export function overriding<T extends object> (real: T, overrides: Record<string, unknown>): T {
  return new Proxy(real, {
    get (target, prop) {
      if (typeof prop === 'string' && Object.prototype.hasOwnProperty.call(overrides, prop)) return overrides[prop]
      const value = Reflect.get(target, prop, target)
      return typeof value === 'function' ? value.bind(target) : value
    }
  })
}
