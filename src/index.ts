/**
 * holdfast: embeddable, in-process state replication for Node.js. See README.md.
 */
export { createNode, HoldfastNode } from './node.js'
export type { GetOptions, MemberStatus, NodeStatus, OperationOptions, PutOptions } from './node.js'
export type { NodeOptions } from './options.js'
export { HoldfastError, isHoldfastError, type ErrorCode } from './errors.js'
export type { Membership, MembershipChange, NodeId, Role } from './core/types.js'
export type { Change, CommandHandler, CommandTx, KeyValue, TxnOp, Value, JsonValue } from './state/index.js'
export type { Transport } from './transport/types.js'
export { createSwarmNode, type SwarmNodeOptions } from './swarm-node.js'
export { loadOrCreateIdentity, IDENTITY_FILE, type Identity } from './identity.js'
export {
  createSwarmTransport,
  startDhtBootstrap,
  SwarmTransport,
  type DhtAddress,
  type KeyPair,
  type PeerProblem,
  type SwarmTransportOptions,
  type SwarmTransportStats,
  type TransportClock,
} from './transport/swarm.js'
export type { BackoffPolicy } from './transport/backoff.js'
