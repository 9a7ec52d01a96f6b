/**
 * GET /v1/watch as Server-Sent Events: one event per change, `id` its position, `data` its JSON
 * (kv-json.ts). The position is `<revision>` for the first change of a revision and
 * `<revision>.<seq>` for the further changes of a multi-key transaction, so a client that
 * reconnects with Last-Event-ID resumes exactly after the last change it received, even in the
 * middle of a transaction. Comments keep idle connections alive; the node's watch iterator is
 * stopped (through its AbortSignal) as soon as the client goes away.
 */
import type { ServerResponse } from 'node:http'
import type { HoldfastNode } from '../node.js'
import type { Change } from '../state/index.js'
import { changeJson } from './kv-json.js'
import { HttpError, errorBody, toHttpError } from './http-errors.js'

/** Where a watch starts: changes at (revision, seq) > (revision, afterSeq); afterSeq -1 takes the whole revision. */
export interface WatchStart {
  readonly revision: number
  readonly afterSeq: number
}

const POSITION = /^([1-9][0-9]{0,15})(?:\.([0-9]{1,9}))?$/

/** Parses a Last-Event-ID this stream sent: "N" (change N.0 received) or "N.S". Throws 400 otherwise. */
export function parseEventId(id: string): WatchStart {
  const m = POSITION.exec(id.trim())
  const revision = m ? Number(m[1]) : NaN
  if (!m || !Number.isSafeInteger(revision)) throw new HttpError(400, 'INVALID_ARGUMENT', `Last-Event-ID must be a position this stream sent ("<revision>" or "<revision>.<seq>"), got ${JSON.stringify(id)}`)
  return { revision, afterSeq: Number(m[2] ?? 0) }
}

/** The SSE id of a change (see the file comment). */
export function eventId(c: Change): string {
  return c.seq === 0 ? String(c.revision) : `${c.revision}.${c.seq}`
}

export interface WatchStreamOptions {
  readonly node: HoldfastNode
  readonly prefix: string
  /** Undefined: only changes applied after the request. */
  readonly start: WatchStart | undefined
  /** Aborts when the client disconnects (or the server closes). */
  readonly signal: AbortSignal
  /** Interval of keep-alive comments. */
  readonly heartbeatMs: number
  /** Writes the response head (status 200 and the API's common headers plus these). */
  writeHead(headers: Record<string, string>): void
}

/**
 * Streams changes until the client leaves or the watch fails. Failures found before anything was
 * sent (a bad fromRevision, COMPACTED history, a closed node) are thrown, for a plain error
 * response (COMPACTED is 410); later ones end the stream with an `event: error` carrying the
 * usual error JSON. Resolves once the node's iterator has finished.
 */
export async function serveWatch(res: ServerResponse, options: WatchStreamOptions): Promise<void> {
  const { node, start, signal } = options
  const iterator = node.watch({ prefix: options.prefix, signal, ...(start ? { fromRevision: start.revision } : {}) })
  try {
    // The generator reads its first page synchronously inside next(): if the history it needs is
    // compacted, that first step has rejected before a macrotask turn, and no header was sent yet.
    const first = iterator.next()
    let settled: IteratorResult<Change> | undefined
    let failed: unknown
    let done = false
    first.then((r) => { settled = r; done = true }, (err: unknown) => { failed = err; done = true })
    await new Promise<void>((resolve) => setImmediate(resolve))
    if (done && failed !== undefined) throw failed

    options.writeHead({
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-cache, no-transform',
      'X-Accel-Buffering': 'no',
    })
    res.write('retry: 1000\n: watching\n\n')
    const heartbeat = setInterval(() => res.write(': heartbeat\n\n'), options.heartbeatMs)
    try {
      const send = async (c: Change): Promise<void> => {
        if (start && c.revision === start.revision && c.seq <= start.afterSeq) return
        const ok = res.write(`id: ${eventId(c)}\ndata: ${JSON.stringify(changeJson(c))}\n\n`)
        if (!ok) await drained(res, signal)
      }
      let result = done ? settled! : await first
      while (!result.done && !signal.aborted) {
        await send(result.value)
        result = await iterator.next()
      }
    } catch (err) {
      if (!signal.aborted) {
        const e = toHttpError(err)
        res.write(`event: error\ndata: ${JSON.stringify(errorBody(e))}\n\n`)
      }
    } finally {
      clearInterval(heartbeat)
      res.end()
    }
  } finally {
    await iterator.return?.()
  }
}

/** Resolves when `res` can take more data, or when the client is gone. */
function drained(res: ServerResponse, signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    const done = (): void => {
      res.off('drain', done)
      signal.removeEventListener('abort', done)
      resolve()
    }
    res.on('drain', done)
    signal.addEventListener('abort', done)
    if (signal.aborted) done()
  })
}
