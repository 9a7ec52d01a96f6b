import type { Membership, NodeId } from './core/types.js'
import type { Transport } from './transport/types.js'

/** @default 100 */
export const DEFAULT_TICK_MS = 100
/** @default 10 */
export const DEFAULT_ELECTION_TICKS = 10
/** @default 1 */
export const DEFAULT_HEARTBEAT_TICKS = 1
/** @default 10000 */
export const DEFAULT_OPERATION_TIMEOUT_MS = 10_000
/** @default 1 MiB */
export const DEFAULT_MAX_VALUE_SIZE = 1024 * 1024
/** @default 10000 */
export const DEFAULT_LOG_TAIL = 10_000
/** @default 5000 */
export const DEFAULT_CLOSE_TRANSFER_MS = 5_000
/** @default 30000 */
export const DEFAULT_ACTING_TIMEOUT_MS = 30_000
/** @default 5000 */
export const DEFAULT_ACTING_GRACE_MS = 5_000

/** Options of createNode(). Dependencies (transport, clock, randomness) are separate from settings. */
export interface NodeOptions {
  /** The directory holding this node's LMDB environment (log, hard state and state machine). */
  dataDir: string
  /**
   * This node's id. With the hyperswarm transport it is the public key; with the memory transport
   * any unique string. When omitted, an id is created on first start and kept in the data directory.
   */
  id?: NodeId
  /** The transport to the cluster's peers. Its `id` must equal this node's id. */
  transport: Transport
  /**
   * Creates a new cluster with this membership when the data directory is empty. Every initial
   * voter must be started with the same bootstrap; a node started without it waits to be added.
   */
  bootstrap?: Membership
  /** Milliseconds per logical tick. @default 100 */
  tickMs?: number
  /** Election timeout in ticks (randomised in [n, 2n)). @default 10 */
  electionTicks?: number
  /** Heartbeat interval in ticks. @default 1 */
  heartbeatTicks?: number
  /**
   * Lease margin in ticks: lease reads and the acting lease end this many ticks before followers may
   * elect another leader. Safe while clocks drift apart by less than about
   * (electionTicks - margin) / (electionTicks - 1), 11% with the defaults.
   * @default 2
   */
  leaseMarginTicks?: number
  /** Default deadline of writes and linearizable reads, in ms. @default 10000 */
  operationTimeoutMs?: number
  /** Largest value accepted by put(). @default 1 MiB */
  maxValueSize?: number
  /** Log entries kept behind the snapshot point, so lagging followers catch up without a snapshot. @default 10000 */
  logTail?: number
  /**
   * Walk every live page of the LMDB file at open, so a damaged file is refused with CORRUPT_DATA
   * instead of being read (LMDB itself may abort the process on some damaged pages). Costs a read of
   * every tree page at open; turn it off only for very large states whose disks you trust.
   * @default true
   */
  verifyOnOpen?: boolean
  /** How long close() waits for a leadership transfer before closing anyway. @default 5000 */
  closeTransferMs?: number
  /**
   * How long one onActing handler may take to start (to resolve) before it counts as failed, which
   * makes the node give up leadership. A handler can override it (onActing's `timeoutMs`).
   * @default 30000
   */
  actingTimeoutMs?: number
  /**
   * After an acting node is aborted, how long its handlers get to stop (their start promises to
   * settle and their stop functions to resolve) before the node reports them late
   * ('actingStopped' with `late`) and may act again. An abort for a lost lease comes at least
   * leaseMarginTicks ticks (less clock drift) before another node could be elected, and often not
   * much more, so work that cannot stop within that must rely on the fencing token, not on the
   * grace period.
   * @default 5000
   */
  actingGraceMs?: number
  /** Random numbers in [0, 1), for election timeouts. @default Math.random */
  rand?: () => number
  /** A monotonic clock in ms, for tick catch-up after pauses. @default performance.now */
  now?: () => number
  /** @internal Fault injection for tests: called at named points of the driver; a throw there acts as a crash. */
  faultPoints?: { afterSnapshotRestore?: () => void }
}
