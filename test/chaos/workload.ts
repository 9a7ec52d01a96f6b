/**
 * The campaign's clients, run by the driver: each loops over random operations on a small key set
 * (linearizable and lease reads, writes of unique values, compare-and-sets through
 * PUT ?ifRevision) against a random daemon, so many requests are proxied to the leader, and
 * records each with its call and return times. A write whose outcome is unknown (a timeout, a
 * connection lost after sending, a 504) is recorded with no return time.
 *
 * A share of the writes go to write-once keys (u/<client>-<seq>): the end of a run checks that
 * every acknowledged one is on every node, a check of "no acknowledged write lost" that does not
 * depend on the linearizability checker.
 */
import { NOT_APPLIED_CODES } from '../../src/cli/client-error.js'
import { Prng } from '../sim/prng.js'
import { errorCode, httpRequest, NOT_SENT } from './http.js'
import { wallNow, type HttpAnswer, type RecordedOp, type Target, type WorkloadConfig } from './protocol.js'

/** The key names of the shared key set. */
export const keyName = (i: number): string => `k${i}`
export const WRITE_ONCE_PREFIX = 'u/'

/** How an answer to a write ends the op (a cas's REVISION_MISMATCH is a definite failure). */
export function writeOutcome(a: HttpAnswer): RecordedOp['outcome'] {
  if (a.status === 200) return 'ok'
  if (a.status === 0) return a.error !== undefined && NOT_SENT.has(a.error) ? 'notApplied' : 'unknown'
  const code = errorCode(a)
  if (code === 'REVISION_MISMATCH') return 'fail'
  if (code !== undefined && NOT_APPLIED_CODES.has(code)) return 'notApplied'
  return 'unknown'
}

export class Workload {
  readonly ops: RecordedOp[] = []
  #targets: Target[]
  #running = true
  readonly #loops: Promise<void>[] = []

  constructor(
    readonly config: WorkloadConfig,
    targets: Target[],
  ) {
    this.#targets = targets
    for (let c = 0; c < config.clients; c++) this.#loops.push(this.#client(c, new Prng((config.seed ^ Math.imul(c + 1, 0x9e3779b1)) >>> 0)))
  }

  set targets(t: Target[]) {
    this.#targets = t
  }

  async stop(): Promise<RecordedOp[]> {
    this.#running = false
    await Promise.all(this.#loops)
    return this.ops
  }

  async #client(client: number, rng: Prng): Promise<void> {
    // What this client last saw of each key: the value and its revision (0: absent).
    const seen = new Map<string, { value: string | null; revision: number }>()
    let seq = 0
    while (this.#running) {
      const targets = this.#targets
      if (targets.length === 0) {
        await new Promise((r) => setTimeout(r, 50))
        continue
      }
      const target = targets[rng.int(0, targets.length - 1)]!
      const key = keyName(rng.int(0, this.config.keys - 1))
      const roll = rng.next()
      const value = `c${client}-${seq++}`
      let op: RecordedOp
      if (roll < this.config.writeOnceShare) {
        op = await this.#write(client, target, `${WRITE_ONCE_PREFIX}${value}`, value)
      } else if (roll < 0.45) {
        op = await this.#read(client, target, key, rng.next() < 0.3 ? 'lease' : 'linearizable', seen)
      } else if (roll < 0.75 || !seen.has(key)) {
        op = await this.#write(client, target, key, value)
        if (op.outcome === 'ok' && op.revision !== undefined) seen.set(key, { value, revision: op.revision })
      } else {
        op = await this.#cas(client, target, key, value, seen.get(key)!)
        if (op.outcome === 'ok' && op.revision !== undefined) seen.set(key, { value, revision: op.revision })
      }
      // A daemon that refused the connection (killed, not restarted yet) is not asked again at once.
      if (op.code === 'refused') await new Promise((r) => setTimeout(r, 50))
    }
  }

  #url(target: Target, key: string, query = ''): string {
    return `${target.url}/v1/kv/${encodeURIComponent(key)}${query}`
  }

  async #read(client: number, target: Target, key: string, consistency: 'linearizable' | 'lease', seen: Map<string, { value: string | null; revision: number }>): Promise<RecordedOp> {
    const call = wallNow()
    const a = await httpRequest({ url: this.#url(target, key, consistency === 'lease' ? '?consistency=lease' : ''), method: 'GET', timeoutMs: this.config.opTimeoutMs }, this.config.token)
    const ret = wallNow()
    const op: RecordedOp = { client, kind: 'read', key, consistency, node: target.name, call, ret, outcome: 'notApplied', ...(a.proxied ? { proxied: true } : {}) }
    const body = a.body as { value?: unknown; revision?: unknown } | undefined
    if (a.status === 200 && typeof body?.value === 'string' && typeof body.revision === 'number') {
      op.outcome = 'ok'
      op.readValue = body.value
      op.revision = body.revision
      seen.set(key, { value: body.value, revision: body.revision })
    } else if (a.status === 404 && errorCode(a) === 'NOT_FOUND') {
      op.outcome = 'ok'
      op.readValue = null
      op.revision = 0
      seen.set(key, { value: null, revision: 0 })
    } else {
      op.code = errorCode(a) ?? a.error ?? String(a.status)
      // A read without an answer constrains nothing.
      op.ret = null
      op.outcome = a.status === 0 && !NOT_SENT.has(a.error ?? '') ? 'unknown' : 'notApplied'
    }
    this.ops.push(op)
    return op
  }

  async #write(client: number, target: Target, key: string, value: string): Promise<RecordedOp> {
    const call = wallNow()
    const a = await httpRequest({ url: this.#url(target, key), method: 'PUT', body: JSON.stringify(value), timeoutMs: this.config.opTimeoutMs }, this.config.token)
    return this.#record({ client, kind: 'write', key, value, node: target.name, call, ret: wallNow(), outcome: 'ok' }, a)
  }

  async #cas(client: number, target: Target, key: string, value: string, last: { value: string | null; revision: number }): Promise<RecordedOp> {
    const call = wallNow()
    const a = await httpRequest({ url: this.#url(target, key, `?ifRevision=${last.revision}`), method: 'PUT', body: JSON.stringify(value), timeoutMs: this.config.opTimeoutMs }, this.config.token)
    return this.#record({ client, kind: 'cas', key, value, ifRevision: last.revision, expect: last.value, node: target.name, call, ret: wallNow(), outcome: 'ok' }, a)
  }

  #record(op: RecordedOp, a: HttpAnswer): RecordedOp {
    op.outcome = writeOutcome(a)
    if (a.proxied) op.proxied = true
    if (op.outcome === 'ok') {
      const revision = (a.body as { revision?: unknown } | undefined)?.revision
      if (typeof revision === 'number') op.revision = revision
    } else {
      op.code = errorCode(a) ?? a.error ?? String(a.status)
    }
    if (op.outcome === 'unknown') op.ret = null
    this.ops.push(op)
    return op
  }
}
