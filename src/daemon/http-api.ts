/**
 * The daemon's HTTP API (node:http, JSON): keys, watches, cluster status and membership, the
 * load balancer's leader check, Prometheus metrics and the status page. Routes are in routes.ts,
 * input checks in http-input.ts, error statuses in http-errors.ts, watches in sse.ts.
 *
 * Every response carries X-Holdfast-Node-Id and, when a leader is known, X-Holdfast-Leader-Id and
 * X-Holdfast-Leader (its base URL). A follower serves writes and linearizable (or lease) reads
 * through the library, which forwards them to the leader over the authenticated peer connection;
 * such responses carry X-Holdfast-Proxied: 1. With `?redirect=1` it answers 307 to the leader
 * instead (503 NO_LEADER when no leader, or its URL, is known).
 *
 * With a token configured, every route needs `Authorization: Bearer <token>` except
 * /v1/health, /v1/leader-check and the status page `/` (static HTML without data; the calls it
 * makes for data need the token like any other client). Every request has a server-side deadline.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import createDebug from 'debug'
import { HoldfastError, isHoldfastError } from '../errors.js'
import { kvJson } from './kv-json.js'
import { HttpError, errorBody, toHttpError } from './http-errors.js'
import { checkKeyText, consistencyParam, decodeKey, decodePrefix, flagParam, intParam, parseJson, readBody, type Consistency } from './http-input.js'
import { createMetrics, type Metrics } from './metrics.js'
import { matchRoute, type HandlerName } from './routes.js'
import { parseEventId, serveWatch, type WatchStart } from './sse.js'
import { STATUS_PAGE_CSP, statusPageHtml } from './status-page.js'
import type { DaemonContext } from './types.js'

const log = createDebug('holdfast:daemon:http')

/** Options of the API server. */
export interface ApiServerOptions {
  /** The metrics to serve and feed. @default createMetrics(ctx), closed with the server */
  metrics?: Metrics
  /** Server-side deadline of every request but watches, in ms. @default 15000 */
  requestTimeoutMs?: number
  /** Interval of the keep-alive comments on watch streams, in ms. @default 15000 */
  heartbeatMs?: number
}

/** The request handler, with the means to end what is still running. */
export interface ApiHandler {
  (req: IncomingMessage, res: ServerResponse): void
  /** Ends open watch streams and aborts requests in flight (their clients get nothing more). */
  close(): void
}

/** Default limit of a list answer, and its ceiling. */
const DEFAULT_LIST_LIMIT = 1000
const MAX_LIST_LIMIT = 10_000
/** The largest body of a non-KV request ({"to": id}). */
const SMALL_BODY_LIMIT = 64 * 1024
/** Codes that mean the request itself was wrong (counted as bad requests). */
const BAD_INPUT = new Set(['INVALID_JSON', 'INVALID_KEY', 'INVALID_ARGUMENT', 'TOO_LARGE', 'METHOD_NOT_ALLOWED', 'UNAUTHORIZED'])

/** Routes whose result must come from the leader: redirected on a follower with ?redirect=1. */
function needsLeader(handler: HandlerName, consistency: () => Consistency): boolean {
  if (handler === 'kvPut' || handler === 'kvDelete') return true
  if (handler === 'kvGet' || handler === 'kvList') return consistency() !== 'stale'
  return false
}

/** A handler's answer; 'streamed' when it wrote the response itself. */
type Reply = { status: number; json: unknown } | { status: number; text: string; headers: Record<string, string> } | 'streamed'

interface RequestScope {
  readonly req: IncomingMessage
  readonly res: ServerResponse
  readonly params: Readonly<Record<string, string>>
  readonly query: URLSearchParams
  readonly label: string
  /** Aborts at the deadline or when the client goes away. */
  readonly signal: AbortSignal
  /** Milliseconds left before the deadline (at least 1). */
  remaining(): number
  /** The response headers every answer carries (see the file comment). */
  headers: Record<string, string>
}

/** Creates the request handler of the API for `ctx`. */
export function createApiHandler(ctx: DaemonContext, options: ApiServerOptions = {}): ApiHandler {
  const node = ctx.node
  const requestTimeoutMs = options.requestTimeoutMs ?? 15_000
  const heartbeatMs = options.heartbeatMs ?? 15_000
  const ownMetrics = options.metrics === undefined
  const metrics = options.metrics ?? createMetrics(ctx)
  const tokenDigest = ctx.token === undefined ? undefined : sha256(ctx.token)
  const inFlight = new Set<AbortController>()

  function authorized(req: IncomingMessage): boolean {
    if (tokenDigest === undefined) return true
    const m = /^Bearer[ ]+(\S+)[ ]*$/i.exec(req.headers.authorization ?? '')
    // Equal-length digests compared in constant time: neither the token nor its length leaks.
    return timingSafeEqual(sha256(m?.[1] ?? ''), tokenDigest) && m !== null
  }

  function leaderHeaders(): Record<string, string> {
    const h: Record<string, string> = { 'X-Holdfast-Node-Id': node.id, 'Cache-Control': 'no-store' }
    const leader = node.status().leaderId
    if (leader !== null) {
      h['X-Holdfast-Leader-Id'] = leader
      const url = leader === node.id ? ctx.url : ctx.memberUrl(leader)
      if (url) h['X-Holdfast-Leader'] = url
    }
    return h
  }

  /** Whether a write or leader read served now goes through the leader over the peer connection. */
  function proxied(): boolean {
    return node.status().role !== 'leader'
  }

  /** Runs `op` (which takes no signal) until the request's deadline: then 504, its effect unknown. */
  async function untilDeadline<T>(scope: RequestScope, op: Promise<T>): Promise<T> {
    let onAbort: (() => void) | undefined
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => reject(new HoldfastError('TIMEOUT', 'the operation did not complete before the request deadline; its effect is unknown'))
      scope.signal.addEventListener('abort', onAbort, { once: true })
    })
    try {
      return await Promise.race([op, aborted])
    } finally {
      scope.signal.removeEventListener('abort', onAbort!)
      op.catch(() => {}) // settled later, to nobody
    }
  }

  const handlers: Record<HandlerName, (s: RequestScope) => Promise<Reply>> = {
    async page() {
      return {
        status: 200,
        text: statusPageHtml(),
        headers: {
          'Content-Type': 'text/html; charset=utf-8',
          'Content-Security-Policy': STATUS_PAGE_CSP,
          'X-Content-Type-Options': 'nosniff',
          'X-Frame-Options': 'DENY',
          'Referrer-Policy': 'no-referrer',
        },
      }
    },
    async health() {
      return { status: 200, json: { ok: true } }
    },
    async leaderCheck() {
      if (!node.leaderCheck()) throw new HttpError(503, 'NOT_ACTING', `${node.id} is not the acting node with a valid lease`)
      return { status: 200, json: { acting: true, id: node.id, fence: node.fence() } }
    },
    async ready() {
      if (!node.ready()) throw new HttpError(503, 'NOT_READY', `${node.id} has not applied what its leader committed (or knows no leader)`)
      return { status: 200, json: { ready: true } }
    },
    async status(s) {
      return { status: 200, json: await ctx.clusterStatus({ signal: s.signal }) }
    },
    async events(s) {
      return { status: 200, json: { events: await ctx.clusterEvents({ signal: s.signal }) } }
    },
    async metrics() {
      return { status: 200, text: await metrics.text(), headers: { 'Content-Type': metrics.contentType } }
    },

    async kvGet(s) {
      const key = decodeKey(s.params['key'] ?? '')
      const consistency = consistencyParam(s.query)
      let kv
      if (consistency === 'stale') {
        kv = node.getLocal(key)
      } else {
        if (proxied()) s.headers['X-Holdfast-Proxied'] = '1'
        kv = await node.get(key, { consistency, signal: s.signal, timeoutMs: s.remaining() })
      }
      if (kv === undefined) throw new HttpError(404, 'NOT_FOUND', `key ${JSON.stringify(key)} not found`)
      return { status: 200, json: kvJson(kv) }
    },

    async kvList(s) {
      const prefix = decodePrefix(s.query.get('prefix'))
      const start = s.query.get('start')
      if (start !== null) checkKeyText(start, 'start key')
      const limit = intParam(s.query, 'limit', 1, MAX_LIST_LIMIT) ?? DEFAULT_LIST_LIMIT
      const consistency = consistencyParam(s.query)
      if (consistency !== 'stale') {
        // After the barrier, the local list below reflects every write acknowledged before this request.
        if (proxied()) s.headers['X-Holdfast-Proxied'] = '1'
        await node.readBarrier({ consistency, signal: s.signal, timeoutMs: s.remaining() })
      }
      const found = node.list({ prefix, limit: limit + 1, ...(start ? { start } : {}) })
      const items = found.slice(0, limit).map(kvJson)
      const next = found[limit]
      return { status: 200, json: { items, count: items.length, more: next !== undefined, ...(next ? { next: next.key } : {}) } }
    },

    async kvPut(s) {
      const key = decodeKey(s.params['key'] ?? '')
      const ifRevision = intParam(s.query, 'ifRevision')
      const fence = intParam(s.query, 'fence')
      const value = parseJson(await readBody(s.req, ctx.maxValueBytes, s.signal))
      if (proxied()) s.headers['X-Holdfast-Proxied'] = '1'
      const r = await timedWrite(() => node.put(key, value as never, { ifRevision, fence, signal: s.signal, timeoutMs: s.remaining() }))
      return { status: 200, json: { revision: r.revision } }
    },

    async kvDelete(s) {
      const key = decodeKey(s.params['key'] ?? '')
      const ifRevision = intParam(s.query, 'ifRevision')
      const fence = intParam(s.query, 'fence')
      if (proxied()) s.headers['X-Holdfast-Proxied'] = '1'
      const r = await timedWrite(() => node.delete(key, { ifRevision, fence, signal: s.signal, timeoutMs: s.remaining() }))
      return { status: 200, json: { revision: r.revision, deleted: r.deleted } }
    },

    async watch(s) {
      const prefix = decodePrefix(s.query.get('prefix'))
      const lastEventId = s.req.headers['last-event-id']
      let start: WatchStart | undefined
      if (typeof lastEventId === 'string' && lastEventId !== '') {
        start = parseEventId(lastEventId)
      } else {
        const from = intParam(s.query, 'fromRevision', 1)
        if (from !== undefined) start = { revision: from, afterSeq: -1 }
      }
      metrics.watchOpened()
      try {
        await serveWatch(s.res, {
          node,
          prefix,
          start,
          signal: s.signal,
          heartbeatMs,
          writeHead: (headers) => s.res.writeHead(200, { ...s.headers, ...headers }),
        })
      } finally {
        metrics.watchClosed()
      }
      return 'streamed'
    },

    async promote(s) {
      return membership(s, (id) => ctx.promote(id))
    },
    async demote(s) {
      return membership(s, (id) => ctx.demote(id))
    },
    async remove(s) {
      return membership(s, (id) => ctx.remove(id))
    },

    async transfer(s) {
      const body = parseJson(await readBody(s.req, SMALL_BODY_LIMIT, s.signal))
      const to = (body as { to?: unknown } | null)?.to
      if (typeof to !== 'string' || to === '') throw new HttpError(400, 'INVALID_ARGUMENT', 'the body must be {"to": "<node id>"}')
      await untilDeadline(s, ctx.transfer(to))
      return { status: 200, json: { ok: true, leader: to } }
    },
  }

  async function membership(s: RequestScope, change: (id: string) => Promise<void>): Promise<Reply> {
    const id = decodeKey(s.params['id'] ?? '', 'member id')
    await untilDeadline(s, change(id))
    // The change is done; the view that follows is informative only.
    const members = await ctx.clusterStatus({ signal: s.signal }).then((st) => st.members, () => undefined)
    return { status: 200, json: { ok: true, ...(members ? { members } : {}) } }
  }

  /** Times a write for the proposal latency histogram, labelled by outcome. */
  async function timedWrite<T>(op: () => Promise<T>): Promise<T> {
    const started = performance.now()
    let outcome = 'ok'
    try {
      return await op()
    } catch (err) {
      outcome = toHttpError(err).code
      throw err
    } finally {
      metrics.observeProposal((performance.now() - started) / 1000, outcome)
    }
  }

  async function serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = performance.now()
    const method = req.method ?? 'GET'
    const rawUrl = req.url ?? '/'
    const q = rawUrl.indexOf('?')
    const path = q < 0 ? rawUrl : rawUrl.slice(0, q)
    const query = new URLSearchParams(q < 0 ? '' : rawUrl.slice(q + 1))
    const route = matchRoute(method, path)
    const isWatch = route.kind === 'found' && route.handler === 'watch'

    const control = new AbortController()
    inFlight.add(control)
    const deadlineAt = Date.now() + requestTimeoutMs
    const timer = isWatch
      ? undefined
      : setTimeout(() => control.abort(new HoldfastError('TIMEOUT', 'the request did not complete before its deadline; its effect is unknown')), requestTimeoutMs)
    let clientGone = false
    res.on('close', () => {
      // An answered request has nothing left to stop (an abort error per request costs ~1% of a busy leader).
      if (res.writableFinished && !isWatch) return
      // A watch ends when its client leaves: that is its normal end, not a lost answer.
      if (!isWatch) clientGone = true
      control.abort(new HoldfastError('ABORTED', 'the client went away'))
    })

    const scope: RequestScope = {
      req,
      res,
      params: route.kind === 'found' ? route.params : {},
      query,
      label: route.label,
      signal: control.signal,
      remaining: () => Math.max(1, deadlineAt - Date.now()),
      headers: leaderHeaders(),
    }
    let status = 500
    try {
      if (route.kind !== 'found' || !route.open) {
        if (!authorized(req)) throw new HttpError(401, 'UNAUTHORIZED', 'a valid bearer token is required', { 'WWW-Authenticate': 'Bearer realm="holdfast"' })
      }
      if (route.kind === 'notFound') throw new HttpError(404, 'NOT_FOUND', `no route ${method} ${path}`)
      if (route.kind === 'methodNotAllowed') {
        throw new HttpError(405, 'METHOD_NOT_ALLOWED', `${method} is not allowed on ${route.label}`, { Allow: route.allow.join(', ') })
      }
      if (flagParam(query, 'redirect') && needsLeader(route.handler, () => consistencyParam(query)) && proxied()) {
        status = redirect(scope, rawUrl)
        return
      }
      const reply = await handlers[route.handler](scope)
      if (reply === 'streamed') {
        status = 200
        return
      }
      status = reply.status
      if ('json' in reply) send(res, reply.status, scope.headers, reply.json)
      else {
        res.writeHead(reply.status, { ...scope.headers, ...reply.headers })
        res.end(reply.text)
      }
    } catch (caught) {
      // An operation aborted by the request's deadline failed because of the deadline.
      const reason: unknown = control.signal.reason
      const err = isHoldfastError(caught, 'ABORTED') && isHoldfastError(reason, 'TIMEOUT') ? reason : caught
      const e = toHttpError(err)
      if (e.status === 500) log('%s %s failed: %O', method, path, err)
      status = e.status
      if (BAD_INPUT.has(e.code) || route.kind === 'notFound') metrics.badRequest(route.label, e.code)
      if (res.headersSent) res.destroy()
      else send(res, e.status, { ...scope.headers, ...e.headers }, errorBody(e))
    } finally {
      clearTimeout(timer)
      inFlight.delete(control)
      metrics.observeRequest(route.label, method, clientGone ? 499 : status, (performance.now() - started) / 1000)
    }
  }

  /** Answers 307 to the leader's URL with the same path and query; 503 NO_LEADER when unknown. */
  function redirect(scope: RequestScope, rawUrl: string): number {
    const leader = node.status().leaderId
    const base = leader === null ? undefined : ctx.memberUrl(leader)
    if (leader === null) throw new HttpError(503, 'NO_LEADER', 'no leader is known now; try again shortly', { 'Retry-After': '1' })
    if (!base) throw new HttpError(503, 'NO_LEADER', `the leader ${leader} has not registered its URL yet`, { 'Retry-After': '1' })
    const location = base.replace(/\/+$/, '') + rawUrl
    // The body (a PUT's value) is not read: the client sends it again to the leader.
    scope.res.setHeader('Connection', 'close')
    send(scope.res, 307, { ...scope.headers, Location: location }, { leader, location })
    return 307
  }

  const handler = ((req: IncomingMessage, res: ServerResponse) => {
    serve(req, res).catch((err: unknown) => {
      log('unhandled failure serving %s %s: %O', req.method, req.url, err)
      res.destroy()
    })
  }) as ApiHandler
  handler.close = () => {
    for (const c of inFlight) c.abort(new HoldfastError('CLOSED', 'the server is closing'))
    if (ownMetrics) metrics.close()
  }
  return handler
}

/**
 * Creates the API server; the daemon calls `.listen(port, host)`. Its close() also ends open
 * watch streams (otherwise it would wait for their clients to leave).
 */
export function createApiServer(ctx: DaemonContext, options: ApiServerOptions = {}): Server {
  const handler = createApiHandler(ctx, options)
  const server = createServer(handler)
  server.headersTimeout = 10_000
  // Receiving a request (headers and body) has a deadline too; streaming a response does not.
  server.requestTimeout = (options.requestTimeoutMs ?? 15_000) + 5_000
  const close = server.close.bind(server)
  server.close = ((callback?: (err?: Error) => void) => {
    handler.close()
    close(callback)
    server.closeIdleConnections()
    return server
  }) as Server['close']
  return server
}

function send(res: ServerResponse, status: number, headers: Record<string, string>, body: unknown): void {
  const text = JSON.stringify(body) + '\n'
  res.writeHead(status, { ...headers, 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': String(Buffer.byteLength(text)) })
  res.end(text)
}

function sha256(s: string): Buffer {
  return createHash('sha256').update(s, 'utf8').digest()
}
