/**
 * The NAT test's network (network namespaces, home routers masquerading with nftables):
 * scripts/lib/nat-network.mjs, which the NAT benchmark (scripts/bench-nat.mjs) runs too.
 */
export { NatNetwork, nftUnavailable } from '../../scripts/lib/nat-network.mjs'
export type { NatKind, NatHost, NatRouter } from '../../scripts/lib/nat-network.mjs'
