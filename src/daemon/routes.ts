/**
 * The daemon's route table: which handler serves a method on a path. Paths are matched in their
 * raw (still percent-encoded) form, so an encoded '/' or '..' inside a key never changes which
 * route is taken; captured parts are handed on raw, and decoded and checked by the handler.
 */

/** The handlers the API provides (see http-api.ts). */
export type HandlerName =
  | 'page'
  | 'health'
  | 'leaderCheck'
  | 'ready'
  | 'status'
  | 'events'
  | 'metrics'
  | 'kvGet'
  | 'kvPut'
  | 'kvDelete'
  | 'kvList'
  | 'watch'
  | 'promote'
  | 'demote'
  | 'remove'
  | 'transfer'

interface Route {
  /** The route's name in metrics and logs (a template, never the concrete path). */
  readonly label: string
  /** The raw captured parts when `path` is this route's, otherwise undefined. */
  match(path: string): Record<string, string> | undefined
  readonly methods: Readonly<Record<string, HandlerName>>
  /** Served without the bearer token. */
  readonly open?: boolean
}

/** A route of fixed path. */
function exact(path: string, methods: Record<string, HandlerName>, open = false): Route {
  return { label: path, match: (p) => (p === path ? {} : undefined), methods, open }
}

const KV_PREFIX = '/v1/kv/'
const MEMBER = /^\/v1\/members\/([^/]+)$/
const MEMBER_ACTION = /^\/v1\/members\/([^/]+)\/(promote|demote)$/

const ROUTES: readonly Route[] = [
  // The status page is static HTML: it carries no data, and its own calls to the API need the token.
  exact('/', { GET: 'page', HEAD: 'page' }, true),
  exact('/v1/health', { GET: 'health', HEAD: 'health' }, true),
  exact('/v1/leader-check', { GET: 'leaderCheck', HEAD: 'leaderCheck' }, true),
  exact('/v1/ready', { GET: 'ready', HEAD: 'ready' }),
  exact('/v1/status', { GET: 'status', HEAD: 'status' }),
  exact('/v1/events', { GET: 'events', HEAD: 'events' }),
  exact('/metrics', { GET: 'metrics', HEAD: 'metrics' }),
  exact('/v1/kv', { GET: 'kvList', HEAD: 'kvList' }),
  {
    label: '/v1/kv/{key}',
    match: (p) => (p.startsWith(KV_PREFIX) ? { key: p.slice(KV_PREFIX.length) } : undefined),
    methods: { GET: 'kvGet', HEAD: 'kvGet', PUT: 'kvPut', DELETE: 'kvDelete' },
  },
  exact('/v1/watch', { GET: 'watch' }),
  {
    label: '/v1/members/{id}/{action}',
    match: (p) => {
      const m = MEMBER_ACTION.exec(p)
      return m ? { id: m[1]!, action: m[2]! } : undefined
    },
    // Both actions are POST; the handler name is fixed up by the action below.
    methods: { POST: 'promote' },
  },
  {
    label: '/v1/members/{id}',
    match: (p) => {
      const m = MEMBER.exec(p)
      return m ? { id: m[1]! } : undefined
    },
    methods: { DELETE: 'remove' },
  },
  exact('/v1/leader/transfer', { POST: 'transfer' }),
]

/** What the router decided for one request. */
export type RouteMatch =
  | { readonly kind: 'found'; readonly handler: HandlerName; readonly label: string; readonly params: Readonly<Record<string, string>>; readonly open: boolean }
  | { readonly kind: 'methodNotAllowed'; readonly label: string; readonly allow: readonly string[]; readonly open: boolean }
  | { readonly kind: 'notFound'; readonly label: 'unknown' }

/** Finds the route for `method` on the raw `path` (without the query). */
export function matchRoute(method: string, path: string): RouteMatch {
  for (const route of ROUTES) {
    const params = route.match(path)
    if (!params) continue
    const open = route.open === true
    let handler = route.methods[method]
    if (handler === undefined) return { kind: 'methodNotAllowed', label: route.label, allow: Object.keys(route.methods), open }
    if (handler === 'promote' && params['action'] === 'demote') handler = 'demote'
    return { kind: 'found', handler, label: route.label, params, open }
  }
  return { kind: 'notFound', label: 'unknown' }
}
