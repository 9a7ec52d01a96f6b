/**
 * Reading and checking what a request carries: keys from the path, query parameters and JSON
 * bodies. Everything is checked before anything is done, so bad input changes nothing. Bodies
 * are read up to a limit and no further: a larger one is refused (413) without being buffered.
 */
import type { IncomingMessage } from 'node:http'
import { MAX_KEY_BYTES } from '../state/index.js'
import { HttpError } from './http-errors.js'

/** C0 controls and DEL: unprintable, and a hazard in logs and terminals, so no key carries them over HTTP. */
const CONTROL = /[\u0000-\u001f\u007f]/

/**
 * Decodes a key (or another path part) from its raw, percent-encoded form. It must be valid
 * percent-encoded UTF-8, non-empty, at most MAX_KEY_BYTES bytes, without control characters.
 */
export function decodeKey(raw: string, what = 'key'): string {
  let key: string
  try {
    key = decodeURIComponent(raw)
  } catch {
    throw new HttpError(400, 'INVALID_KEY', `the ${what} is not valid percent-encoded UTF-8`)
  }
  return checkKeyText(key, what)
}

/** Checks an already decoded key: non-empty, at most MAX_KEY_BYTES bytes, no control characters. */
export function checkKeyText(key: string, what = 'key'): string {
  if (key.length === 0) throw new HttpError(400, 'INVALID_KEY', `the ${what} is empty`)
  const bytes = Buffer.byteLength(key, 'utf8')
  if (bytes > MAX_KEY_BYTES) throw new HttpError(400, 'INVALID_KEY', `the ${what} is ${bytes} bytes in UTF-8, over the limit of ${MAX_KEY_BYTES}`)
  if (CONTROL.test(key)) throw new HttpError(400, 'INVALID_KEY', `the ${what} contains control characters`)
  return key
}

/** A key prefix from the query (may be empty); the same rules as a key otherwise. */
export function decodePrefix(prefix: string | null): string {
  if (prefix === null || prefix === '') return ''
  const bytes = Buffer.byteLength(prefix, 'utf8')
  if (bytes > MAX_KEY_BYTES) throw new HttpError(400, 'INVALID_KEY', `the prefix is ${bytes} bytes in UTF-8, over the limit of ${MAX_KEY_BYTES}`)
  if (CONTROL.test(prefix)) throw new HttpError(400, 'INVALID_KEY', 'the prefix contains control characters')
  return prefix
}

/** An optional non-negative integer query parameter (decimal digits only). */
export function intParam(query: URLSearchParams, name: string, min = 0, max = Number.MAX_SAFE_INTEGER): number | undefined {
  const raw = query.get(name)
  if (raw === null) return undefined
  const n = /^[0-9]{1,16}$/.test(raw) ? Number(raw) : NaN
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new HttpError(400, 'INVALID_ARGUMENT', `${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(raw)}`)
  }
  return n
}

/** How a read is served. */
export type Consistency = 'linearizable' | 'lease' | 'stale'

/** The `consistency` query parameter. @default 'linearizable' */
export function consistencyParam(query: URLSearchParams): Consistency {
  const raw = query.get('consistency')
  if (raw === null || raw === '') return 'linearizable'
  if (raw === 'linearizable' || raw === 'lease' || raw === 'stale') return raw
  throw new HttpError(400, 'INVALID_ARGUMENT', `consistency must be linearizable, lease or stale, got ${JSON.stringify(raw)}`)
}

/** A truthy flag parameter (`?redirect=1`, `?redirect=true`, or bare `?redirect`). */
export function flagParam(query: URLSearchParams, name: string): boolean {
  const raw = query.get(name)
  return raw !== null && (raw === '' || raw === '1' || raw === 'true')
}

function tooLarge(limit: number): HttpError {
  return new HttpError(413, 'TOO_LARGE', `the request body is over the limit of ${limit} bytes`, { Connection: 'close' })
}

/**
 * Reads the body, up to `limit` bytes. A declared Content-Length over the limit is refused before
 * reading; a streamed body stops being read as soon as it passes the limit (the connection is then
 * closed after the 413, so the rest is never read).
 */
export function readBody(req: IncomingMessage, limit: number, signal: AbortSignal): Promise<Buffer> {
  const declared = req.headers['content-length']
  if (declared !== undefined && Number(declared) > limit) return Promise.reject(tooLarge(limit))
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    const finish = (err: unknown, body?: Buffer): void => {
      req.off('data', onData)
      req.off('end', onEnd)
      req.off('error', onError)
      signal.removeEventListener('abort', onAbort)
      if (err) {
        req.pause()
        reject(err)
      } else {
        resolve(body!)
      }
    }
    const onData = (chunk: Buffer): void => {
      size += chunk.length
      if (size > limit) finish(tooLarge(limit))
      else chunks.push(chunk)
    }
    const onEnd = (): void => finish(undefined, Buffer.concat(chunks, size))
    const onError = (err: Error): void => finish(err)
    const onAbort = (): void => finish(signal.reason ?? new HttpError(408, 'REQUEST_TIMEOUT', 'the request body did not arrive in time'))
    req.on('data', onData)
    req.on('end', onEnd)
    req.on('error', onError)
    signal.addEventListener('abort', onAbort)
    if (signal.aborted) onAbort()
  })
}

const utf8 = new TextDecoder('utf-8', { fatal: true })

/** Parses a body as JSON (strict UTF-8); anything else is 400 INVALID_JSON. */
export function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(utf8.decode(body)) as unknown
  } catch {
    throw new HttpError(400, 'INVALID_JSON', body.length === 0 ? 'the request body is empty; it must be JSON' : 'the request body is not valid JSON')
  }
}
