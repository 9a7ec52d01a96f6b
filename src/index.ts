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
