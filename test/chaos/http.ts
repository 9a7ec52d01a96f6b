/**
 * One HTTP request from the driver, with every failure turned into a class: `refused` means the
 * request surely never reached a daemon (connection refused, host or network unreachable), so a
 * write failing that way did not apply; every other failure leaves a write's outcome unknown.
 */
import type { HttpAnswer, HttpRequest } from './protocol.js'

/** Failure classes that prove the request was never sent. */
export const NOT_SENT = new Set(['refused'])

function failureClass(err: unknown): string {
  const e = err as { name?: string; cause?: { code?: string; name?: string } }
  if (e?.name === 'TimeoutError' || e?.cause?.name === 'TimeoutError') return 'timeout'
  const code = e?.cause?.code
  if (code === 'ECONNREFUSED' || code === 'EHOSTUNREACH' || code === 'ENETUNREACH') return 'refused'
  return code ?? e?.name ?? 'error'
}

/** Sends `req`; `token` is the bearer token sent unless `req.auth` says otherwise. */
export async function httpRequest(req: HttpRequest, token: string): Promise<HttpAnswer> {
  const headers: Record<string, string> = { ...(req.headers ?? {}) }
  const auth = req.auth ?? true
  if (auth !== false) headers['authorization'] = `Bearer ${auth === true ? token : auth}`
  const body = req.bodyBase64 !== undefined ? Buffer.from(req.bodyBase64, 'base64') : req.body
  try {
    const res = await fetch(req.url, {
      method: req.method,
      headers,
      ...(body !== undefined ? { body } : {}),
      redirect: 'manual',
      signal: AbortSignal.timeout(req.timeoutMs ?? 5_000),
    })
    const text = await res.text()
    let parsed: unknown
    if ((res.headers.get('content-type') ?? '').includes('json')) {
      try {
        parsed = JSON.parse(text)
      } catch {
        parsed = undefined
      }
    }
    return { status: res.status, text: text.slice(0, req.maxText ?? 4000), ...(parsed !== undefined ? { body: parsed } : {}), ...(res.headers.get('x-holdfast-proxied') ? { proxied: true } : {}) }
  } catch (err) {
    return { status: 0, text: '', error: failureClass(err) }
  }
}

/** The error code of a daemon's JSON error answer. */
export function errorCode(a: HttpAnswer): string | undefined {
  const code = (a.body as { error?: { code?: unknown } } | undefined)?.error?.code
  return typeof code === 'string' ? code : undefined
}
