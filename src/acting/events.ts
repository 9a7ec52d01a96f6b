import type { NodeId, Role } from '../core/types.js'

/** Why a node stopped acting (see ActingStopEvent). */
export type ActingStopReason =
  /** The lease could not be renewed in time (no majority answered): it stops before another node can be elected. */
  | 'leaseExpired'
  /** The node is no longer the leader of the term it acted for (a newer term, or a step-down). */
  | 'leadershipLost'
  /** A handler threw or timed out while starting; the node gives up leadership. */
  | 'handlerFailed'
  /** Leadership is being handed to another node (transferLeadership(), or close()). */
  | 'transfer'
  /** The node is closing. */
  | 'close'
  /** The fence could not be committed (for example the commit timed out); a new start follows while the node is still eligible. */
  | 'fenceFailed'

/** Fields every event carries. */
export interface EventBase {
  /** Wall-clock time of the event, ms since the epoch (for alerting; use your own monotonic clock to order events). */
  readonly time: number
  /** The node that emitted it. */
  readonly node: NodeId
  /** The node's Raft term when it happened. */
  readonly term: number
}

/** The node's role changed. */
export interface RoleEvent extends EventBase {
  readonly type: 'role'
  readonly role: Role
  readonly previous: Role
  readonly leaderId: NodeId | null
}

/** Every handler resolved: the node acts under `token` from now on. */
export interface ActingStartEvent extends EventBase {
  readonly type: 'actingStart'
  readonly token: number
  /** From becoming eligible (leader with a lease) to acting: the fence commit plus the handlers. */
  readonly startMs: number
  readonly handlers: number
}

/** The node stopped acting (or gave up starting): handlers' signals have just aborted. */
export interface ActingStopEvent extends EventBase {
  readonly type: 'actingStop'
  readonly token: number
  readonly reason: ActingStopReason
  /** Whether it had reached 'actingStart' (false: it was still starting). */
  readonly wasActing: boolean
}

/** The handlers of a stopped session finished stopping, or the grace period ran out. */
export interface ActingStoppedEvent extends EventBase {
  readonly type: 'actingStopped'
  readonly token: number
  /** From the abort to the last handler done (or the end of the grace period). */
  readonly stopMs: number
  /** Names of handlers whose start or stop was still running when the grace period ended. */
  readonly late: readonly string[]
}

/** A handler threw or timed out while starting, so the node gives up leadership. */
export interface ActingFailedEvent extends EventBase {
  readonly type: 'actingFailed'
  readonly token: number
  readonly handler: string
  /** The error's code ('TIMEOUT' for a handler that did not resolve in time) or name. */
  readonly code: string
  readonly message: string
  /** What the node did about it: handed leadership to `transferredTo`, or stepped down. */
  readonly action: 'transfer' | 'stepDown' | 'none'
  readonly transferredTo?: NodeId
}

/** This leader lost its majority: check-quorum made it step down, or its lease expired while acting. */
export interface QuorumLostEvent extends EventBase {
  readonly type: 'quorumLost'
  readonly reason: 'checkQuorum' | 'leaseExpired'
}

/**
 * A fenced write or command was rejected with STALE_FENCE when this node applied it. Every replica
 * applies the entry, so every node reports it; `index` identifies it across nodes.
 */
export interface StaleFenceEvent extends EventBase {
  readonly type: 'staleFence'
  readonly index: number
  /** The token the operation carried. */
  readonly token: number
  /** The token in force. */
  readonly fence: number
  /** The operation: put, delete, txn or call. */
  readonly operation: string
  readonly key?: string
  readonly command?: string
}

/**
 * An event for alerting: `node.on('event', (e: HoldfastEvent) => ...)`. A service may add its own
 * kinds through node.reportEvent() (the VIP manager does, as 'vip'); they carry the same base fields.
 */
export type HoldfastEvent =
  | RoleEvent
  | ActingStartEvent
  | ActingStopEvent
  | ActingStoppedEvent
  | ActingFailedEvent
  | QuorumLostEvent
  | StaleFenceEvent
  | CustomEvent

/** An event kind added by a service or a later component (for example 'vip'). */
export interface CustomEvent extends EventBase {
  readonly type: `x-${string}` | 'vip'
  readonly [detail: string]: unknown
}

/** The built-in event kinds. */
export type BuiltinEvent = Exclude<HoldfastEvent, CustomEvent>

/** An event without the base fields (what a component hands to the node, which adds them). */
export type EventFields<E> = E extends EventBase ? Omit<E, keyof EventBase> : never

/** The names of the built-in event kinds. */
export const EVENT_TYPES = ['role', 'actingStart', 'actingStop', 'actingStopped', 'actingFailed', 'quorumLost', 'staleFence'] as const
