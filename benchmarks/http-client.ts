/**
 * A lean HTTP/1.1 client for the HTTP rows and the failover probes: node:http with keep-alive
 * connections (one per writer), bodies sent whole, answers read and dropped. fetch() costs
 * several times more CPU per request, which would be charged to the system under test.
 */
import { Agent, request } from 'node:http'

/** PUTs and GETs against base URLs. */
export class HttpClient {
  readonly #agent: Agent

  constructor(maxSockets: number) {
    this.#agent = new Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets })
  }

  /**
   * Sends one request and resolves with the status (the body is read and dropped). Rejects on a
   * connection error or after `timeoutMs`.
   */
  send(method: 'PUT' | 'GET' | 'POST' | 'DELETE', url: URL, body: Buffer | undefined, timeoutMs: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const req = request(
        {
          agent: this.#agent,
          host: url.hostname,
          port: url.port,
          method,
          path: url.pathname + url.search,
          headers: body ? { 'content-type': 'application/json', 'content-length': body.length } : {},
          timeout: timeoutMs,
        },
        (res) => {
          res.on('data', () => {})
          res.on('end', () => resolve(res.statusCode ?? 0))
          res.on('error', reject)
        },
      )
      req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)))
      req.on('error', reject)
      req.end(body)
    })
  }

  close(): void {
    this.#agent.destroy()
  }
}

/** PUT /v1/kv/{key} on `base`; rejects unless the write was acknowledged (200). */
export async function putKv(client: HttpClient, base: string, key: string, body: Buffer, timeoutMs = 15_000): Promise<void> {
  const status = await client.send('PUT', new URL(`/v1/kv/${encodeURIComponent(key)}`, base), body, timeoutMs)
  if (status !== 200) throw new Error(`PUT answered ${status}`)
}
