/**
 * The client's error: what went wrong with a request to the daemon's HTTP API, and whether the
 * request's effect is known. The daemon's own errors keep their codes (REVISION_MISMATCH,
 * NOT_FOUND, ...); the client adds UNAVAILABLE (no endpoint answered), TIMEOUT and
 * CONNECTION_LOST (sent but no answer), ABORTED (the caller gave up) and BAD_RESPONSE.
 */

/** Daemon error codes that mean "not applied, try elsewhere": a write may be retried safely. */
export const NOT_APPLIED_CODES: ReadonlySet<string> = new Set([
  'NOT_LEADER',
  'UNAVAILABLE',
  'NO_LEADER',
  'TRANSFER_IN_PROGRESS',
  'LEADERSHIP_LOST',
])

/** Codes that, on a write, mean the write may or may not have taken effect. */
export const UNKNOWN_OUTCOME_CODES: ReadonlySet<string> = new Set(['TIMEOUT', 'CONNECTION_LOST', 'ABORTED'])

/** A failed client request. Branch on `code`, never on the message. */
export class ClientError extends Error {
  /** Stable machine-readable code: the daemon's error code, or one of the client's own. */
  readonly code: string
  /** The HTTP status of the answer; undefined when no answer came. */
  readonly status: number | undefined
  /** The endpoint (base URL) that gave the answer or failed last; undefined when none was tried. */
  readonly endpoint: string | undefined
  /**
   * True when a write was sent and its effect is unknown (it may have been applied): the client
   * did not retry it. Reads never set this.
   */
  readonly outcomeUnknown: boolean

  constructor(
    code: string,
    message: string,
    options: { status?: number | undefined; endpoint?: string | undefined; outcomeUnknown?: boolean; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'ClientError'
    this.code = code
    this.status = options.status
    this.endpoint = options.endpoint
    this.outcomeUnknown = options.outcomeUnknown ?? false
  }
}

/** True when `err` is a ClientError, optionally with the given code. */
export function isClientError(err: unknown, code?: string): err is ClientError {
  return err instanceof ClientError && (code === undefined || err.code === code)
}

/** System error codes of a connection that failed before the request went out. */
const NOT_SENT_SYSCALL_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRNOTAVAIL',
  'UND_ERR_CONNECT_TIMEOUT',
])

/** How a fetch() that threw (no response) failed. */
export type TransportFailure =
  /** The connection was never made: the request was not sent. */
  | { readonly kind: 'not-sent'; readonly detail: string }
  /** The request may have been sent: the connection broke or the attempt timed out. */
  | { readonly kind: 'lost'; readonly code: 'CONNECTION_LOST' | 'TIMEOUT'; readonly detail: string }

/**
 * Classifies an error thrown by fetch(). Node's fetch wraps the socket error in `cause`
 * (a happy-eyeballs connect may give an AggregateError whose `errors` all failed to connect).
 * Anything not recognisably "never connected" counts as possibly sent.
 */
export function classifyFetchError(err: unknown): TransportFailure {
  if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')) {
    return { kind: 'lost', code: 'TIMEOUT', detail: 'timed out' }
  }
  const cause = err instanceof Error ? (err.cause as { code?: unknown; message?: unknown; errors?: unknown } | undefined) : undefined
  const codes: string[] = []
  if (cause && typeof cause.code === 'string') codes.push(cause.code)
  else if (cause && Array.isArray(cause.errors)) {
    for (const e of cause.errors as Array<{ code?: unknown }>) codes.push(typeof e?.code === 'string' ? e.code : '?')
  }
  const detail = codes.length > 0 ? codes.join(',') : String(cause && typeof cause.message === 'string' ? cause.message : err instanceof Error ? err.message : err)
  if (codes.length > 0 && codes.every((c) => NOT_SENT_SYSCALL_CODES.has(c))) return { kind: 'not-sent', detail }
  // 'bad port' and other URL problems are refused before connecting.
  if (cause && typeof cause.message === 'string' && /bad port|invalid url/i.test(cause.message)) return { kind: 'not-sent', detail }
  return { kind: 'lost', code: 'CONNECTION_LOST', detail }
}
