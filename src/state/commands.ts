/**
 * The commands of the replicated key-value state machine, and their encoding in the `data` of
 * normal log entries.
 *
 * Wire form: one format byte (COMMAND_FORMAT), then a MessagePack array whose first element is a
 * one-letter tag:
 *
 * ```
 * put       ['p', bucket, key, value, ifRevision | null, fence | null]
 * delete    ['d', bucket, key, ifRevision | null, fence | null]
 * txn       ['t', [[bucket, key, revision], ...], successOps, failureOps, fence | null]
 *             op: ['p', bucket, key, value, ifRevision | null] | ['d', bucket, key, ifRevision | null]
 * call      ['c', name, fence | null, args]   (args absent when undefined)
 * setFence  ['f', token]
 * ```
 *
 * Values are MessagePack natively: a JSON-compatible value is a map/array/string/number/bool/nil,
 * raw bytes are a `bin` (which no JSON value can produce, so the two never mix up on decode).
 *
 * Limits: key, bucket and command-name rules are constants (not options) because decoding runs on
 * every replica during apply and must give the same verdict everywhere. The value-size limit is
 * configurable and checked only at encode time, before anything reaches the log.
 */
import { Packr } from 'msgpackr'
import { HoldfastError } from '../errors.js'

/** The bucket used when none is given. */
export const DEFAULT_BUCKET = 'default'
/** The longest key, in UTF-8 bytes. */
export const MAX_KEY_BYTES = 1024
/** The longest bucket name, in UTF-8 bytes. */
export const MAX_BUCKET_BYTES = 128
/** The longest command name, in UTF-8 bytes. */
export const MAX_COMMAND_NAME_BYTES = 256
/** Default of EncodeOptions.maxValueSize: 1 MiB. */
export const DEFAULT_MAX_VALUE_SIZE = 1024 * 1024
/** Default of EncodeOptions.maxCommandSize: 4 MiB. */
export const DEFAULT_MAX_COMMAND_SIZE = 4 * 1024 * 1024
/** The first byte of every encoded command; a decoder refuses any other. */
export const COMMAND_FORMAT = 1
/** JSON values nest at most this deep (a guard against stack exhaustion, the same on every replica). */
export const MAX_VALUE_DEPTH = 64
/** The most operations (both branches together) and compares one txn may carry. */
export const MAX_TXN_OPS = 10_000

/** A JSON-compatible value: what JSON.parse can return (numbers finite, objects plain). */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue }

/** A stored value: a JSON-compatible value or raw bytes (bytes only as the whole value). */
export type Value = JsonValue | Uint8Array

/** Options common to writes. */
export interface WriteOptions {
  /** The bucket (namespace) of the key. @default 'default' */
  readonly bucket?: string | undefined
  /**
   * Compare-and-set: the write happens only if the key's modRevision equals this; `0` means
   * "the key must not exist". Otherwise the write fails with REVISION_MISMATCH.
   */
  readonly ifRevision?: number | undefined
  /** A fencing token: the command fails with STALE_FENCE if it is below the current token. */
  readonly fence?: number | undefined
}

/** One write inside a txn. `ifRevision` failing fails the whole txn (REVISION_MISMATCH). */
export type TxnOp =
  | { readonly type: 'put'; readonly bucket?: string | undefined; readonly key: string; readonly value: Value; readonly ifRevision?: number | undefined }
  | { readonly type: 'delete'; readonly bucket?: string | undefined; readonly key: string; readonly ifRevision?: number | undefined }

/** A txn guard: true when the key's modRevision equals `revision` (`0`: the key does not exist). */
export interface Compare {
  readonly bucket?: string | undefined
  readonly key: string
  readonly revision: number
}

/**
 * A command of the state machine.
 *
 * - `put` / `delete`: one key, with optional compare-and-set (`ifRevision`) and fence.
 * - `txn` (as etcd's): if every `compare` holds, the `success` ops run, otherwise the `failure`
 *   ops; the result says which (`succeeded`). Ops run in order and see each other's writes. Any
 *   op's own `ifRevision` failing fails the whole entry with REVISION_MISMATCH: all or nothing.
 * - `call`: runs the handler registered under `name` (KvStateMachine.register) with `args`.
 * - `setFence`: raises the current fencing token (a lower or equal token is ignored).
 */
export type Command =
  | ({ readonly type: 'put'; readonly key: string; readonly value: Value } & WriteOptions)
  | ({ readonly type: 'delete'; readonly key: string } & WriteOptions)
  | {
      readonly type: 'txn'
      readonly compare?: readonly Compare[] | undefined
      readonly success: readonly TxnOp[]
      readonly failure?: readonly TxnOp[] | undefined
      readonly fence?: number | undefined
    }
  | { readonly type: 'call'; readonly name: string; readonly args?: Value | undefined; readonly fence?: number | undefined }
  | { readonly type: 'setFence'; readonly token: number }

/** A txn op after validation: its bucket is filled in. */
export type ResolvedTxnOp =
  | { readonly type: 'put'; readonly bucket: string; readonly key: string; readonly value: Value; readonly ifRevision: number | undefined }
  | { readonly type: 'delete'; readonly bucket: string; readonly key: string; readonly ifRevision: number | undefined }

/** A command after validation or decoding: buckets filled in, optional fields explicit. */
export type ResolvedCommand =
  | { readonly type: 'put'; readonly bucket: string; readonly key: string; readonly value: Value; readonly ifRevision: number | undefined; readonly fence: number | undefined }
  | { readonly type: 'delete'; readonly bucket: string; readonly key: string; readonly ifRevision: number | undefined; readonly fence: number | undefined }
  | {
      readonly type: 'txn'
      readonly compare: readonly { readonly bucket: string; readonly key: string; readonly revision: number }[]
      readonly success: readonly ResolvedTxnOp[]
      readonly failure: readonly ResolvedTxnOp[]
      readonly fence: number | undefined
    }
  | { readonly type: 'call'; readonly name: string; readonly args: Value | undefined; readonly fence: number | undefined }
  | { readonly type: 'setFence'; readonly token: number }

/** Size limits checked by encodeCommand. */
export interface EncodeOptions {
  /**
   * The largest value (and `call` args), in bytes: the byte length of raw bytes, or the
   * MessagePack size of a JSON value. Larger ones are refused with TOO_LARGE.
   * @default 1048576 (1 MiB)
   */
  readonly maxValueSize?: number | undefined
  /**
   * The largest encoded command, in bytes (matters for txns of many values).
   * @default 4194304 (4 MiB)
   */
  readonly maxCommandSize?: number | undefined
}

/**
 * The one MessagePack configuration of the state machine. `useRecords: false` keeps the encoding
 * stateless (record structures would make bytes depend on what was encoded before);
 * `copyBuffers` makes decoded bytes independent of the source buffer.
 */
export const packr = new Packr({ useRecords: false, mapsAsObjects: true, copyBuffers: true, moreTypes: false })

function invalid(message: string): HoldfastError {
  return new HoldfastError('INVALID_ARGUMENT', message)
}

/** Unpaired UTF-16 surrogates: they have no UTF-8 form, so two such keys could collide once stored. */
const LONE_SURROGATE = /\p{Cs}/u

function checkName(what: string, s: unknown, maxBytes: number): string {
  if (typeof s !== 'string' || s.length === 0) throw invalid(`${what} must be a non-empty string`)
  if (LONE_SURROGATE.test(s)) throw invalid(`${what} is not well-formed Unicode (unpaired surrogate)`)
  const bytes = Buffer.byteLength(s, 'utf8')
  if (bytes > maxBytes) throw invalid(`${what} is ${bytes} bytes in UTF-8, over the limit of ${maxBytes}`)
  return s
}

/** Checks a key: a non-empty, well-formed string of at most MAX_KEY_BYTES UTF-8 bytes. */
export function checkKey(key: unknown): string {
  return checkName('key', key, MAX_KEY_BYTES)
}

/**
 * Checks a bucket name (undefined → DEFAULT_BUCKET): non-empty, well-formed, at most
 * MAX_BUCKET_BYTES UTF-8 bytes, no U+0000 (it separates bucket from key in stored keys).
 */
export function checkBucket(bucket: unknown): string {
  if (bucket === undefined) return DEFAULT_BUCKET
  const b = checkName('bucket', bucket, MAX_BUCKET_BYTES)
  if (b.includes('\0')) throw invalid('bucket must not contain U+0000')
  return b
}

/** Checks a revision for ifRevision/compare (a non-negative safe integer), undefined passes. */
function checkRevision(what: string, r: unknown): number | undefined {
  if (r === undefined || r === null) return undefined
  if (typeof r !== 'number' || !Number.isSafeInteger(r) || r < 0) throw invalid(`${what} must be a non-negative safe integer, got ${String(r)}`)
  return r
}

function checkToken(what: string, r: unknown): number | undefined {
  return checkRevision(what, r)
}

/**
 * Checks that `v` is a Value: raw bytes, or JSON-compatible (null, boolean, finite number, string,
 * array, plain object; nesting at most MAX_VALUE_DEPTH). Returns it unchanged.
 */
export function checkValue(v: unknown, what = 'value'): Value {
  if (v instanceof Uint8Array) return v
  checkJson(v, what, 0)
  return v as JsonValue
}

function checkJson(v: unknown, path: string, depth: number): void {
  if (depth > MAX_VALUE_DEPTH) throw invalid(`${path}: nested deeper than ${MAX_VALUE_DEPTH}`)
  switch (typeof v) {
    case 'string':
    case 'boolean':
      return
    case 'number':
      if (!Number.isFinite(v)) throw invalid(`${path}: ${v} is not JSON-compatible`)
      return
    case 'object': {
      if (v === null) return
      if (Array.isArray(v)) {
        for (let i = 0; i < v.length; i++) checkJson(v[i], `${path}[${i}]`, depth + 1)
        return
      }
      const proto: unknown = Object.getPrototypeOf(v)
      if (proto !== Object.prototype && proto !== null) {
        const kind = v instanceof Uint8Array ? 'bytes (allowed only as the whole value)' : `a ${(v as object).constructor?.name ?? 'non-plain'} object`
        throw invalid(`${path}: ${kind} is not JSON-compatible`)
      }
      for (const [k, x] of Object.entries(v)) checkJson(x, `${path}.${k}`, depth + 1)
      return
    }
    default:
      throw invalid(`${path}: ${typeof v} is not JSON-compatible`)
  }
}

function resolveOp(op: unknown, where: string): ResolvedTxnOp {
  if (typeof op !== 'object' || op === null) throw invalid(`${where} must be an object`)
  const o = op as Record<string, unknown>
  const bucket = checkBucket(o['bucket'])
  const key = checkKey(o['key'])
  const ifRevision = checkRevision(`${where}.ifRevision`, o['ifRevision'])
  if (o['type'] === 'put') return { type: 'put', bucket, key, value: checkValue(o['value'], `${where}.value`), ifRevision }
  if (o['type'] === 'delete') return { type: 'delete', bucket, key, ifRevision }
  throw invalid(`${where}.type must be 'put' or 'delete', got ${String(o['type'])}`)
}

function opList(ops: unknown, where: string): ResolvedTxnOp[] {
  if (ops === undefined) return []
  if (!Array.isArray(ops)) throw invalid(`${where} must be an array`)
  return ops.map((op, i) => resolveOp(op, `${where}[${i}]`))
}

/**
 * Validates a command (throws INVALID_ARGUMENT naming the bad field) and fills in defaults.
 * Sizes are not checked here; see encodeCommand.
 */
export function resolveCommand(cmd: Command): ResolvedCommand {
  if (typeof cmd !== 'object' || cmd === null) throw invalid('a command must be an object')
  const c = cmd as unknown as Record<string, unknown>
  switch (c['type']) {
    case 'put':
      return { type: 'put', bucket: checkBucket(c['bucket']), key: checkKey(c['key']), value: checkValue(c['value']), ifRevision: checkRevision('ifRevision', c['ifRevision']), fence: checkToken('fence', c['fence']) }
    case 'delete':
      return { type: 'delete', bucket: checkBucket(c['bucket']), key: checkKey(c['key']), ifRevision: checkRevision('ifRevision', c['ifRevision']), fence: checkToken('fence', c['fence']) }
    case 'txn': {
      const cmp = c['compare'] ?? []
      if (!Array.isArray(cmp)) throw invalid('compare must be an array')
      const compare = cmp.map((x: unknown, i) => {
        if (typeof x !== 'object' || x === null) throw invalid(`compare[${i}] must be an object`)
        const o = x as Record<string, unknown>
        const revision = checkRevision(`compare[${i}].revision`, o['revision'])
        if (revision === undefined) throw invalid(`compare[${i}].revision is required`)
        return { bucket: checkBucket(o['bucket']), key: checkKey(o['key']), revision }
      })
      const success = opList(c['success'], 'success')
      const failure = opList(c['failure'], 'failure')
      if (compare.length + success.length + failure.length > MAX_TXN_OPS) throw invalid(`a txn may carry at most ${MAX_TXN_OPS} compares and ops`)
      return { type: 'txn', compare, success, failure, fence: checkToken('fence', c['fence']) }
    }
    case 'call':
      return { type: 'call', name: checkName('command name', c['name'], MAX_COMMAND_NAME_BYTES), args: c['args'] === undefined ? undefined : checkValue(c['args'], 'args'), fence: checkToken('fence', c['fence']) }
    case 'setFence': {
      const token = checkToken('token', c['token'])
      if (token === undefined) throw invalid('setFence needs a token')
      return { type: 'setFence', token }
    }
    default:
      throw invalid(`unknown command type ${String(c['type'])}`)
  }
}

/** The size a value counts against maxValueSize. */
export function valueSize(v: Value): number {
  return v instanceof Uint8Array ? v.byteLength : packr.pack(v).byteLength
}

const nul = (x: number | undefined): number | null => (x === undefined ? null : x)
const wireOp = (op: ResolvedTxnOp): unknown[] =>
  op.type === 'put' ? ['p', op.bucket, op.key, op.value, nul(op.ifRevision)] : ['d', op.bucket, op.key, nul(op.ifRevision)]

/**
 * Validates and encodes a command for a normal entry's data. Throws INVALID_ARGUMENT for a
 * malformed command and TOO_LARGE for a value (or `call` args) over `maxValueSize` or a command
 * over `maxCommandSize`, so nothing oversized ever reaches the log.
 */
export function encodeCommand(cmd: Command, options: EncodeOptions = {}): Uint8Array {
  const maxValue = options.maxValueSize ?? DEFAULT_MAX_VALUE_SIZE
  const maxCommand = options.maxCommandSize ?? DEFAULT_MAX_COMMAND_SIZE
  const c = resolveCommand(cmd)
  const sized = (v: Value | undefined, what: string): void => {
    if (v === undefined) return
    const n = valueSize(v)
    if (n > maxValue) throw new HoldfastError('TOO_LARGE', `${what} is ${n} bytes, over the limit of ${maxValue} (maxValueSize)`)
  }
  let wire: unknown[]
  switch (c.type) {
    case 'put':
      sized(c.value, `value of '${c.key}'`)
      wire = ['p', c.bucket, c.key, c.value, nul(c.ifRevision), nul(c.fence)]
      break
    case 'delete':
      wire = ['d', c.bucket, c.key, nul(c.ifRevision), nul(c.fence)]
      break
    case 'txn':
      for (const op of [...c.success, ...c.failure]) if (op.type === 'put') sized(op.value, `value of '${op.key}'`)
      wire = ['t', c.compare.map((x) => [x.bucket, x.key, x.revision]), c.success.map(wireOp), c.failure.map(wireOp), nul(c.fence)]
      break
    case 'call':
      sized(c.args, `args of '${c.name}'`)
      wire = c.args === undefined ? ['c', c.name, nul(c.fence)] : ['c', c.name, nul(c.fence), c.args]
      break
    case 'setFence':
      wire = ['f', c.token]
      break
  }
  const body = packr.pack(wire)
  if (body.byteLength + 1 > maxCommand) throw new HoldfastError('TOO_LARGE', `the command is ${body.byteLength + 1} bytes, over the limit of ${maxCommand} (maxCommandSize)`)
  const out = new Uint8Array(body.byteLength + 1)
  out[0] = COMMAND_FORMAT
  out.set(body, 1)
  return out
}

function undecodable(message: string, cause?: unknown): HoldfastError {
  return new HoldfastError('DECODE_ERROR', `malformed command: ${message}`, { cause })
}

/** Raw bytes decode as a Buffer; hand out plain Uint8Arrays. */
function fromWire(v: unknown): unknown {
  return v instanceof Uint8Array && v.constructor !== Uint8Array ? new Uint8Array(v.buffer, v.byteOffset, v.byteLength) : v
}

function wireToOp(x: unknown): TxnOp {
  if (!Array.isArray(x)) throw undecodable('a txn op is not an array')
  if (x[0] === 'p') return { type: 'put', bucket: x[1], key: x[2], value: fromWire(x[3]) as Value, ifRevision: x[4] ?? undefined }
  if (x[0] === 'd') return { type: 'delete', bucket: x[1], key: x[2], ifRevision: x[3] ?? undefined }
  throw undecodable(`unknown txn op tag ${String(x[0])}`)
}

/**
 * Decodes and validates a command from a normal entry's data. Throws DECODE_ERROR (or
 * INVALID_ARGUMENT for a well-formed but invalid command); never returns a partial command.
 * Size limits are not applied: a command in the log was accepted by its encoder.
 */
export function decodeCommand(data: Uint8Array): ResolvedCommand {
  if (data.byteLength < 2) throw undecodable(`${data.byteLength} bytes`)
  if (data[0] !== COMMAND_FORMAT) throw undecodable(`format ${data[0]} is not supported (this build reads format ${COMMAND_FORMAT})`)
  let w: unknown
  try {
    w = packr.unpack(data.subarray(1))
  } catch (err) {
    throw undecodable(err instanceof Error ? err.message : String(err), err)
  }
  if (!Array.isArray(w)) throw undecodable('not an array')
  let cmd: Command
  switch (w[0]) {
    case 'p':
      cmd = { type: 'put', bucket: w[1], key: w[2], value: fromWire(w[3]) as Value, ifRevision: w[4] ?? undefined, fence: w[5] ?? undefined }
      break
    case 'd':
      cmd = { type: 'delete', bucket: w[1], key: w[2], ifRevision: w[3] ?? undefined, fence: w[4] ?? undefined }
      break
    case 't': {
      const [, cmp, success, failure, fence] = w as unknown[]
      if (!Array.isArray(cmp) || !Array.isArray(success) || !Array.isArray(failure)) throw undecodable('txn parts are not arrays')
      const compare = cmp.map((x: unknown): Compare => {
        if (!Array.isArray(x)) throw undecodable('a txn compare is not an array')
        return { bucket: x[0], key: x[1], revision: x[2] }
      })
      cmd = { type: 'txn', compare, success: success.map(wireToOp), failure: failure.map(wireToOp), fence: (fence as number | null) ?? undefined }
      break
    }
    case 'c':
      cmd = { type: 'call', name: w[1], fence: w[2] ?? undefined, args: w.length > 3 ? (fromWire(w[3]) as Value) : undefined }
      break
    case 'f':
      cmd = { type: 'setFence', token: w[1] }
      break
    default:
      throw undecodable(`unknown tag ${String(w[0])}`)
  }
  return resolveCommand(cmd)
}
