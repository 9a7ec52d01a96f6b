/**
 * The client host of the daemon VIP test (daemon-vip.test.ts), started inside the client namespace as
 *
 *   ip netns exec NS node --import tsx daemon-hosts.ts '<ClientHostConfig JSON>'
 *
 * with an IPC channel to the test, which lives in the root namespace and cannot reach the test
 * network itself. The process exits when that channel closes (the test is gone). It:
 *
 * - probes `GET <probeUrl>` (the VIP's /v1/leader-check) every `probeEveryMs` on a fresh
 *   connection, reporting the status and the X-Holdfast-Node-Id of each answer;
 * - carries out HTTP requests the test sends ({ type: 'http' }), answering with the outcome;
 * - on { type: 'writeStart' }, writes `<prefix><n>` = { n } through `writeUrl` one after the
 *   other until { type: 'writeStop' }, reporting each outcome (an error is an unknown outcome).
 *
 * Times are wall-clock ms (wallNow in children.ts), comparable with the test's.
 */
import { request } from 'node:http'
import { pathToFileURL } from 'node:url'
import { wallNow } from './children.js'

export interface ClientHostConfig {
  probeUrl: string
  probeEveryMs: number
  /**
   * Short, so that a probe whose SYN went to the previous holder's MAC is given up and the next one
   * tries again, instead of waiting out TCP's 1 s SYN retransmission: the probes then measure when
   * the VIP answers again, not the retransmission timer.
   */
  probeTimeoutMs: number
  /** For the test's requests and the writes. */
  timeoutMs: number
}

/** One leader-check probe: `status` and `nodeId` when answered, `error` otherwise. */
export interface LeaderProbe {
  at: number
  ms: number
  status?: number
  nodeId?: string
  error?: string
}

/** The outcome of one HTTP request (`error` when no answer came). */
export interface HttpOutcome {
  status?: number
  headers?: Record<string, string>
  body?: string
  error?: string
}

/** One write of the writer: acknowledged when status is 200. */
export interface WriteOutcome {
  key: string
  n: number
  at: number
  ms: number
  status?: number
  revision?: number
  error?: string
}

export type ToClient =
  | { type: 'http'; id: number; method: string; url: string; body?: string }
  | { type: 'writeStart'; url: string; prefix: string }
  | { type: 'writeStop' }

export type FromClient =
  | { type: 'ready' }
  | { type: 'probe'; probe: LeaderProbe }
  | { type: 'http'; id: number; outcome: HttpOutcome }
  | { type: 'write'; write: WriteOutcome }
  | { type: 'writeStopped' }

function send(m: FromClient): void {
  if (process.connected) process.send!(m)
}

/** One request on a fresh connection (agent: false), so every request resolves the VIP's link address anew. */
function httpOnce(method: string, url: string, body: string | undefined, timeoutMs: number): Promise<HttpOutcome> {
  return new Promise((resolve) => {
    const headers: Record<string, string> = body === undefined ? {} : { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) }
    const req = request(url, { method, agent: false, timeout: timeoutMs, headers }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => (text += d))
      res.on('end', () => {
        const h: Record<string, string> = {}
        for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') h[k] = v
        resolve({ status: res.statusCode!, headers: h, body: text })
      })
      res.on('error', (err) => resolve({ error: err.message }))
    })
    req.on('timeout', () => req.destroy(new Error('timeout')))
    req.on('error', (err: NodeJS.ErrnoException) => resolve({ error: err.code ?? err.message }))
    req.end(body)
  })
}

function main(config: ClientHostConfig): void {
  process.on('disconnect', () => process.exit(0))

  const probe = async (): Promise<void> => {
    const at = wallNow()
    const o = await httpOnce('GET', config.probeUrl, undefined, config.probeTimeoutMs)
    const p: LeaderProbe = { at, ms: wallNow() - at }
    if (o.error !== undefined) p.error = o.error
    else {
      p.status = o.status!
      const id = o.headers?.['x-holdfast-node-id']
      if (id !== undefined) p.nodeId = id
    }
    send({ type: 'probe', probe: p })
    setTimeout(() => void probe(), config.probeEveryMs)
  }

  let writing: { stop: boolean } | undefined
  const writer = async (url: string, prefix: string, state: { stop: boolean }): Promise<void> => {
    for (let n = 0; !state.stop; n++) {
      const key = `${prefix}${n}`
      const at = wallNow()
      const o = await httpOnce('PUT', `${url}/v1/kv/${key}`, JSON.stringify({ n }), config.timeoutMs)
      const w: WriteOutcome = { key, n, at, ms: wallNow() - at }
      if (o.error !== undefined) w.error = o.error
      else {
        w.status = o.status!
        try {
          const revision = (JSON.parse(o.body ?? '') as { revision?: unknown }).revision
          if (typeof revision === 'number') w.revision = revision
        } catch {
          // Not JSON: the status tells.
        }
      }
      send({ type: 'write', write: w })
      // After a failure (no server behind the VIP for a moment), do not spin.
      if (w.status !== 200) await new Promise((r) => setTimeout(r, 20))
    }
    send({ type: 'writeStopped' })
  }

  process.on('message', (m: ToClient) => {
    if (m.type === 'http') void httpOnce(m.method, m.url, m.body, config.timeoutMs).then((outcome) => send({ type: 'http', id: m.id, outcome }))
    else if (m.type === 'writeStart') {
      if (writing) writing.stop = true
      writing = { stop: false }
      void writer(m.url, m.prefix, writing)
    } else if (m.type === 'writeStop') {
      if (writing) writing.stop = true
      else send({ type: 'writeStopped' })
      writing = undefined
    }
  })
  send({ type: 'ready' })
  void probe()
}

if (process.argv[1] !== undefined && pathToFileURL(process.argv[1]).href === import.meta.url) {
  const raw = process.argv[2]
  if (!process.send || raw === undefined) {
    process.stderr.write('usage: node --import tsx daemon-hosts.ts <config JSON>, with an IPC channel\n')
    process.exit(2)
  }
  main(JSON.parse(raw) as ClientHostConfig)
}
