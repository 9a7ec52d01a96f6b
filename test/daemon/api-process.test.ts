/**
 * The HTTP API of real `holdfast start` processes (with a bearer token and a small value limit):
 * every error status, the proxy path through a follower and its 307 redirect, leader-check on
 * exactly one node, /metrics, a watch, and a node that lost its quorum (504 on a write past the
 * deadline, 503 NO_LEADER and NOT_READY).
 */
import t from 'tap'
import { DaemonCluster, waitFor, type DaemonProcess } from './harness.js'

const TOKEN = 'api-process-token'
const MAX_VALUE_BYTES = 1024

t.test('the HTTP API of daemon processes', async (t) => {
  const c = await DaemonCluster.start(t, { size: 3, voters: 3, token: TOKEN, args: ['--max-value-bytes', String(MAX_VALUE_BYTES)] })
  let leader = await c.leader()
  const followers = (): DaemonProcess[] => c.live().filter((d) => d !== leader)

  await t.test('every error status', async (t) => {
    const f = followers()[0]!
    await leader.http('PUT', '/v1/kv/existing', { body: '1' })
    const cases: Array<{ what: string; on: DaemonProcess; method: string; path: string; body?: string | Buffer; auth?: boolean; headers?: Record<string, string>; status: number; code: string }> = [
      { what: 'no token', on: f, method: 'GET', path: '/v1/status', auth: false, status: 401, code: 'UNAUTHORIZED' },
      { what: 'a wrong token', on: f, method: 'GET', path: '/metrics', auth: false, headers: { authorization: 'Bearer wrong' }, status: 401, code: 'UNAUTHORIZED' },
      { what: 'an unknown route', on: f, method: 'GET', path: '/v1/nothing', status: 404, code: 'NOT_FOUND' },
      { what: 'a missing key', on: f, method: 'GET', path: '/v1/kv/missing', status: 404, code: 'NOT_FOUND' },
      { what: 'a wrong method', on: f, method: 'PATCH', path: '/v1/kv/existing', body: '2', status: 405, code: 'METHOD_NOT_ALLOWED' },
      { what: 'a malformed key', on: f, method: 'PUT', path: '/v1/kv/%FF', body: '2', status: 400, code: 'INVALID_KEY' },
      { what: 'a body that is not JSON', on: f, method: 'PUT', path: '/v1/kv/existing', body: '{nope', status: 400, code: 'INVALID_JSON' },
      { what: 'a bad consistency', on: f, method: 'GET', path: '/v1/kv/existing?consistency=strong', status: 400, code: 'INVALID_ARGUMENT' },
      { what: 'a bad ifRevision', on: f, method: 'PUT', path: '/v1/kv/existing?ifRevision=x', body: '2', status: 400, code: 'INVALID_ARGUMENT' },
      { what: 'a bad transfer body', on: f, method: 'POST', path: '/v1/leader/transfer', body: '{"to":1}', status: 400, code: 'INVALID_ARGUMENT' },
      { what: 'a failed compare', on: f, method: 'PUT', path: '/v1/kv/existing?ifRevision=1', body: '2', status: 409, code: 'REVISION_MISMATCH' },
      { what: 'a stale fence', on: f, method: 'PUT', path: '/v1/kv/existing?fence=1', body: '2', status: 409, code: 'STALE_FENCE' },
      { what: 'a malformed node id', on: f, method: 'POST', path: '/v1/members/nobody/promote', status: 400, code: 'INVALID_ARGUMENT' },
      { what: 'promoting a node that is not a member', on: f, method: 'POST', path: `/v1/members/${'0'.repeat(64)}/promote`, status: 409, code: 'INVALID_MEMBERSHIP_CHANGE' },
      { what: 'a value over the limit', on: f, method: 'PUT', path: '/v1/kv/existing', body: JSON.stringify('x'.repeat(MAX_VALUE_BYTES)), status: 413, code: 'TOO_LARGE' },
      { what: 'leader-check on a follower', on: f, method: 'GET', path: '/v1/leader-check', auth: false, status: 503, code: 'NOT_ACTING' },
    ]
    for (const k of cases) {
      const a = await k.on.http(k.method, k.path, { auth: k.auth ?? true, ...(k.body !== undefined ? { body: k.body } : {}), ...(k.headers ? { headers: k.headers } : {}) })
      t.equal(a.status, k.status, `${k.what}: ${k.status}`)
      t.equal(a.body?.error?.code, k.code, `${k.what}: ${k.code}`)
      t.type(a.body?.error?.message, 'string')
    }
    const stored = await leader.http('GET', '/v1/kv/existing')
    t.equal(stored.body.value, 1, 'no refused request changed the key')
    t.equal(stored.body.version, 1)
    t.equal((await f.http('GET', '/v1/health', { auth: false })).status, 200, 'health needs no token')
  })

  await t.test('the proxy path: a follower forwards writes and linearizable reads, or redirects with ?redirect=1', async (t) => {
    leader = await c.leader()
    const f = followers()[0]!
    const w = await f.http('PUT', '/v1/kv/via-follower', { body: JSON.stringify({ through: f.name }) })
    t.equal(w.status, 200, 'a write on a follower')
    t.equal(w.headers.get('x-holdfast-proxied'), '1', 'proxied to the leader')
    t.equal(w.headers.get('x-holdfast-leader'), leader.url, 'X-Holdfast-Leader names the leader')
    const onLeader = await leader.http('GET', '/v1/kv/via-follower')
    t.same(onLeader.body.value, { through: f.name }, 'the leader has it')
    t.equal(onLeader.body.revision, w.body.revision)
    t.equal(onLeader.headers.get('x-holdfast-proxied'), null)
    const r = await f.http('GET', '/v1/kv/via-follower')
    t.equal(r.headers.get('x-holdfast-proxied'), '1', 'a linearizable read through the leader')
    t.equal(r.body.revision, w.body.revision)

    const red = await f.http('PUT', '/v1/kv/redirected?redirect=1', { body: '"r"' })
    t.equal(red.status, 307)
    const location = red.headers.get('location')!
    t.equal(location, `${leader.url}/v1/kv/redirected?redirect=1`, 'Location: the leader, same path and query')
    const followed = await leader.http('PUT', location.slice(leader.url.length), { body: '"r"' })
    t.equal(followed.status, 200, 'the leader serves it')
    t.equal((await f.http('GET', '/v1/kv/redirected?redirect=1')).status, 307, 'a linearizable read redirects too')
  })

  await t.test('leader-check answers 200 on exactly one node, the leader', async (t) => {
    leader = await c.leader()
    await waitFor(async () => (await leader.http('GET', '/v1/leader-check', { auth: false })).status === 200, 'the leader to act')
    for (let i = 0; i < 10; i++) {
      const answers = await Promise.all(c.live().map((d) => d.http('GET', '/v1/leader-check', { auth: false })))
      const ok = c.live().filter((_, j) => answers[j]!.status === 200)
      t.equal(ok.length, 1, `sample ${i}: one node answers 200`)
      t.equal(ok[0], leader, 'the leader')
    }
  })

  await t.test('metrics', async (t) => {
    leader = await c.leader()
    const f = followers()[0]!
    await f.http('PUT', '/v1/kv/metered', { body: '1' })
    t.equal((await leader.http('GET', '/metrics', { auth: false })).status, 401, '/metrics needs the token')
    const m = await leader.http('GET', '/metrics')
    t.equal(m.status, 200)
    t.match(m.headers.get('content-type'), /^text\/plain/)
    t.match(m.text, /^holdfast_role\{role="leader"\} 1$/m)
    t.match(m.text, /^holdfast_acting 1$/m)
    t.match(m.text, /^holdfast_term [1-9]\d*$/m)
    t.match(m.text, /^holdfast_commit_index [1-9]\d*$/m)
    t.match(m.text, /^holdfast_apply_lag \d+$/m)
    t.match(m.text, /^holdfast_fence_token [1-9]\d*$/m)
    t.match(m.text, /^holdfast_snapshots_sent_total\{outcome="ok"\} \d+$/m)
    t.match(m.text, /^holdfast_stale_fence_total [1-9]\d*$/m, 'the stale fenced write above')
    t.match(m.text, /^holdfast_proposal_duration_seconds_count\{outcome="ok"\} [1-9]\d*$/m, 'writes served by the leader')
    t.match(m.text, /^process_resident_memory_bytes \d+/m)
    t.match(m.text, /^holdfast_transport_events_total\{kind="admitted"\} [1-9]\d*$/m, 'the swarm transport counters: peers admitted')
    for (const kind of ['authFailures', 'firewallRefusals', 'frameErrors', 'protocolErrors']) t.match(m.text, new RegExp(`^holdfast_transport_events_total\\{kind="${kind}"\\} \\d+$`, 'm'), `${kind} counted`)
    t.match(m.text, /^holdfast_peer_messages_rejected_total\{reason="malformed"\} 0$/m, 'no malformed raft messages from these peers')
    t.match(m.text, /^holdfast_peer_messages_rejected_total\{reason="spoofed"\} 0$/m)
    for (const d of followers()) {
      t.match(m.text, new RegExp(`^holdfast_peer_reachable\\{peer="${d.id}"\\} 1$`, 'm'), `${d.name} reachable`)
      t.match(m.text, new RegExp(`^holdfast_peer_replication_lag\\{peer="${d.id}"\\} \\d+$`, 'm'), `${d.name} lag`)
    }
    const fm = await f.http('GET', '/metrics')
    t.match(fm.text, /^holdfast_role\{role="follower"\} 1$/m)
    t.match(fm.text, /^holdfast_proposal_duration_seconds_count\{outcome="ok"\} [1-9]\d*$/m, 'a follower times the writes it proxies')
    t.match(fm.text, /^holdfast_http_bad_requests_total\{route="\/v1\/kv\/\{key\}",code="INVALID_JSON"\} 1$/m)
    t.match(fm.text, /^holdfast_http_requests_total\{route="\/v1\/kv\/\{key\}",method="PUT",status="413"\} 1$/m)
  })

  await t.test('a watch on a follower sees writes made on the leader', async (t) => {
    leader = await c.leader()
    const f = followers()[0]!
    const abort = new AbortController()
    const res = await fetch(`${f.url}/v1/watch?prefix=watched/`, { headers: { authorization: `Bearer ${TOKEN}` }, signal: abort.signal })
    t.equal(res.status, 200)
    const reader = res.body!.getReader()
    const put = await leader.http('PUT', '/v1/kv/watched/1', { body: '"seen"' })
    let text = ''
    while (!/data: .*\n\n/.test(text)) {
      const { value, done } = await reader.read()
      if (done) break
      text += new TextDecoder().decode(value)
    }
    abort.abort()
    t.match(text, new RegExp(`id: ${put.body.revision}\\ndata: \\{"type":"put","key":"watched/1","value":"seen","revision":${put.body.revision},`), 'the change as an event')
  })

  await t.test('a node without a quorum: 504 on a write past the deadline, 503 NO_LEADER and NOT_READY', async (t) => {
    leader = await c.leader()
    const [alone, other] = followers() as [DaemonProcess, DaemonProcess]
    leader.signal('SIGSTOP')
    other.signal('SIGSTOP')
    try {
      await waitFor(async () => (await alone.status())?.leader === null, 'the lone node to forget the leader')
      const red = await alone.http('PUT', '/v1/kv/alone?redirect=1', { body: '1' })
      t.equal(red.status, 503)
      t.equal(red.body.error.code, 'NO_LEADER')
      const ready = await alone.http('GET', '/v1/ready')
      t.equal(ready.status, 503)
      t.equal(ready.body.error.code, 'NOT_READY')
      const w = await alone.http('PUT', '/v1/kv/alone', { body: '1', timeoutMs: 30_000 })
      t.equal(w.status, 504, 'a write that cannot commit')
      t.equal(w.body.error.code, 'TIMEOUT')
      t.match(w.body.error.message, /effect is unknown/)
      t.equal((await alone.http('GET', '/v1/kv/existing?consistency=stale')).status, 200, 'stale reads still answer')
    } finally {
      leader.signal('SIGCONT')
      other.signal('SIGCONT')
    }
    await c.waitFormed(3)
    await waitFor(async () => (await alone.http('GET', '/v1/ready')).status === 200, 'the node to be ready again')
    t.pass('the cluster recovered')
  })
})
