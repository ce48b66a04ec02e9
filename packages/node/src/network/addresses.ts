/** The addresses a peer dials at start (bootstrap) and listens on. */
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { InvalidMultiaddrError } from '../errors.js'

/** Bootstrap addresses as multiaddrs; throws InvalidMultiaddrError for one that is malformed or not TCP. */
export function parseBootstrapAddrs (addrs: string[]): Multiaddr[] {
  return addrs.map(a => {
    try {
      const ma = multiaddr(a)
      if (!ma.getComponents().some(c => c.name === 'tcp')) throw new Error('no /tcp/ part')
      return ma
    } catch (err: any) {
      throw new InvalidMultiaddrError(`malformed bootstrap multiaddr "${a}": ${err.message}`)
    }
  })
}

/** The TCP multiaddr to listen on for `host` (IPv4 or IPv6) and `port`. */
export function listenAddr (host: string, port: number): string {
  return `/${host.includes(':') ? 'ip6' : 'ip4'}/${host}/tcp/${port}`
}
