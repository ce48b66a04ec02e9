// Types of nat-network.mjs (the NAT test imports it through test/helpers/nat.ts).

export type NatKind = 'cone' | 'symmetric'

export interface NatHost {
  name: string
  ns: string
  /** The host's own address (a public host: on the internet bridge; a home host: in its home subnet). */
  ip: string
  /** Set for a home host: its router. */
  router?: NatRouter
}

export interface NatRouter {
  name: string
  ns: string
  /** The router's address on the internet bridge: what public hosts see a home host as. */
  publicIp: string
  kind: NatKind
}

/** Every namespace `ip netns list` shows (names only). */
export function listNamespaces (): string[]

/** Undefined when nftables can be used in a namespace here; otherwise why not. */
export function nftUnavailable (): string | undefined

export class NatNetwork {
  readonly hosts: NatHost[]
  readonly routers: NatRouter[]
  get namespaces (): string[]
  /** Make the internet bridge (call first). */
  create (): void
  /** A host on the internet bridge, with a public address. */
  publicHost (name: string): NatHost
  /** A home network: a router of `kind` on the internet bridge, and one host behind it. */
  homeHost (name: string, kind: NatKind): NatHost
  /** Another host in the home of `nextTo`: same router and subnet, no NAT between the two. */
  homeNeighbour (name: string, nextTo: string): NatHost
  host (name: string): NatHost
  /** The command that runs a program inside the host's namespace. */
  wrapper (name: string): string[]
  /** The router's connection tracking entries (for a failure's report). */
  conntrack (router: NatRouter): string
  /** Delete every namespace we made. Safe to call twice. */
  cleanup (): void
}
