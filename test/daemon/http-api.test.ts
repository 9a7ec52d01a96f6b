/**
 * The daemon's HTTP API in one process: three real nodes (LMDB, Raft, an in-memory network),
 * each behind its own API server on 127.0.0.1, with a small test DaemonContext built from the
 * nodes. Every route and every error status, the follower's proxied write and its 307 redirect,
 * the bearer token, SSE watches (delivery, resume, heartbeat, disconnect), bodies over the limit
 * and malformed JSON (nothing stored), unknown routes and wrong methods.
 */
import { request as httpRequest, type Server } from 'node:http'
import t from 'tap'
import { createApiServer } from '../../src/daemon/http-api.js'
import { errorBody, toHttpError } from '../../src/daemon/http-errors.js'
import { STATUS_PAGE_CSP } from '../../src/daemon/status-page.js'
import { HoldfastError, type ErrorCode } from '../../src/errors.js'
import { createMetrics, type Metrics } from '../../src/daemon/metrics.js'
import type { HoldfastNode } from '../../src/node.js'
import { createTestCluster, until, type TestCluster } from '../../src/testing/cluster.js'
import { testContext } from './test-context.js'

const TOKEN = 'test-token-0123456789'
const MAX_VALUE_BYTES = 4096
const REQUEST_TIMEOUT_MS = 2_000
const IDS = ['n1', 'n2', 'n3']

interface Api {
  readonly id: string
  readonly node: HoldfastNode
  readonly server: Server
  readonly metrics: Metrics
  url: string
}

interface Answer {
  status: number
  headers: Headers
  body: any
  text: string
}

let cluster: TestCluster
const apis = new Map<string, Api>()
/** When false, memberUrl() knows no URL (a directory not yet filled). */
let urlsKnown = true

function leaderNode(): HoldfastNode {
  const l = cluster.leader()
  if (!l) throw new Error('no leader')
  return l
}

async function call(api: Api, method: string, path: string, options: { body?: string; headers?: Record<string, string>; auth?: boolean | string } = {}): Promise<Answer> {
  const headers: Record<string, string> = { ...(options.headers ?? {}) }
  if (options.auth !== false) headers['authorization'] = `Bearer ${typeof options.auth === 'string' ? options.auth : TOKEN}`
  const res = await fetch(api.url + path, { method, headers, redirect: 'manual', signal: AbortSignal.timeout(20_000), ...(options.body !== undefined ? { body: options.body } : {}) })
  const text = await res.text()
  let body: unknown
  if ((res.headers.get('content-type') ?? '').includes('json')) body = JSON.parse(text)
  return { status: res.status, headers: res.headers, body, text }
}

/** The leader's API, once there is a leader (elections may happen on a loaded machine). */
async function leaderApi(): Promise<Api> {
  return apis.get((await cluster.waitForLeader()).id)!
}

async function followerApi(): Promise<Api> {
  const l = (await cluster.waitForLeader()).id
  return [...apis.values()].find((a) => a.id !== l && cluster.nodes.has(a.id))!
}

/** Polls every node's leader-check until one answers 200 (a lease can lapse on a loaded machine); returns that node's API and answer. */
async function actingApi(): Promise<{ api: Api; answer: Answer }> {
  const deadline = Date.now() + 15_000
  for (;;) {
    for (const api of apis.values()) {
      if (!cluster.nodes.has(api.id)) continue
      const answer = await call(api, 'GET', '/v1/leader-check', { auth: false })
      if (answer.status === 200) return { api, answer }
    }
    if (Date.now() > deadline) throw new Error('no node answered 200 to leader-check')
    await new Promise((r) => setTimeout(r, 50))
  }
}

/** A raw request through node:http, for bodies fetch would not send as wanted (declared lengths, chunked streams). */
function rawRequest(api: Api, method: string, path: string, write: (req: ReturnType<typeof httpRequest>) => void, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(api.url + path, { method, headers: { authorization: `Bearer ${TOKEN}`, ...headers } }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => (text += d))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : undefined }))
      res.on('error', reject)
    })
    // The server may close while we are still sending: the response is what matters.
    req.on('error', (err) => reject(err))
    write(req)
  })
}

/** Reads SSE events from a streaming fetch response. */
class SseReader {
  #buffer = ''
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>
  readonly #decoder = new TextDecoder()
  /** Raw text received (comments included). */
  raw = ''

  constructor(body: ReadableStream<Uint8Array>) {
    this.#reader = body.getReader()
  }

  /** The next event (comments skipped): its id, event name and parsed data. */
  async next(): Promise<{ id?: string; event?: string; data: any }> {
    for (;;) {
      const end = this.#buffer.indexOf('\n\n')
      if (end >= 0) {
        const block = this.#buffer.slice(0, end)
        this.#buffer = this.#buffer.slice(end + 2)
        const fields: Record<string, string> = {}
        for (const line of block.split('\n')) {
          if (line.startsWith(':') || line === '') continue
          const i = line.indexOf(':')
          fields[line.slice(0, i)] = line.slice(i + 1).replace(/^ /, '')
        }
        if (fields['data'] === undefined) continue
        return { ...(fields['id'] ? { id: fields['id'] } : {}), ...(fields['event'] ? { event: fields['event'] } : {}), data: JSON.parse(fields['data']) }
      }
      const { value, done } = await this.#reader.read()
      if (done) throw new Error('the stream ended')
      const text = this.#decoder.decode(value, { stream: true })
      this.raw += text
      this.#buffer += text
    }
  }

  /** Reads until the raw text received includes `text`. */
  async until(text: string): Promise<void> {
    while (!this.raw.includes(text)) {
      const { value, done } = await this.#reader.read()
      if (done) throw new Error(`the stream ended before ${JSON.stringify(text)}`)
      const chunk = this.#decoder.decode(value, { stream: true })
      this.raw += chunk
      this.#buffer += chunk
    }
  }

  /** Reads until the stream ends; resolves with the raw text received. */
  async untilEnd(): Promise<string> {
    for (;;) {
      const { value, done } = await this.#reader.read()
      if (done) return this.raw
      this.raw += this.#decoder.decode(value, { stream: true })
    }
  }
}

async function openWatch(api: Api, path: string, headers: Record<string, string> = {}): Promise<{ res: Response; sse: SseReader; abort: AbortController }> {
  const abort = new AbortController()
  const res = await fetch(api.url + path, { headers: { authorization: `Bearer ${TOKEN}`, ...headers }, signal: abort.signal })
  return { res, sse: new SseReader(res.body!), abort }
}

t.before(async () => {
  cluster = await createTestCluster(IDS, { tickMs: 50, electionTicks: 10 })
  for (const id of IDS) {
    const node = cluster.nodes.get(id)!
    const ctx = testContext(node, {
      cluster: 'http-test',
      token: TOKEN,
      maxValueBytes: MAX_VALUE_BYTES,
      url: () => apis.get(id)?.url ?? '',
      memberUrl: (m) => (urlsKnown ? apis.get(m)?.url : undefined),
      leader: leaderNode,
    })
    const metrics = createMetrics(ctx)
    const server = createApiServer(ctx, { metrics, requestTimeoutMs: REQUEST_TIMEOUT_MS, heartbeatMs: 200 })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const port = (server.address() as { port: number }).port
    apis.set(id, { id, node, server, metrics, url: `http://127.0.0.1:${port}` })
  }
  await cluster.waitForLeader()
  // The leader acts (no handlers needed) once its fence committed: leader-check then answers 200.
  await until(() => leaderNode().leaderCheck(), 10_000, 'an acting leader')
})

t.teardown(async () => {
  for (const a of apis.values()) {
    if (a.server.listening) await new Promise<void>((resolve) => a.server.close(() => resolve()))
    a.metrics.close()
  }
  await cluster.close()
})

t.test('health, leader-check and the status page are open; everything else needs the token', async (t) => {
  const leader = await leaderApi()
  const follower = await followerApi()
  const health = await call(follower, 'GET', '/v1/health', { auth: false })
  t.equal(health.status, 200)
  t.same(health.body, { ok: true })
  t.equal(health.headers.get('x-holdfast-node-id'), follower.id, 'the node id header')
  t.equal(health.headers.get('x-holdfast-leader-id'), leader.id, 'the leader id header')
  t.equal(health.headers.get('x-holdfast-leader'), leader.url, 'the leader URL header')

  const acting = await actingApi()
  t.equal(acting.api.node.status().role, 'leader', 'leader-check: 200 on the acting leader, without a token')
  t.match(acting.answer.body, { acting: true, id: acting.api.id })
  const lcf = await call(follower, 'GET', '/v1/leader-check', { auth: false })
  t.equal(lcf.status, 503, 'leader-check: 503 on a follower')
  t.equal(lcf.body.error.code, 'NOT_ACTING')

  const page = await call(follower, 'GET', '/', { auth: false })
  t.equal(page.status, 200)
  t.match(page.headers.get('content-type'), /text\/html/)
  t.match(page.text, /<html/i)
  t.equal(page.headers.get('content-security-policy'), STATUS_PAGE_CSP, 'the page\'s CSP as a header too')
  t.equal(page.headers.get('x-content-type-options'), 'nosniff')

  for (const path of ['/v1/status', '/v1/events', '/v1/ready', '/metrics', '/v1/kv/x', '/v1/kv', '/v1/watch', '/v1/no-such-route']) {
    const missing = await call(follower, 'GET', path, { auth: false })
    t.equal(missing.status, 401, `${path} without a token: 401`)
    t.equal(missing.body.error.code, 'UNAUTHORIZED')
    t.match(missing.headers.get('www-authenticate'), /^Bearer/)
    const wrong = await call(follower, 'GET', path, { auth: 'not-the-token' })
    t.equal(wrong.status, 401, `${path} with a wrong token: 401`)
  }
  const prefixOfToken = await call(follower, 'GET', '/v1/status', { auth: TOKEN.slice(0, -1) })
  t.equal(prefixOfToken.status, 401, 'a prefix of the token is refused')
  const schemeless = await call(follower, 'GET', '/v1/status', { auth: false, headers: { authorization: TOKEN } })
  t.equal(schemeless.status, 401, 'the token without the Bearer scheme is refused')
  const right = await call(follower, 'GET', '/v1/status')
  t.equal(right.status, 200, 'the right token is accepted')
  const writeNoToken = await call(leader, 'PUT', '/v1/kv/unauth', { auth: false, body: '1' })
  t.equal(writeNoToken.status, 401)
  t.equal(leaderNode().getLocal('unauth'), undefined, 'a refused write stored nothing')
})

t.test('keys: put, get at each consistency, delete, compare-and-set, fences', async (t) => {
  const leader = await leaderApi()
  const follower = await followerApi()
  const put = await call(leader, 'PUT', '/v1/kv/app/config', { body: JSON.stringify({ a: 1, s: 'x' }) })
  t.equal(put.status, 200)
  t.type(put.body.revision, 'number')
  t.same(Object.keys(put.body), ['revision'])
  const rev = put.body.revision as number

  const get = await call(leader, 'GET', '/v1/kv/app/config')
  t.equal(get.status, 200)
  t.match(get.body, { key: 'app/config', value: { a: 1, s: 'x' }, revision: rev, modRevision: rev, createRevision: rev, version: 1 })
  const encoded = await call(leader, 'GET', '/v1/kv/app%2Fconfig')
  t.equal(encoded.body.key, 'app/config', 'an encoded slash names the same key')
  const lease = await call(follower, 'GET', '/v1/kv/app/config?consistency=lease')
  t.equal(lease.status, 200, 'a lease read on a follower')
  t.equal(lease.body.revision, rev)
  await until(() => follower.node.status().appliedIndex >= rev, 5_000, 'the follower applied the write')
  const stale = await call(follower, 'GET', '/v1/kv/app/config?consistency=stale')
  t.equal(stale.status, 200, 'a stale read on a follower')
  t.equal(stale.body.revision, rev)
  t.equal(stale.headers.get('x-holdfast-proxied'), null, 'a stale read is served locally')
  const badConsistency = await call(leader, 'GET', '/v1/kv/app/config?consistency=eventual')
  t.equal(badConsistency.status, 400)
  t.equal(badConsistency.body.error.code, 'INVALID_ARGUMENT')

  const missing = await call(follower, 'GET', '/v1/kv/no/such/key')
  t.equal(missing.status, 404)
  t.same(missing.body, { error: { code: 'NOT_FOUND', message: 'key "no/such/key" not found' } })

  const unicode = await call(leader, 'PUT', `/v1/kv/${encodeURIComponent('ключ ü/✓')}`, { body: '"v"' })
  t.equal(unicode.status, 200)
  t.equal(leaderNode().getLocal('ключ ü/✓')?.value, 'v', 'a percent-encoded UTF-8 key is stored decoded')

  // Compare-and-set.
  const stale409 = await call(leader, 'PUT', `/v1/kv/app/config?ifRevision=${rev - 1}`, { body: '2' })
  t.equal(stale409.status, 409)
  t.equal(stale409.body.error.code, 'REVISION_MISMATCH')
  const absent409 = await call(leader, 'PUT', '/v1/kv/app/config?ifRevision=0', { body: '2' })
  t.equal(absent409.status, 409, 'ifRevision=0 on an existing key')
  t.same(leaderNode().getLocal('app/config')?.value, { a: 1, s: 'x' }, 'failed compares changed nothing')
  const cas = await call(leader, 'PUT', `/v1/kv/app/config?ifRevision=${rev}`, { body: '2' })
  t.equal(cas.status, 200, 'a compare that holds')
  for (const bad of ['abc', '-1', '1.5', '', '99999999999999999999']) {
    const r = await call(leader, 'PUT', `/v1/kv/app/config?ifRevision=${encodeURIComponent(bad)}`, { body: '3' })
    t.equal(r.status, 400, `ifRevision=${bad}: 400`)
    t.equal(r.body.error.code, 'INVALID_ARGUMENT')
  }
  t.equal(leaderNode().getLocal('app/config')?.value, 2, 'bad ifRevisions changed nothing')

  // A fence older than the one in force.
  const fence = leaderNode().fence()
  t.ok(fence > 0, `a fence is in force (${fence})`)
  const staleFence = await call(leader, 'PUT', `/v1/kv/app/config?fence=${fence - 1}`, { body: '4' })
  t.equal(staleFence.status, 409)
  t.equal(staleFence.body.error.code, 'STALE_FENCE')
  const goodFence = await call(leader, 'PUT', `/v1/kv/app/config?fence=${fence}`, { body: '5' })
  t.equal(goodFence.status, 200, 'a write with the fence in force')

  // Delete.
  const del = await call(leader, 'DELETE', '/v1/kv/app/config')
  t.equal(del.status, 200)
  t.equal(del.body.deleted, true)
  t.type(del.body.revision, 'number')
  const again = await call(leader, 'DELETE', '/v1/kv/app/config')
  t.equal(again.body.deleted, false, 'deleting an absent key')
  t.equal((await call(leader, 'GET', '/v1/kv/app/config')).status, 404)
  const delCas = await call(leader, 'DELETE', '/v1/kv/app/config?ifRevision=5')
  t.equal(delCas.status, 409, 'a delete with a failed compare')
})

t.test('bad keys, bad bodies and bodies over the limit change nothing', async (t) => {
  const leader = await leaderApi()
  const before = leaderNode().status().commitIndex
  const badKeys: Array<[string, string]> = [
    ['/v1/kv/', 'empty key'],
    ['/v1/kv/%FF', 'invalid UTF-8'],
    ['/v1/kv/%E0%A4', 'truncated UTF-8'],
    ['/v1/kv/a%2', 'truncated escape'],
    ['/v1/kv/a%01b', 'control character'],
    [`/v1/kv/${'k'.repeat(1025)}`, 'over 1024 bytes'],
  ]
  for (const [path, why] of badKeys) {
    for (const method of ['PUT', 'GET', 'DELETE']) {
      const r = await call(leader, method, path, method === 'PUT' ? { body: '1' } : {})
      t.equal(r.status, 400, `${method} with a key of ${why}: 400`)
      t.equal(r.body.error.code, 'INVALID_KEY')
    }
  }
  const longest = await call(leader, 'PUT', `/v1/kv/${'k'.repeat(1024)}`, { body: '1' })
  t.equal(longest.status, 200, 'a key of exactly 1024 bytes')

  for (const body of ['', '{', 'not json', '{"a":1,}', "{'a':1}", 'NaN']) {
    const r = await call(leader, 'PUT', '/v1/kv/bad-json', { body })
    t.equal(r.status, 400, `body ${JSON.stringify(body)}: 400`)
    t.equal(r.body.error.code, 'INVALID_JSON')
  }
  const badUtf8 = await rawRequest(leader, 'PUT', '/v1/kv/bad-json', (req) => req.end(Buffer.from([0x22, 0xff, 0x22])))
  t.equal(badUtf8.status, 400, 'a body that is not UTF-8')
  const deep = await call(leader, 'PUT', '/v1/kv/bad-json', { body: '['.repeat(100) + ']'.repeat(100) })
  t.equal(deep.status, 400, 'a value nested too deep')
  t.equal(deep.body.error.code, 'INVALID_ARGUMENT')
  t.equal(leaderNode().getLocal('bad-json'), undefined, 'no bad body was stored')

  // Declared too large: refused before the body is read.
  const declared = await rawRequest(leader, 'PUT', '/v1/kv/too-large', (req) => req.end('"' + 'x'.repeat(MAX_VALUE_BYTES) + '"'))
  t.equal(declared.status, 413)
  t.equal(declared.body.error.code, 'TOO_LARGE')
  // Streamed (chunked, no length): refused once it passes the limit; the rest is never sent.
  const streamed = await rawRequest(leader, 'PUT', '/v1/kv/too-large', (req) => {
    req.write('"')
    const chunk = 'y'.repeat(1024)
    let sent = 0
    const pump = (): void => {
      while (sent < MAX_VALUE_BYTES * 4) {
        sent += chunk.length
        if (!req.write(chunk)) return void req.once('drain', pump)
      }
      req.end('"')
    }
    pump()
  })
  t.equal(streamed.status, 413, 'a chunked body over the limit')
  t.equal(streamed.body.error.code, 'TOO_LARGE')
  const atLimit = await call(leader, 'PUT', '/v1/kv/at-limit', { body: '"' + 'z'.repeat(MAX_VALUE_BYTES - 2) + '"' })
  t.equal(atLimit.status, 200, 'a body of exactly the limit is accepted')
  t.equal(leaderNode().getLocal('too-large'), undefined, 'nothing over the limit was stored')

  // Nothing above reached the log except the two accepted writes.
  await leaderNode().settled()
  t.equal(leaderNode().status().commitIndex, before + 2, 'only the accepted writes were committed')
})

t.test('unknown routes are 404, wrong methods 405 with Allow', async (t) => {
  const api = await followerApi()
  for (const path of ['/v2/kv/x', '/v1', '/v1/kvx', '/metrics/x', '/v1/members/a/b/c']) {
    const r = await call(api, 'GET', path)
    t.equal(r.status, 404, `${path}: 404`)
    t.equal(r.body.error.code, 'NOT_FOUND')
  }
  const cases: Array<[string, string, string]> = [
    ['POST', '/v1/kv/x', 'GET, HEAD, PUT, DELETE'],
    ['PUT', '/v1/health', 'GET, HEAD'],
    ['DELETE', '/v1/status', 'GET, HEAD'],
    ['GET', '/v1/leader/transfer', 'POST'],
    ['GET', '/v1/members/n1/promote', 'POST'],
    ['POST', '/v1/members/n1', 'DELETE'],
    ['POST', '/v1/watch', 'GET'],
  ]
  for (const [method, path, allow] of cases) {
    const r = await call(api, method, path, method === 'GET' ? {} : { body: '{}' })
    t.equal(r.status, 405, `${method} ${path}: 405`)
    t.equal(r.body.error.code, 'METHOD_NOT_ALLOWED')
    t.equal(r.headers.get('allow'), allow, `${method} ${path}: Allow: ${allow}`)
  }
  t.equal(leaderNode().getLocal('x'), undefined)
  const head = await fetch(api.url + '/v1/health', { method: 'HEAD' })
  t.equal(head.status, 200, 'HEAD on a GET route')
})

t.test('lists: prefix, limit and continuation, each consistency', async (t) => {
  const leader = await leaderApi()
  const follower = await followerApi()
  for (let i = 0; i < 5; i++) t.equal((await call(follower, 'PUT', `/v1/kv/list/${i}`, { body: String(i) })).status, 200)
  await call(leader, 'PUT', '/v1/kv/listing-other', { body: '0' })
  const all = await call(follower, 'GET', '/v1/kv?prefix=list/')
  t.equal(all.status, 200)
  t.equal(all.body.count, 5, 'a linearizable list on a follower sees every acknowledged write')
  t.same(all.body.items.map((i: any) => i.key), ['list/0', 'list/1', 'list/2', 'list/3', 'list/4'])
  t.equal(all.body.items[2].value, 2)
  t.equal(all.body.more, false)
  t.equal(all.headers.get('x-holdfast-proxied'), '1', 'the read barrier went through the leader')
  const page = await call(leader, 'GET', '/v1/kv?prefix=list/&limit=2')
  t.same(page.body.items.map((i: any) => i.key), ['list/0', 'list/1'])
  t.equal(page.body.more, true)
  t.equal(page.body.next, 'list/2')
  const rest = await call(leader, 'GET', `/v1/kv?prefix=list/&limit=10&start=${page.body.next}`)
  t.same(rest.body.items.map((i: any) => i.key), ['list/2', 'list/3', 'list/4'], 'continuing from next')
  const lease = await call(follower, 'GET', '/v1/kv?prefix=list/&consistency=lease')
  t.equal(lease.body.count, 5)
  const stale = await call(leader, 'GET', '/v1/kv?prefix=list/&consistency=stale')
  t.equal(stale.body.count, 5)
  for (const q of ['limit=0', 'limit=-1', 'limit=x', 'limit=10001', 'consistency=maybe']) {
    const r = await call(leader, 'GET', `/v1/kv?${q}`)
    t.equal(r.status, 400, `${q}: 400`)
  }
})

t.test('a follower proxies writes and linearizable reads, or redirects them with ?redirect=1', async (t) => {
  const leader = await leaderApi()
  const follower = await followerApi()
  const w = await call(follower, 'PUT', '/v1/kv/proxied', { body: '"through a follower"' })
  t.equal(w.status, 200, 'a write on a follower')
  t.equal(w.headers.get('x-holdfast-proxied'), '1', 'marked as proxied')
  t.equal(leaderNode().getLocal('proxied')?.value, 'through a follower', 'the leader applied it')
  const r = await call(follower, 'GET', '/v1/kv/proxied')
  t.equal(r.body.value, 'through a follower', 'a linearizable read on the follower sees it')
  t.equal(r.headers.get('x-holdfast-proxied'), '1')
  const onLeader = await call(leader, 'PUT', '/v1/kv/proxied', { body: '"direct"' })
  t.equal(onLeader.headers.get('x-holdfast-proxied'), null, 'the leader serves writes itself')

  const red = await call(follower, 'PUT', '/v1/kv/redirected?redirect=1&ifRevision=0', { body: '"r"' })
  t.equal(red.status, 307, 'a write on a follower with ?redirect=1')
  t.equal(red.headers.get('location'), `${leader.url}/v1/kv/redirected?redirect=1&ifRevision=0`, 'Location: the leader with the same path and query')
  t.equal(leaderNode().getLocal('redirected'), undefined, 'the follower did not write')
  const followed = await call(leader, 'PUT', new URL(red.headers.get('location')!).pathname + new URL(red.headers.get('location')!).search, { body: '"r"' })
  t.equal(followed.status, 200, 'the leader serves the redirected write')
  const redRead = await call(follower, 'GET', '/v1/kv/redirected?redirect=1')
  t.equal(redRead.status, 307, 'a linearizable read on a follower with ?redirect=1')
  const redDel = await call(follower, 'DELETE', '/v1/kv/redirected?redirect=1')
  t.equal(redDel.status, 307, 'a delete on a follower with ?redirect=1')
  const redList = await call(follower, 'GET', '/v1/kv?prefix=re&redirect=1')
  t.equal(redList.status, 307, 'a linearizable list on a follower with ?redirect=1')
  await until(() => follower.node.getLocal('redirected') !== undefined, 5_000, 'the follower applied the write')
  const staleRead = await call(follower, 'GET', '/v1/kv/redirected?redirect=1&consistency=stale')
  t.equal(staleRead.status, 200, 'a stale read is never redirected')
  const leaderRed = await call(leader, 'GET', '/v1/kv/redirected?redirect=1')
  t.equal(leaderRed.status, 200, 'the leader serves ?redirect=1 itself')

  urlsKnown = false
  try {
    const noUrl = await call(follower, 'PUT', '/v1/kv/redirected?redirect=1', { body: '"x"' })
    t.equal(noUrl.status, 503, 'no leader URL known: 503')
    t.equal(noUrl.body.error.code, 'NO_LEADER')
    t.equal(noUrl.headers.get('x-holdfast-leader'), null, 'no leader URL header without a URL')
    t.equal(noUrl.headers.get('x-holdfast-leader-id'), leader.id, 'the leader id header still')
  } finally {
    urlsKnown = true
  }
})

t.test('a node cut off from the cluster: 503 NO_LEADER on redirect, 504 on a write past the deadline, not ready', async (t) => {
  const follower = await followerApi()
  cluster.network.isolate(follower.id)
  try {
    await until(() => follower.node.status().leaderId === null, 10_000, 'the cut-off node to forget the leader')
    const red = await call(follower, 'PUT', '/v1/kv/cut-off?redirect=1', { body: '1' })
    t.equal(red.status, 503)
    t.equal(red.body.error.code, 'NO_LEADER')
    t.equal(red.headers.get('x-holdfast-leader-id'), null, 'no leader header when none is known')
    const ready = await call(follower, 'GET', '/v1/ready')
    t.equal(ready.status, 503)
    t.equal(ready.body.error.code, 'NOT_READY')
    const started = Date.now()
    const w = await call(follower, 'PUT', '/v1/kv/cut-off', { body: '1' })
    t.equal(w.status, 504, 'a write that cannot commit: 504 at the deadline')
    t.equal(w.body.error.code, 'TIMEOUT')
    t.match(w.body.error.message, /effect is unknown/)
    t.ok(Date.now() - started < REQUEST_TIMEOUT_MS + 1_500, 'answered at the request deadline')
    const r = await call(follower, 'GET', '/v1/kv/proxied')
    t.equal(r.status, 504, 'a linearizable read without a leader: 504')
    const stale = await call(follower, 'GET', '/v1/kv/proxied?consistency=stale')
    t.equal(stale.status, 200, 'a stale read still answers')
  } finally {
    cluster.network.heal()
  }
  await until(() => follower.node.ready(), 15_000, 'the node to rejoin')
  t.equal((await call(follower, 'GET', '/v1/ready')).status, 200, 'ready again')
  t.same((await call(follower, 'GET', '/v1/ready')).body, { ready: true })
})

t.test('watch: changes as server-sent events, resume with Last-Event-ID, heartbeats, disconnect', async (t) => {
  const leader = await leaderApi()
  const follower = await followerApi()
  const { res, sse, abort } = await openWatch(follower, '/v1/watch?prefix=w/')
  t.equal(res.status, 200)
  t.match(res.headers.get('content-type'), /^text\/event-stream/)
  await until(() => follower.metrics.activeWatches() === 1, 5_000, 'the watch to open')
  const r1 = (await call(leader, 'PUT', '/v1/kv/w/1', { body: '{"n":1}' })).body.revision
  await call(leader, 'PUT', '/v1/kv/other', { body: '0' })
  const r2 = (await call(leader, 'PUT', '/v1/kv/w/2', { body: '{"n":2}' })).body.revision
  const r3 = (await call(leader, 'DELETE', '/v1/kv/w/1')).body.revision
  const e1 = await sse.next()
  t.equal(e1.id, String(r1), 'id: the revision')
  t.match(e1.data, { type: 'put', key: 'w/1', value: { n: 1 }, revision: r1, seq: 0, version: 1, prevRevision: 0 })
  const e2 = await sse.next()
  t.match(e2.data, { type: 'put', key: 'w/2', revision: r2 }, 'changes outside the prefix are not sent')
  const e3 = await sse.next()
  t.match(e3.data, { type: 'delete', key: 'w/1', revision: r3, prevRevision: r1 })
  t.notOk('value' in e3.data, 'a delete has no value')
  await sse.until(': heartbeat')
  t.pass('a heartbeat comment arrived on the idle stream')
  abort.abort()
  await until(() => follower.metrics.activeWatches() === 0, 5_000, 'the iterator to stop after the disconnect')
  t.pass('the disconnect stopped the node iterator')

  // History from a revision, and resuming after the last event received.
  const from = await openWatch(leader, `/v1/watch?prefix=w/&fromRevision=${r1}`)
  t.same([(await from.sse.next()).data.revision, (await from.sse.next()).data.revision, (await from.sse.next()).data.revision], [r1, r2, r3], 'history from fromRevision')
  from.abort.abort()
  const resumed = await openWatch(leader, `/v1/watch?prefix=w/&fromRevision=${r1}`, { 'last-event-id': String(r2) })
  t.equal((await resumed.sse.next()).data.revision, r3, 'Last-Event-ID wins over fromRevision: resumed after it')
  resumed.abort.abort()

  // A transaction's changes share a revision: ids carry the position within it.
  const txn = await leaderNode().transaction([{ type: 'put', key: 'w/t1', value: 1 }, { type: 'put', key: 'w/t2', value: 2 }, { type: 'put', key: 'w/t3', value: 3 }])
  const tx = await openWatch(leader, `/v1/watch?prefix=w/t&fromRevision=${txn.revision}`)
  const ids = [(await tx.sse.next()).id, (await tx.sse.next()).id, (await tx.sse.next()).id]
  t.same(ids, [`${txn.revision}`, `${txn.revision}.1`, `${txn.revision}.2`])
  tx.abort.abort()
  const mid = await openWatch(leader, '/v1/watch?prefix=w/t', { 'last-event-id': `${txn.revision}.1` })
  t.equal((await mid.sse.next()).data.key, 'w/t3', 'resumed in the middle of a transaction')
  mid.abort.abort()
  const afterFirst = await openWatch(leader, '/v1/watch?prefix=w/t', { 'last-event-id': `${txn.revision}` })
  t.equal((await afterFirst.sse.next()).data.key, 'w/t2', 'resumed after the first change of a transaction')
  afterFirst.abort.abort()

  for (const [path, headers] of [
    ['/v1/watch?fromRevision=0', {}],
    ['/v1/watch?fromRevision=x', {}],
    ['/v1/watch', { 'last-event-id': 'abc' }],
    ['/v1/watch', { 'last-event-id': '0' }],
  ] as Array<[string, Record<string, string>]>) {
    const r = await fetch(leader.url + path, { headers: { authorization: `Bearer ${TOKEN}`, ...headers } })
    t.equal(r.status, 400, `${path} ${JSON.stringify(headers)}: 400 before streaming`)
    t.equal(((await r.json()) as any).error.code, 'INVALID_ARGUMENT')
  }
  await until(() => [...apis.values()].every((a) => a.metrics.activeWatches() === 0), 5_000, 'every watch closed')
})

t.test('status, events and metrics', async (t) => {
  const leader = await leaderApi()
  const follower = await followerApi()
  const status = await call(follower, 'GET', '/v1/status')
  t.equal(status.status, 200)
  t.match(status.body, { id: follower.id, role: 'follower', leader: leader.id, leaderUrl: leader.url })
  t.equal(status.body.members.length, 3)
  const events = await call(follower, 'GET', '/v1/events')
  t.equal(events.status, 200)
  t.ok(Array.isArray(events.body.events), 'events is a list')
  const leaderEvents = await call(leader, 'GET', '/v1/events')
  t.ok(leaderEvents.body.events.some((e: any) => e.type === 'actingStart'), 'the leader reports its actingStart event')

  // Request and proposal metrics are the serving node's: served here, read here.
  await call(follower, 'PUT', '/v1/kv/metered', { body: '1' })
  await call(follower, 'PUT', '/v1/kv/metered?ifRevision=1', { body: '2' })
  await call(follower, 'PUT', '/v1/kv/metered', { body: '{' })
  await call(follower, 'PUT', '/v1/kv/metered', { body: '"' + 'x'.repeat(MAX_VALUE_BYTES) + '"' })
  const fm = await call(follower, 'GET', '/metrics')
  t.equal(fm.status, 200)
  t.match(fm.headers.get('content-type'), /^text\/plain/)
  t.match(fm.text, /^holdfast_proposal_duration_seconds_count\{outcome="ok"\} [1-9]\d*$/m, 'proposal latency histogram')
  t.match(fm.text, /^holdfast_proposal_duration_seconds_count\{outcome="REVISION_MISMATCH"\} [1-9]\d*$/m, 'failed proposals by code')
  t.match(fm.text, /^holdfast_http_requests_total\{route="\/v1\/kv\/\{key\}",method="PUT",status="200"\} [1-9]\d*$/m, 'requests by route template')
  t.match(fm.text, /^holdfast_http_requests_total\{route="\/v1\/kv\/\{key\}",method="PUT",status="409"\} [1-9]\d*$/m)
  t.match(fm.text, /^holdfast_http_bad_requests_total\{route="\/v1\/kv\/\{key\}",code="INVALID_JSON"\} [1-9]\d*$/m, 'bad requests')
  t.match(fm.text, /^holdfast_http_bad_requests_total\{route="\/v1\/kv\/\{key\}",code="TOO_LARGE"\} [1-9]\d*$/m)
  t.match(fm.text, /^holdfast_stale_fence_total [1-9]\d*$/m, 'every replica counts the stale fence seen earlier')
  t.match(fm.text, /^holdfast_snapshots_sent_total\{outcome="ok"\} \d+$/m, 'snapshot counters')
  t.match(fm.text, /^holdfast_term [1-9]\d*$/m, 'term')
  t.match(fm.text, /^holdfast_commit_index [1-9]\d*$/m, 'commit index')
  t.match(fm.text, /^holdfast_applied_index [1-9]\d*$/m, 'applied index')
  t.match(fm.text, /^holdfast_apply_lag \d+$/m, 'apply lag')
  t.match(fm.text, /^process_cpu_user_seconds_total /m, 'process default metrics')

  // Role, acting and the per-peer series of the leader's view, read on the acting node.
  const acting = (await actingApi()).api
  const m = await call(acting, 'GET', '/metrics')
  t.match(m.text, /^holdfast_role\{role="leader"\} 1$/m, 'role')
  t.match(m.text, /^holdfast_role\{role="follower"\} 0$/m)
  t.match(m.text, /^holdfast_acting 1$/m, 'acting')
  t.match(m.text, /^holdfast_acting_starts_total [1-9]\d*$/m, 'acting starts')
  t.match(m.text, /^holdfast_cluster_view_from_leader 1$/m)
  for (const id of IDS.filter((i) => i !== acting.id)) {
    t.match(m.text, new RegExp(`^holdfast_peer_reachable\\{peer="${id}"\\} 1$`, 'm'), `peer ${id} reachable`)
    t.match(m.text, new RegExp(`^holdfast_peer_match_index\\{peer="${id}"\\} \\d+$`, 'm'), `peer ${id} match index`)
    t.match(m.text, new RegExp(`^holdfast_peer_replication_lag\\{peer="${id}"\\} \\d+$`, 'm'), `peer ${id} lag`)
  }
  t.notMatch(m.text, new RegExp(`peer="${acting.id}"`), 'no series for the node itself')
  const other = [...apis.values()].find((a) => a !== acting)!
  t.match((await call(other, 'GET', '/metrics')).text, /^holdfast_role\{role="leader"\} 0$/m, 'another node does not report leading')
})

t.test('membership and leadership transfer', async (t) => {
  const leader = await leaderApi()
  const follower = await followerApi()
  const demoted = await call(follower, 'POST', `/v1/members/${follower.id}/demote`)
  t.equal(demoted.status, 200, 'demote')
  t.match(demoted.body.members.find((m: any) => m.id === follower.id), { voter: false, role: 'learner' })
  const again = await call(leader, 'POST', `/v1/members/${follower.id}/demote`)
  t.equal(again.status, 409, 'demoting a learner: 409')
  t.equal(again.body.error.code, 'INVALID_MEMBERSHIP_CHANGE')
  const promoted = await call(leader, 'POST', `/v1/members/${follower.id}/promote`)
  t.equal(promoted.status, 200, 'promote')
  t.match(promoted.body.members.find((m: any) => m.id === follower.id), { voter: true })
  const unknown = await call(leader, 'POST', '/v1/members/nobody/promote')
  t.equal(unknown.status, 409, 'promoting an unknown node: 409')
  const badId = await call(leader, 'POST', '/v1/members/%FF/promote')
  t.equal(badId.status, 400, 'a malformed id: 400')
  t.equal(badId.body.error.code, 'INVALID_KEY')

  for (const body of ['{}', '{"to":""}', '{"to":5}', '[]', 'null']) {
    const r = await call(leader, 'POST', '/v1/leader/transfer', { body })
    t.equal(r.status, 400, `transfer body ${body}: 400`)
    t.equal(r.body.error.code, 'INVALID_ARGUMENT')
  }
  const notJson = await call(leader, 'POST', '/v1/leader/transfer', { body: 'to n2' })
  t.equal(notJson.status, 400)
  t.equal(notJson.body.error.code, 'INVALID_JSON')
  const moved = await call(follower, 'POST', '/v1/leader/transfer', { body: JSON.stringify({ to: follower.id }) })
  t.equal(moved.status, 200, 'transfer')
  t.same(moved.body, { ok: true, leader: follower.id })
  t.equal(leaderNode().id, follower.id, 'the new leader leads')
  await until(() => follower.node.leaderCheck(), 10_000, 'the new leader to act')
  const lc = await Promise.all([...apis.values()].map((a) => call(a, 'GET', '/v1/leader-check', { auth: false })))
  t.same(lc.map((r) => r.status).sort(), [200, 503, 503], 'leader-check: 200 on exactly one node')
  t.equal(lc.findIndex((r) => r.status === 200), [...apis.keys()].indexOf(follower.id), 'and it is the new leader')
  const header = await call(leader, 'GET', '/v1/health', { auth: false })
  t.equal(header.headers.get('x-holdfast-leader'), follower.url, 'the former leader points at the new one')

  const removed = await call(follower, 'DELETE', `/v1/members/${leader.id}`)
  t.equal(removed.status, 200, 'remove')
  t.notOk(leaderNode().membership().voters.includes(leader.id), 'the member is gone')
  t.notOk(removed.body.members?.some((m: any) => m.id === leader.id) ?? false, 'and not listed')
})

t.test('a watch ends with an error event when its node closes; closing the server ends open watches', async (t) => {
  // The node removed above is out of the cluster: close it under an open watch.
  const removed = [...apis.values()].find((a) => !leaderNode().membership().voters.includes(a.id) && !leaderNode().membership().learners.includes(a.id))!
  const w = await openWatch(removed, '/v1/watch')
  await until(() => removed.metrics.activeWatches() === 1, 5_000, 'the watch to open')
  await removed.node.close()
  const text = await w.sse.untilEnd()
  t.match(text, /event: error\ndata: \{"error":\{"code":"CLOSED","message":"[^"]+"\}\}\n\n$/, 'an error event, then the end of the stream')
  await until(() => removed.metrics.activeWatches() === 0, 5_000, 'the watch to finish')

  const live = [...apis.values()].find((a) => a !== removed)!
  const open = await openWatch(live, '/v1/watch')
  await until(() => live.metrics.activeWatches() === 1, 5_000, 'the watch to open')
  const closed = new Promise<void>((resolve) => live.server.close(() => resolve()))
  await open.sse.untilEnd()
  await closed
  t.equal(live.metrics.activeWatches(), 0, 'server.close() ended the open watch and completed')
})

t.test('error codes map to statuses; internal failures do not leak', async (t) => {
  const cases: Array<[ErrorCode, number]> = [
    ['INVALID_ARGUMENT', 400], ['TOO_LARGE', 413], ['REVISION_MISMATCH', 409], ['STALE_FENCE', 409],
    ['INVALID_MEMBERSHIP_CHANGE', 409], ['COMPACTED', 410], ['NOT_LEADER', 503], ['UNAVAILABLE', 503],
    ['CONNECTION_LOST', 503], ['LEADERSHIP_LOST', 503], ['TRANSFER_IN_PROGRESS', 503],
    ['MEMBERSHIP_CHANGE_PENDING', 503], ['CLOSED', 503], ['TIMEOUT', 504], ['ABORTED', 504],
    ['CORRUPT_DATA', 500], ['CONTRACT_VIOLATION', 500], ['REMOTE_ERROR', 500],
  ]
  for (const [code, status] of cases) {
    const e = toHttpError(new HoldfastError(code, 'detail'))
    t.equal(e.status, status, `${code}: ${status}`)
    t.equal(e.code, status === 500 ? 'INTERNAL' : code)
    if (status === 500) t.notMatch(e.message, /detail/, `${code}: the message is not passed on`)
  }
  t.match(toHttpError(new HoldfastError('CONNECTION_LOST', 'the peer went away')).message, /effect is unknown/, 'CONNECTION_LOST says the effect is unknown')
  t.equal(toHttpError(new HoldfastError('NOT_LEADER', 'x')).headers['Retry-After'], '1', '503s say when to retry')
  const plain = toHttpError(new Error('secret internals at /some/path'))
  t.same(errorBody(plain), { error: { code: 'INTERNAL', message: 'internal error' } }, 'a plain error is 500 INTERNAL without its message')
})
