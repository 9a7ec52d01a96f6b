/**
 * holdfast: embeddable, in-process state replication for Node.js. See README.md.
 */
export { createNode, HoldfastNode } from './node.js'
export type { GetOptions, MemberStatus, NodeStatus, OperationOptions, PutOptions } from './node.js'
export type { NodeOptions } from './options.js'
export type { ActingContext, ActingHandler, ActingHandlerOptions, ActingStop } from './acting/controller.js'
export type { ActingAuthority, AuthorityLoss, Relinquished } from './acting/authority.js'
export type {
  ActingFailedEvent,
  ActingStartEvent,
  ActingStopEvent,
  ActingStoppedEvent,
  ActingStopReason,
  CustomEvent,
  EventBase,
  HoldfastEvent,
  QuorumLostEvent,
  RoleEvent,
  StaleFenceEvent,
} from './acting/events.js'
export { EVENT_TYPES } from './acting/events.js'
export { createNotifier, type EventSource, type Notifier, type NotifierEvent, type NotifierOptions, type NotifierStats } from './acting/notifier.js'
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
export {
  attachVip,
  defaultVipCommands,
  execFileRunner,
  parseVipAddress,
  planVip,
  VipManager,
  VIP_HANDLER_ORDER,
  type AttachVipOptions,
  type CommandResult,
  type CommandRunner,
  type VipAction,
  type VipAddress,
  type VipCommands,
  type VipEvent,
  type VipManagerDeps,
  type VipOptions,
  type VipStatus,
} from './vip/index.js'
