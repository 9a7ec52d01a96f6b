/**
 * HoldfastClient: a client of the daemon's HTTP API that finds the leader itself, as
 * orchestrator-client does. Writes and linearizable reads go to the last known leader (learned
 * from the X-Holdfast-Leader header of every answer), else to the endpoints in order; an endpoint
 * that is down or answers "not applied" (503 NOT_LEADER, NO_LEADER, ...) makes it try the next,
 * with a short bounded backoff between rounds, until the operation's deadline.
 *
 * Invariant: a write is retried only when it certainly did not take effect (the connection was
 * never made, or the daemon said so). A write sent without an answer (connection lost, timeout)
 * fails with `outcomeUnknown` set, never silently retried elsewhere.
 */
import createDebug from 'debug'
import type { ClusterMember, ClusterStatus } from '../daemon/types.js'
import type { JsonValue } from '../state/commands.js'
import { ClientError, NOT_APPLIED_CODES, UNKNOWN_OUTCOME_CODES, classifyFetchError } from './client-error.js'
import { readSse } from './sse.js'

export { ClientError, isClientError } from './client-error.js'

const log = createDebug('holdfast:client')

/** The header naming the leader's base URL on every answer. */
export const LEADER_HEADER = 'x-holdfast-leader'
/** The header naming the leader's id on every answer. */
export const LEADER_ID_HEADER = 'x-holdfast-leader-id'

/** @default 10000 */
export const DEFAULT_CLIENT_TIMEOUT_MS = 10_000
/** @default 45000: three of the daemon's 15 s keep-alive intervals. */
export const DEFAULT_WATCH_IDLE_MS = 45_000
/** The first pause between two rounds over the endpoints; it doubles up to MAX_BACKOFF_MS. */
const FIRST_BACKOFF_MS = 50
const MAX_BACKOFF_MS = 1000
/** Errors in a watch stream that reconnecting cannot cure. */
const FATAL_WATCH_CODES: ReadonlySet<string> = new Set(['COMPACTED', 'INVALID_ARGUMENT', 'UNAUTHORIZED', 'TOO_LARGE'])

export interface ClientOptions {
  /** Base URLs of the daemons, e.g. ['http://10.0.0.1:8080', 'http://10.0.0.2:8080']; tried in this order. */
  endpoints: readonly string[]
  /** Bearer token sent with every request. */
  token?: string | undefined
  /** The deadline of one operation, retries included, in ms. @default 10000 */
  timeoutMs?: number | undefined
  /**
   * How long one attempt of a read may take before the client tries the next endpoint, in ms
   * (writes use the whole remaining deadline: giving up early would make their outcome unknown).
   * @default a third of timeoutMs, at least 1000
   */
  attemptTimeoutMs?: number | undefined
  /**
   * A watch stream silent for this long (no change and no keep-alive comment; the daemon sends
   * one every 15 s) is given up and resumed on another endpoint, in ms. @default 45000
   */
  watchIdleMs?: number | undefined
  /** @default globalThis.fetch */
  fetch?: typeof fetch | undefined
}

/** Options common to every operation. */
export interface CallOptions {
  /** Gives up: ABORTED (with outcomeUnknown for a write already sent). */
  signal?: AbortSignal | undefined
}

/** Read consistency: 'linearizable' (default) and 'lease' are served by the leader, 'stale' by any node. */
export type Consistency = 'linearizable' | 'lease' | 'stale'

/** A key and its value, as GET /v1/kv/{key} answers. */
export interface KvItem {
  readonly key: string
  readonly value: JsonValue
  /** The key's modRevision: the log index of its last write. */
  readonly revision: number
}

/** What GET /v1/kv answers. */
export interface ListResult {
  readonly items: readonly KvItem[]
  /** items.length. */
  readonly count: number
  /** More keys match than the limit let through; `next` is the first of them. */
  readonly more?: boolean
  readonly next?: string
}

/** One change from GET /v1/watch. */
export interface WatchChange {
  readonly revision: number
  /** The change's position among the changes of its revision, when the daemon sends it. */
  readonly seq?: number
  readonly type: 'put' | 'delete'
  readonly key: string
  readonly value?: JsonValue
  readonly [field: string]: unknown
}

export interface WatchOptions extends CallOptions {
  /** Only keys starting with this. */
  prefix?: string | undefined
  /** Start from this revision (earlier changes replayed from history); default: changes from now on. */
  fromRevision?: number | undefined
}

/** One request, before the choice of endpoint. */
interface RequestSpec {
  readonly method: 'GET' | 'PUT' | 'POST' | 'DELETE'
  readonly path: string
  readonly query?: Record<string, string | number | undefined>
  readonly body?: unknown
  /** 'leader': the known leader first, then the endpoints; 'any': the endpoints in order. */
  readonly route: 'leader' | 'any'
  /** Safe to repeat after it may have been sent (reads). */
  readonly idempotent: boolean
  readonly headers?: Record<string, string>
  readonly signal?: AbortSignal | undefined
}

/** A raw answer. */
interface Answer {
  readonly endpoint: string
  readonly response: Response
  /** Ends the attempt's timer: call once the body is read. */
  readonly release: () => void
}

/** Why one attempt failed, and whether the next endpoint may be tried. */
interface AttemptFailure {
  readonly error: ClientError
  readonly retry: boolean
}

export class HoldfastClient {
  readonly #endpoints: readonly string[]
  readonly #token: string | undefined
  readonly #timeoutMs: number
  readonly #attemptTimeoutMs: number
  readonly #watchIdleMs: number
  readonly #fetch: typeof fetch
  #leader: string | undefined
  #leaderId: string | undefined

  constructor(options: ClientOptions) {
    if (options.endpoints.length === 0) throw new ClientError('INVALID_ARGUMENT', 'no endpoints given')
    this.#endpoints = dedupe(options.endpoints.map(normalizeEndpoint))
    this.#token = options.token
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_CLIENT_TIMEOUT_MS
    if (!(this.#timeoutMs > 0)) throw new ClientError('INVALID_ARGUMENT', `timeoutMs must be positive, got ${options.timeoutMs}`)
    this.#attemptTimeoutMs = options.attemptTimeoutMs ?? Math.max(1000, Math.floor(this.#timeoutMs / 3))
    this.#watchIdleMs = options.watchIdleMs ?? DEFAULT_WATCH_IDLE_MS
    this.#fetch = options.fetch ?? globalThis.fetch
  }

  /** The endpoints in the order they are tried (normalised, without duplicates). */
  get endpoints(): readonly string[] {
    return this.#endpoints
  }

  /** The leader's base URL as last reported by a daemon; undefined when unknown. */
  get leader(): string | undefined {
    return this.#leader
  }

  /** The leader's id as last reported by a daemon; undefined when unknown. */
  get leaderId(): string | undefined {
    return this.#leaderId
  }

  /** Reads a key; null when it does not exist. */
  async get(key: string, options: CallOptions & { consistency?: Consistency | undefined } = {}): Promise<KvItem | null> {
    const consistency = options.consistency ?? 'linearizable'
    try {
      return await this.#json<KvItem>({
        method: 'GET',
        path: kvPath(key),
        query: { consistency },
        route: consistency === 'stale' ? 'any' : 'leader',
        idempotent: true,
        signal: options.signal,
      })
    } catch (err) {
      if (err instanceof ClientError && err.status === 404) return null
      throw err
    }
  }

  /**
   * Writes a key. With `ifRevision`, only if the key's revision equals it (0: the key must not
   * exist), else REVISION_MISMATCH.
   */
  async put(key: string, value: JsonValue, options: CallOptions & { ifRevision?: number | undefined } = {}): Promise<{ revision: number }> {
    return this.#json({
      method: 'PUT',
      path: kvPath(key),
      query: { ifRevision: options.ifRevision },
      body: value,
      route: 'leader',
      idempotent: false,
      signal: options.signal,
    })
  }

  /** Deletes a key; the answer is the daemon's (its revision, whether the key existed). */
  async del(key: string, options: CallOptions = {}): Promise<Record<string, unknown>> {
    return this.#json({ method: 'DELETE', path: kvPath(key), route: 'leader', idempotent: false, signal: options.signal })
  }

  /** Lists keys (a linearizable read on the leader). */
  async list(options: CallOptions & { prefix?: string | undefined; limit?: number | undefined } = {}): Promise<ListResult> {
    return this.#json({
      method: 'GET',
      path: '/v1/kv',
      query: { prefix: options.prefix, limit: options.limit },
      route: 'leader',
      idempotent: true,
      signal: options.signal,
    })
  }

  /** The cluster as the first endpoint that answers sees it (with the leader's view of the members when it can reach it). */
  async status(options: CallOptions = {}): Promise<ClusterStatus> {
    return this.#json({ method: 'GET', path: '/v1/status', route: 'any', idempotent: true, signal: options.signal })
  }

  /** The members, from status(). */
  async members(options: CallOptions = {}): Promise<readonly ClusterMember[]> {
    return (await this.status(options)).members
  }

  /** Promotes a learner to voter. */
  async promote(id: string, options: CallOptions = {}): Promise<Record<string, unknown>> {
    return this.#json({ method: 'POST', path: `/v1/members/${encodeURIComponent(id)}/promote`, route: 'leader', idempotent: false, signal: options.signal })
  }

  /** Demotes a voter to learner. */
  async demote(id: string, options: CallOptions = {}): Promise<Record<string, unknown>> {
    return this.#json({ method: 'POST', path: `/v1/members/${encodeURIComponent(id)}/demote`, route: 'leader', idempotent: false, signal: options.signal })
  }

  /** Removes a member from the cluster. */
  async remove(id: string, options: CallOptions = {}): Promise<Record<string, unknown>> {
    return this.#json({ method: 'DELETE', path: `/v1/members/${encodeURIComponent(id)}`, route: 'leader', idempotent: false, signal: options.signal })
  }

  /** Hands leadership over to the member `to`. */
  async transfer(to: string, options: CallOptions = {}): Promise<Record<string, unknown>> {
    return this.#json({ method: 'POST', path: '/v1/leader/transfer', body: { to }, route: 'leader', idempotent: false, signal: options.signal })
  }

  /**
   * Follows changes as server-sent events. When the stream breaks, reconnects (to the next
   * endpoint first) and resumes after the last change received, with Last-Event-ID and
   * fromRevision; a change seen before is not yielded twice. Ends when `signal` aborts; fails
   * when no endpoint accepts the stream within the deadline, or on an error the daemon reports.
   */
  async *watch(options: WatchOptions = {}): AsyncGenerator<WatchChange> {
    const { signal } = options
    let last: { revision: number; seq: number } | undefined
    let lastEventId: string | undefined
    let start = 0
    let idle = 0
    for (;;) {
      if (signal?.aborted) return
      const lastBefore = last
      const query: Record<string, string | number | undefined> = { prefix: options.prefix }
      // Resume from the last revision itself: if the daemon counts it inclusively, its changes
      // come again and are skipped below; either way the rest of a revision cut short is not lost.
      query['fromRevision'] = last ? last.revision : options.fromRevision
      const headers: Record<string, string> = { accept: 'text/event-stream' }
      if (lastEventId !== undefined) headers['last-event-id'] = lastEventId
      // Aborted when the stream is idle too long (a frozen daemon keeps its sockets open).
      const stale = new AbortController()
      let answer: Answer
      try {
        answer = await this.#send(
          {
            method: 'GET',
            path: '/v1/watch',
            query,
            route: 'any',
            idempotent: true,
            headers,
            signal: signal ? AbortSignal.any([signal, stale.signal]) : stale.signal,
          },
          { streaming: true, rotate: start },
        )
      } catch (err) {
        if (signal?.aborted) return
        throw err
      }
      const body = answer.response.body
      if (!body) throw new ClientError('BAD_RESPONSE', 'watch answer has no body', { endpoint: answer.endpoint, status: answer.response.status })
      log('watch: streaming from %s', answer.endpoint)
      let idleTimer: NodeJS.Timeout | undefined
      const arm = (): void => {
        clearTimeout(idleTimer)
        idleTimer = setTimeout(() => {
          log('watch: nothing from %s for %d ms, reconnecting', answer.endpoint, this.#watchIdleMs)
          stale.abort()
        }, this.#watchIdleMs)
      }
      try {
        arm()
        for await (const ev of readSse(touching(body, arm))) {
          if (ev.event === 'error') {
            // The daemon ended the stream with an error: a lasting one (history compacted, a bad
            // request, no access) ends the watch; anything else (the node closing, ...) reconnects.
            const error = apiErrorFromText(ev.data, answer.response.status, answer.endpoint)
            if (FATAL_WATCH_CODES.has(error.code)) throw error
            log('watch: %s ended the stream: %s %s', answer.endpoint, error.code, error.message)
            break
          }
          if (ev.event !== 'message' && ev.event !== 'change') continue
          const change = parseChange(ev.data, answer.endpoint)
          if (ev.id !== undefined) lastEventId = ev.id
          const pos = { revision: change.revision, seq: typeof change.seq === 'number' ? change.seq : 0 }
          if (last && (pos.revision < last.revision || (pos.revision === last.revision && pos.seq <= last.seq))) continue
          last = pos
          // The consumer's pace is not the daemon's silence: no idle clock while it holds the change.
          clearTimeout(idleTimer)
          yield change
          arm()
        }
        log('watch: stream from %s ended', answer.endpoint)
      } catch (err) {
        if (signal?.aborted) return
        if (err instanceof ClientError) throw err
        log('watch: stream from %s broke: %s', answer.endpoint, err instanceof Error ? err.message : err)
      } finally {
        clearTimeout(idleTimer)
      }
      // Reconnect, starting with the endpoint after the one that dropped us; streams that end
      // before delivering anything back off, so a daemon that keeps closing them is not hammered.
      const i = this.#endpoints.indexOf(answer.endpoint)
      start = i === -1 ? 0 : i + 1
      idle = last === lastBefore ? idle + 1 : 0
      if (idle > 0) await sleep(Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** idle), signal)
    }
  }

  /** Sends a request and parses a JSON answer. */
  async #json<T>(spec: RequestSpec): Promise<T> {
    const answer = await this.#send(spec, { streaming: false, rotate: 0 })
    const { response, endpoint } = answer
    let text: string
    try {
      text = await response.text()
    } catch (err) {
      answer.release()
      const failure = classifyFetchError(err)
      throw new ClientError('CONNECTION_LOST', `${endpoint}: the answer was cut off (${failure.detail})`, {
        endpoint,
        status: response.status,
        outcomeUnknown: !spec.idempotent,
        cause: err,
      })
    }
    answer.release()
    if (text === '') return {} as T
    try {
      return JSON.parse(text) as T
    } catch {
      throw new ClientError('BAD_RESPONSE', `${endpoint}: the answer is not JSON: ${text.slice(0, 80)}`, { endpoint, status: response.status })
    }
  }

  /**
   * Tries endpoints until one gives a 2xx answer, or fails with the most telling error. `rotate`
   * starts the round over the endpoints at that index (watch reconnects elsewhere first).
   */
  async #send(spec: RequestSpec, how: { streaming: boolean; rotate: number }): Promise<Answer> {
    const deadline = Date.now() + this.#timeoutMs
    const failures: string[] = []
    let lastApiError: ClientError | undefined
    let lastError: ClientError | undefined
    for (let round = 0; ; round++) {
      const queue = this.#order(spec.route, how.rotate)
      const tried = new Set<string>()
      while (queue.length > 0) {
        const endpoint = queue.shift()!
        if (tried.has(endpoint)) continue
        tried.add(endpoint)
        if (spec.signal?.aborted) throw aborted(endpoint, false)
        const remaining = deadline - Date.now()
        if (remaining <= 0) break
        const result = await this.#attempt(endpoint, spec, remaining, how.streaming)
        if ('response' in result) return result
        const { error, retry } = result
        lastError = error
        if (error.status !== undefined) lastApiError = error
        if (!retry) throw error
        failures.push(`${endpoint}: ${error.status ?? ''}${error.status !== undefined ? ' ' : ''}${error.code}`)
        log('%s %s on %s failed (%s), trying the next endpoint', spec.method, spec.path, endpoint, error.message)
        // A daemon that knows the leader sends us there next.
        if (spec.route === 'leader' && this.#leader !== undefined && !tried.has(this.#leader)) queue.unshift(this.#leader)
      }
      const pause = Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** round)
      if (Date.now() + pause >= deadline) break
      await sleep(pause, spec.signal)
      if (spec.signal?.aborted) throw aborted(undefined, false)
    }
    if (lastApiError) throw lastApiError
    if (lastError?.code === 'TIMEOUT') throw lastError
    throw new ClientError('UNAVAILABLE', `no endpoint answered within ${this.#timeoutMs} ms (${failures.slice(-this.#endpoints.length - 1).join('; ') || 'none tried'})`, {
      endpoint: lastError?.endpoint,
    })
  }

  /** One request to one endpoint. */
  async #attempt(endpoint: string, spec: RequestSpec, remainingMs: number, streaming: boolean): Promise<Answer | AttemptFailure> {
    const url = new URL(endpoint + spec.path)
    for (const [k, v] of Object.entries(spec.query ?? {})) if (v !== undefined) url.searchParams.set(k, String(v))
    const headers: Record<string, string> = { accept: 'application/json', ...spec.headers }
    if (this.#token !== undefined) headers['authorization'] = `Bearer ${this.#token}`
    let body: string | undefined
    if (spec.body !== undefined) {
      body = JSON.stringify(spec.body)
      headers['content-type'] = 'application/json'
    }
    // Reads give up early to try elsewhere; a write keeps the whole deadline (see the invariant).
    // The timer bounds the answer's headers and, for JSON, its body (cleared by release()); a
    // stream lives on until the caller stops, so its timer ends when the headers are in.
    const attemptMs = spec.idempotent && !streaming ? Math.min(remainingMs, this.#attemptTimeoutMs) : remainingMs
    const timeout = new AbortController()
    const timer = setTimeout(() => timeout.abort(new DOMException('attempt timed out', 'TimeoutError')), attemptMs)
    const release = (): void => clearTimeout(timer)
    const signal = spec.signal ? AbortSignal.any([spec.signal, timeout.signal]) : timeout.signal
    let response: Response
    try {
      response = await this.#fetch(url, { method: spec.method, headers, body, signal, redirect: 'manual' })
    } catch (err) {
      release()
      if (spec.signal?.aborted) throw aborted(endpoint, !spec.idempotent)
      const failure = classifyFetchError(err)
      if (failure.kind === 'not-sent') {
        if (this.#leader === endpoint) this.#leader = undefined
        return { error: new ClientError('UNAVAILABLE', `${endpoint}: not reachable (${failure.detail})`, { endpoint, cause: err }), retry: true }
      }
      const what = failure.code === 'TIMEOUT' ? `no answer within ${attemptMs} ms` : `connection lost (${failure.detail})`
      if (spec.idempotent) return { error: new ClientError(failure.code, `${endpoint}: ${what}`, { endpoint, cause: err }), retry: true }
      return {
        error: new ClientError(failure.code, `${endpoint}: ${what}; the ${spec.method} was sent and may or may not have taken effect`, {
          endpoint,
          outcomeUnknown: true,
          cause: err,
        }),
        retry: false,
      }
    }
    this.#learnLeader(response.headers)
    if (response.status >= 200 && response.status < 300) {
      if (streaming) release()
      return { endpoint, response, release }
    }
    clearTimeout(timer)
    if (response.status >= 300 && response.status < 400) {
      // A follower asked to redirect: the request was not applied; the Location names the leader.
      await response.body?.cancel().catch(() => {})
      const location = response.headers.get('location')
      if (location) {
        try {
          this.#leader = new URL(location, endpoint).origin
        } catch {
          // an unusable Location: rely on X-Holdfast-Leader
        }
      }
      return { error: new ClientError('NOT_LEADER', `${endpoint}: redirected to the leader (${location ?? 'no location'})`, { endpoint, status: response.status }), retry: true }
    }
    const text = await response.text().catch(() => '')
    const error = apiErrorFromText(text, response.status, endpoint)
    if (NOT_APPLIED_CODES.has(error.code)) return { error, retry: true }
    if (UNKNOWN_OUTCOME_CODES.has(error.code)) {
      if (spec.idempotent) return { error, retry: true }
      return {
        error: new ClientError(error.code, `${error.message}; the ${spec.method} may or may not have taken effect`, {
          endpoint,
          status: error.status,
          outcomeUnknown: true,
        }),
        retry: false,
      }
    }
    // A 502/503/504 without one of the daemon's codes (a proxy in between): reads may go elsewhere.
    if (spec.idempotent && response.status >= 502 && response.status <= 504) return { error, retry: true }
    return { error, retry: false }
  }

  #learnLeader(headers: Headers): void {
    const url = headers.get(LEADER_HEADER)
    if (url) {
      try {
        this.#leader = normalizeEndpoint(url)
      } catch {
        log('ignoring an unusable %s header: %s', LEADER_HEADER, url)
      }
    }
    const id = headers.get(LEADER_ID_HEADER)
    if (id) this.#leaderId = id
  }

  /** The order to try endpoints in this round. */
  #order(route: 'leader' | 'any', rotate: number): string[] {
    const n = this.#endpoints.length
    const r = ((rotate % n) + n) % n
    const base = [...this.#endpoints.slice(r), ...this.#endpoints.slice(0, r)]
    if (route === 'leader' && this.#leader !== undefined) return [this.#leader, ...base.filter((e) => e !== this.#leader)]
    return base
  }
}

/**
 * An endpoint as a base URL without a trailing slash; `host:port` gets http://.
 * Throws ClientError INVALID_ARGUMENT for anything else.
 */
export function normalizeEndpoint(endpoint: string): string {
  const raw = endpoint.trim()
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(raw) ? raw : `http://${raw}`
  let url: URL
  try {
    url = new URL(withScheme)
  } catch {
    throw new ClientError('INVALID_ARGUMENT', `not an endpoint URL: ${JSON.stringify(endpoint)}`)
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ClientError('INVALID_ARGUMENT', `not an http(s) endpoint: ${JSON.stringify(endpoint)}`)
  if (url.search || url.hash) throw new ClientError('INVALID_ARGUMENT', `an endpoint has no query or fragment: ${JSON.stringify(endpoint)}`)
  return (url.origin + url.pathname).replace(/\/+$/, '')
}

function kvPath(key: string): string {
  if (key === '') throw new ClientError('INVALID_ARGUMENT', 'the key is empty')
  return `/v1/kv/${encodeURIComponent(key)}`
}

/** The daemon's error body `{"error":{"code","message"}}`, or a stand-in for anything else. */
function apiErrorFromText(text: string, status: number, endpoint: string): ClientError {
  let code = `HTTP_${status}`
  let message = text.trim().slice(0, 200) || `HTTP ${status}`
  try {
    const parsed = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } }
    if (parsed && typeof parsed.error === 'object' && parsed.error !== null) {
      if (typeof parsed.error.code === 'string') code = parsed.error.code
      if (typeof parsed.error.message === 'string') message = parsed.error.message
    }
  } catch {
    // not JSON: keep the stand-in
  }
  return new ClientError(code, message, { status, endpoint })
}

function parseChange(data: string, endpoint: string): WatchChange {
  let parsed: unknown
  try {
    parsed = JSON.parse(data)
  } catch {
    throw new ClientError('BAD_RESPONSE', `${endpoint}: a watch event is not JSON: ${data.slice(0, 80)}`, { endpoint })
  }
  const c = parsed as Partial<WatchChange> | null
  if (!c || typeof c !== 'object' || typeof c.revision !== 'number' || typeof c.key !== 'string') {
    throw new ClientError('BAD_RESPONSE', `${endpoint}: a watch event is not a change: ${data.slice(0, 80)}`, { endpoint })
  }
  return c as WatchChange
}

function aborted(endpoint: string | undefined, sent: boolean): ClientError {
  return new ClientError('ABORTED', sent ? 'aborted after the request was sent; its effect is unknown' : 'aborted', {
    endpoint,
    outcomeUnknown: sent,
  })
}

/** Passes the chunks on, calling `touch` on each. */
async function* touching(body: AsyncIterable<Uint8Array>, touch: () => void): AsyncGenerator<Uint8Array> {
  for await (const chunk of body) {
    touch()
    yield chunk
  }
}

function dedupe(xs: readonly string[]): string[] {
  return [...new Set(xs)]
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer)
      signal?.removeEventListener('abort', done)
      resolve()
    }
    const timer = setTimeout(done, ms)
    signal?.addEventListener('abort', done, { once: true })
  })
}
