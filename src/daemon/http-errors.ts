/**
 * Errors of the daemon's HTTP API: every failure answers `{"error":{"code","message"}}` with a
 * status that follows from its code. Library failures (HoldfastError) map by their stable code;
 * anything else is 500 INTERNAL with a generic message (no stack or internals leak to clients).
 */
import { isHoldfastError, type ErrorCode } from '../errors.js'

/** Codes the HTTP layer adds to the library's own (ErrorCode). */
export type HttpErrorCode =
  | 'NOT_FOUND'
  | 'METHOD_NOT_ALLOWED'
  | 'UNAUTHORIZED'
  | 'INVALID_JSON'
  | 'INVALID_KEY'
  | 'NO_LEADER'
  | 'NOT_ACTING'
  | 'NOT_READY'
  | 'REQUEST_TIMEOUT'
  | 'INTERNAL'

/** A failure with the HTTP status and headers it answers with. */
export class HttpError extends Error {
  readonly status: number
  readonly code: HttpErrorCode | ErrorCode
  readonly headers: Readonly<Record<string, string>>

  constructor(status: number, code: HttpErrorCode | ErrorCode, message: string, headers: Record<string, string> = {}) {
    super(message)
    this.name = 'HttpError'
    this.status = status
    this.code = code
    this.headers = headers
  }
}

/** The status each library error code answers with. Codes not listed are 500. */
const STATUS: Partial<Record<ErrorCode, number>> = {
  INVALID_ARGUMENT: 400,
  TOO_LARGE: 413,
  REVISION_MISMATCH: 409,
  STALE_FENCE: 409,
  // A membership change that the cluster's current state forbids (unknown node, last voter, ...).
  INVALID_MEMBERSHIP_CHANGE: 409,
  COMPACTED: 410,
  // Nothing was done, and trying again (possibly elsewhere) may succeed.
  NOT_LEADER: 503,
  UNAVAILABLE: 503,
  LEADERSHIP_LOST: 503,
  TRANSFER_IN_PROGRESS: 503,
  MEMBERSHIP_CHANGE_PENDING: 503,
  CLOSED: 503,
  // The effect is unknown: the write may or may not have been applied (the message says so).
  CONNECTION_LOST: 503,
  TIMEOUT: 504,
  ABORTED: 504,
}

/** Library codes whose effect on a write is unknown; their message says so explicitly. */
const EFFECT_UNKNOWN = new Set<ErrorCode>(['CONNECTION_LOST', 'TIMEOUT', 'ABORTED'])

/** Converts anything thrown while serving a request into the HttpError it answers with. */
export function toHttpError(err: unknown): HttpError {
  if (err instanceof HttpError) return err
  if (isHoldfastError(err)) {
    const status = STATUS[err.code]
    if (status === undefined) return new HttpError(500, 'INTERNAL', `internal error (${err.code})`)
    let message = err.message
    if (EFFECT_UNKNOWN.has(err.code) && !/effect is unknown/.test(message)) message += '; its effect is unknown'
    const headers: Record<string, string> = status === 503 ? { 'Retry-After': '1' } : {}
    return new HttpError(status, err.code, message, headers)
  }
  return new HttpError(500, 'INTERNAL', 'internal error')
}

/** The JSON body of an error response. */
export function errorBody(err: HttpError): { error: { code: string; message: string } } {
  return { error: { code: err.code, message: err.message } }
}
