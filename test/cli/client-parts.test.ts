/**
 * The client's pure parts: the server-sent events reader (events split across chunks, CRLF,
 * comments, multi-line data) and how a failed fetch() is classified (never connected, so a
 * write may go elsewhere, or possibly sent). The real connection failures come from real
 * sockets on loopback.
 */
import { createServer, type Server } from 'node:http'
import t from 'tap'
import { classifyFetchError } from '../../src/cli/client-error.js'
import { normalizeEndpoint } from '../../src/cli/client.js'
import { readSse, type SseEvent } from '../../src/cli/sse.js'

async function collect(chunks: string[]): Promise<SseEvent[]> {
  async function* body(): AsyncGenerator<Uint8Array> {
    for (const c of chunks) yield new TextEncoder().encode(c)
  }
  const out: SseEvent[] = []
  for await (const ev of readSse(body())) out.push(ev)
  return out
}

t.test('SSE: events across chunk boundaries, CRLF, comments and multi-line data', async (t) => {
  const events = await collect(['retry: 1000\n: watching\n\n', 'id: 5\nda', 'ta: {"a":1}\n', '\n: heartbeat\n\nid: 5.1\r', '\ndata: x\r\ndata: y\r\n\r\n', 'event: error\ndata: {}\n\n', 'data: cut'])
  t.same(events, [
    { event: 'message', data: '{"a":1}', id: '5' },
    { event: 'message', data: 'x\ny', id: '5.1' },
    { event: 'error', data: '{}', id: undefined },
  ])
})

t.test('a refused connection was not sent; a cut one or a timeout may have been', async (t) => {
  // A privileged port nothing listens on (port 1 is on fetch's list of blocked ports).
  const refused = await fetch('http://127.0.0.1:2/').then(() => undefined, (e: unknown) => e)
  t.same(classifyFetchError(refused), { kind: 'not-sent', detail: 'ECONNREFUSED' })

  // '/hang' never answers; anything else has its connection cut once the request is in.
  const server: Server = createServer((req) => {
    if (req.url !== '/hang') req.socket.destroy()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    server.closeAllConnections()
    return new Promise((resolve) => server.close(resolve))
  })
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/`
  const cut = await fetch(url, { method: 'PUT', body: '1' }).then(() => undefined, (e: unknown) => e)
  t.match(classifyFetchError(cut), { kind: 'lost', code: 'CONNECTION_LOST' })

  const timedOut = await fetch(url + 'hang', { signal: AbortSignal.timeout(50) }).then(() => undefined, (e: unknown) => e)
  t.match(classifyFetchError(timedOut), { kind: 'lost', code: 'TIMEOUT' })
})

t.test('endpoint normalisation', async (t) => {
  t.equal(normalizeEndpoint('127.0.0.1:8080'), 'http://127.0.0.1:8080')
  t.equal(normalizeEndpoint(' http://h:1/ '), 'http://h:1')
  t.equal(normalizeEndpoint('https://h/base/'), 'https://h/base')
  t.throws(() => normalizeEndpoint('ws://h:1'), { code: 'INVALID_ARGUMENT' })
  t.throws(() => normalizeEndpoint('http://'), { code: 'INVALID_ARGUMENT' })
})
