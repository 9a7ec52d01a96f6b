/**
 * Every error holdfast raises is a HoldfastError with a stable `code`, so callers branch on the code,
 * never on the message text.
 */
export type ErrorCode =
  /** This node is not the leader; `leaderHint` names the leader when known. */
  | 'NOT_LEADER'
  /** A leadership transfer is in progress; proposals are refused until it ends. */
  | 'TRANSFER_IN_PROGRESS'
  /** A membership change is already pending, or the leader has not yet committed an entry of its term. */
  | 'MEMBERSHIP_CHANGE_PENDING'
  /** The requested membership change is invalid (unknown node, would remove the last voter, ...). */
  | 'INVALID_MEMBERSHIP_CHANGE'
  /** The operation did not complete before its deadline. Its effect is unknown. */
  | 'TIMEOUT'
  /** The caller aborted the operation. Its effect is unknown. */
  | 'ABORTED'
  /** The operation's fencing token is older than the current one. */
  | 'STALE_FENCE'
  /** A compare-and-set found a different revision. */
  | 'REVISION_MISMATCH'
  /** A value or request exceeds a configured size limit. */
  | 'TOO_LARGE'
  /** An argument is malformed. */
  | 'INVALID_ARGUMENT'
  /** Log entries needed for the operation were compacted away. */
  | 'COMPACTED'
  /** Stored data failed validation (truncated, corrupt or from an incompatible version). */
  | 'CORRUPT_DATA'
  /** A frame or message could not be decoded. */
  | 'DECODE_ERROR'
  /** The node (or a resource it owns) is closed. */
  | 'CLOSED'
  /** The API was used against its contract (a bug in the caller). */
  | 'CONTRACT_VIOLATION'
  /** The peer is not connected: the request was never sent. */
  | 'UNAVAILABLE'
  /** The peer disconnected before answering: the request's effect is unknown. */
  | 'CONNECTION_LOST'
  /** A proposal was replaced in the log after a leader change: it did not take effect and may be retried. */
  | 'LEADERSHIP_LOST'
  /** A peer's request handler failed; the message carries the remote error. */
  | 'REMOTE_ERROR'
  /** No handler is registered for the requested method. */
  | 'UNKNOWN_METHOD'
  /** A registered state-machine command threw; the message carries its error's message. Nothing changed. */
  | 'COMMAND_FAILED'
  /** No handler is registered under the command's name on this replica. Nothing changed. */
  | 'UNKNOWN_COMMAND'
  /** A peer did not prove it knows the cluster secret (or refused our proof): the connection was closed. */
  | 'AUTH_FAILED'
  /** A peer broke the wire protocol (a message out of order or of the wrong kind): the connection was closed. */
  | 'PROTOCOL_ERROR'

/** The one error class of holdfast. */
export class HoldfastError extends Error {
  /** Stable machine-readable code. */
  readonly code: ErrorCode
  /** For NOT_LEADER: the id of the node believed to lead, when known. */
  readonly leaderHint: string | undefined

  constructor(code: ErrorCode, message: string, options: { leaderHint?: string | undefined; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'HoldfastError'
    this.code = code
    this.leaderHint = options.leaderHint
  }
}

/** True when `err` is a HoldfastError, optionally with the given code. */
export function isHoldfastError(err: unknown, code?: ErrorCode): err is HoldfastError {
  return err instanceof HoldfastError && (code === undefined || err.code === code)
}
