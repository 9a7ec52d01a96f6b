/**
 * Bad input against a daemon's HTTP API, with the bearer token missing, wrong and right: malformed
 * JSON, a body over the value limit, invalid keys, unknown routes and methods, garbage admin
 * requests, and (without a valid token) a well-formed write. Every answer must be the refusal
 * expected (401 without a valid token; 400/404/405/413 with it), and the daemon must count each
 * one in holdfast_http_bad_requests_total. None may change state: the well-formed write carries a
 * value no client writes, so if it applied, the linearizability check would find a read of a
 * value never written.
 */
import type { Driver } from './env.js'
import type { HttpRequest } from './protocol.js'

export interface AbuseResult {
  sent: number
  /** Answers with the expected refusal. */
  refused: number
  /** Increase of the daemon's bad-request counter over the burst (undefined when /metrics did not answer). */
  counted: number | undefined
  problems: string[]
}

const MAX_VALUE_BYTES = 1024 * 1024

/** The sum of a counter's series in Prometheus text. */
export function counterSum(metrics: string, name: string): number {
  let sum = 0
  for (const line of metrics.split('\n')) {
    if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) sum += Number(line.slice(line.lastIndexOf(' ') + 1)) || 0
  }
  return sum
}

async function badRequests(driver: Driver, url: string): Promise<number | undefined> {
  const a = await driver.http({ url: `${url}/metrics`, method: 'GET', timeoutMs: 3_000, maxText: 1_000_000 })
  return a.status === 200 ? counterSum(a.text, 'holdfast_http_bad_requests_total') : undefined
}

export async function abuseHttp(driver: Driver, url: string, token: string, tag: string): Promise<AbuseResult> {
  const result: AbuseResult = { sent: 0, refused: 0, counted: undefined, problems: [] }
  const before = await badRequests(driver, url)
  const huge = Buffer.alloc(MAX_VALUE_BYTES + 4096, 0x61).toString('base64')
  const cases: Array<{ what: string; req: Omit<HttpRequest, 'auth'>; status: number }> = [
    { what: 'malformed JSON', req: { url: `${url}/v1/kv/k0`, method: 'PUT', body: '{"not json' }, status: 400 },
    { what: 'a body over the limit', req: { url: `${url}/v1/kv/k0`, method: 'PUT', bodyBase64: huge, timeoutMs: 10_000 }, status: 413 },
    { what: 'a key with a control character', req: { url: `${url}/v1/kv/bad%00key`, method: 'PUT', body: '"x"' }, status: 400 },
    { what: 'a key over the limit', req: { url: `${url}/v1/kv/${'x'.repeat(1100)}`, method: 'PUT', body: '"x"' }, status: 400 },
    { what: 'a key that is not UTF-8', req: { url: `${url}/v1/kv/%ff%fe`, method: 'GET' }, status: 400 },
    { what: 'an unknown route', req: { url: `${url}/v1/nothing/here`, method: 'GET' }, status: 404 },
    { what: 'a method not allowed', req: { url: `${url}/v1/kv`, method: 'POST', body: '{}' }, status: 405 },
    { what: 'a transfer with a garbage body', req: { url: `${url}/v1/leader/transfer`, method: 'POST', body: '\u0000\u0001garbage' }, status: 400 },
    { what: 'a removal of a malformed id', req: { url: `${url}/v1/members/not-a-node-id`, method: 'DELETE' }, status: 400 },
  ]
  let n = 0
  for (const auth of [false, `wrong-${tag}`, true] as const) {
    const list = auth === true ? cases : [...cases, { what: 'a well-formed write', req: { url: `${url}/v1/kv/k1`, method: 'PUT', body: JSON.stringify(`attack-${tag}-${n++}`) }, status: 401 }]
    for (const c of list) {
      const a = await driver.http({ ...c.req, auth })
      result.sent++
      const want = auth === true ? c.status : 401
      // A 413 may also end in a reset connection once the daemon stops reading the body.
      if (a.status === want || (want === 413 && a.status === 0 && a.error !== 'refused' && a.error !== 'timeout')) result.refused++
      else result.problems.push(`${c.what} with ${auth === true ? 'the token' : auth === false ? 'no token' : 'a wrong token'}: got ${a.status || a.error} ${a.text.slice(0, 200)}, want ${want}`)
    }
  }
  const after = await badRequests(driver, url)
  if (before !== undefined && after !== undefined) {
    result.counted = after - before
    if (result.counted < result.sent) result.problems.push(`holdfast_http_bad_requests_total rose by ${result.counted} for ${result.sent} bad requests`)
  }
  return result
}
