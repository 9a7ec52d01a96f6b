/**
 * Reads and writes of the key-value data: the read helpers behind KvStateMachine.get/list, and
 * EntryTx, the write context of one applied entry (also the `tx` of command handlers).
 */
import type { Database } from 'lmdb'
import { HoldfastError } from '../errors.js'
import { checkBucket, checkKey, checkValue } from './commands.js'
import type { Value } from './commands.js'
import { bucketPrefix, changeKey, dataKey, decodeValue, encodeChange, encodeValue, splitDataKey } from './layout.js'
import type { Change } from './layout.js'

type Db = Database<Uint8Array, Uint8Array>

/** A sub-database with its name for error messages: the data file and sub-database name. */
export interface Store {
  readonly db: Db
  readonly name: string
}

/** A key with its value and revisions. */
export interface KeyValue {
  readonly bucket: string
  readonly key: string
  readonly value: Value
  /** The index of the entry that created the key (since it last did not exist). */
  readonly createRevision: number
  /** The index of the entry that last wrote the key. */
  readonly modRevision: number
  /** Writes since creation: 1 for a new key. */
  readonly version: number
}

/** A range of keys within one bucket. `prefix`, `start` and `end` combine (intersect). */
export interface ListOptions {
  /** @default 'default' */
  readonly bucket?: string | undefined
  /** Only keys starting with this. @default '' */
  readonly prefix?: string | undefined
  /** Only keys >= start. */
  readonly start?: string | undefined
  /** Only keys < end. */
  readonly end?: string | undefined
  /** At most this many keys. @default unlimited */
  readonly limit?: number | undefined
  /** Descending key order (the limit then takes the last keys). @default false */
  readonly reverse?: boolean | undefined
}

/** The result of a put. */
export interface PutResult {
  /** The key's new modRevision: the index of the entry. */
  readonly revision: number
  readonly createRevision: number
  readonly version: number
  /** The key's modRevision before the put (0 if it did not exist). */
  readonly prevRevision: number
}

/** The result of a delete. */
export interface DeleteResult {
  readonly revision: number
  /** False when the key did not exist (nothing changed). */
  readonly deleted: boolean
  /** The key's modRevision before the delete (0 if it did not exist). */
  readonly prevRevision: number
}

/**
 * The transaction a command handler runs in: reads see the state as applied so far, including
 * the handler's own writes. Everything is synchronous. Writes are not size-limited.
 */
export interface CommandTx {
  /** The index of the entry being applied: the modRevision of every write. */
  readonly revision: number
  /** The current fencing token. */
  readonly fence: number
  get(key: string, options?: { readonly bucket?: string | undefined }): KeyValue | undefined
  list(options?: ListOptions): KeyValue[]
  /** Throws REVISION_MISMATCH when `ifRevision` does not match (0: the key must not exist). */
  put(key: string, value: Value, options?: { readonly bucket?: string | undefined; readonly ifRevision?: number | undefined }): PutResult
  /** Throws REVISION_MISMATCH when `ifRevision` does not match. */
  delete(key: string, options?: { readonly bucket?: string | undefined; readonly ifRevision?: number | undefined }): DeleteResult
}

/** Names a stored key in CORRUPT_DATA messages; built only when one is thrown. */
function whereKey(store: Store, bucket: string, key: string): () => string {
  return () => `${store.name} key '${bucket}'/'${key}'`
}

/** Reads a validated key. Throws CORRUPT_DATA when its record fails verification (see layout.ts). */
export function readResolved(store: Store, bucket: string, key: string): KeyValue | undefined {
  const k = dataKey(bucket, key)
  const bytes = store.db.get(k)
  if (bytes === undefined) return undefined
  return { bucket, key, ...decodeValue(k, bytes, whereKey(store, bucket, key)) }
}

export function readKey(store: Store, bucket: string, key: string): KeyValue | undefined {
  return readResolved(store, bucket, checkKey(key))
}

function rangeString(what: string, s: unknown): string | undefined {
  if (s === undefined) return undefined
  if (typeof s !== 'string' || /\p{Cs}/u.test(s)) throw new HoldfastError('INVALID_ARGUMENT', `${what} must be a well-formed string`)
  return s
}

/** Lists a range of one bucket (see ListOptions). Throws CORRUPT_DATA at the first record failing verification. */
export function listRange(store: Store, options: ListOptions): KeyValue[] {
  const bucket = checkBucket(options.bucket)
  const prefix = rangeString('prefix', options.prefix) ?? ''
  const start = rangeString('start', options.start)
  const end = rangeString('end', options.end)
  const limit = options.limit
  if (limit !== undefined && (!Number.isSafeInteger(limit) || limit < 0)) throw new HoldfastError('INVALID_ARGUMENT', `limit must be a non-negative integer, got ${limit}`)
  if (limit === 0) return []
  const bp = bucketPrefix(bucket)
  let lo: Buffer = Buffer.concat([bp, Buffer.from(prefix, 'utf8')])
  // 0xFF never occurs in UTF-8, so it bounds every key with the prefix; bucket+0x01 bounds the bucket.
  let hi: Buffer = prefix === '' ? Buffer.concat([bp.subarray(0, bp.byteLength - 1), Buffer.of(1)]) : Buffer.concat([lo, Buffer.of(0xff)])
  if (start !== undefined) {
    const s = Buffer.concat([bp, Buffer.from(start, 'utf8')])
    if (Buffer.compare(s, lo) > 0) lo = s
  }
  if (end !== undefined) {
    const e = Buffer.concat([bp, Buffer.from(end, 'utf8')])
    if (Buffer.compare(e, hi) < 0) hi = e
  }
  if (Buffer.compare(lo, hi) >= 0) return []
  const db = store.db
  const range = options.reverse
    ? db.getRange({ start: hi, end: lo, reverse: true, exclusiveStart: true, inclusiveEnd: true, limit })
    : db.getRange({ start: lo, end: hi, limit })
  const out: KeyValue[] = []
  const where = `${store.name} data of bucket '${bucket}'`
  for (const { key, value } of range) {
    const k = splitDataKey(key, where)
    out.push({ bucket, key: k.key, ...decodeValue(key, value, whereKey(store, bucket, k.key)) })
  }
  return out
}

/**
 * The writes of one entry at revision `revision`. Every write also appends a change record.
 * Checks come before writes, so a failed single put/delete writes nothing. LMDB failures and
 * CORRUPT_DATA from reads are kept in `storageFailure` so that a handler catching them cannot hide
 * them: they are faults of this replica's storage, not outcomes every replica would share, so
 * they must abort the apply batch instead of failing (only here) the entry that met them.
 */
export class EntryTx implements CommandTx {
  readonly changes: Change[] = []
  storageFailure: unknown
  readonly revision: number
  readonly fence: number
  readonly #data: Store
  readonly #changeDb: Db
  #open = true

  constructor(data: Store, changeDb: Db, revision: number, fence: number) {
    this.#data = data
    this.#changeDb = changeDb
    this.revision = revision
    this.fence = fence
  }

  /** Ends the tx: a handler that kept it cannot use it after its entry. */
  close(): void {
    this.#open = false
  }

  #check(): void {
    if (!this.#open) throw new HoldfastError('CONTRACT_VIOLATION', 'a command tx was used after its command returned')
  }

  #lmdb<T>(fn: () => T): T {
    try {
      return fn()
    } catch (err) {
      if (!(err instanceof HoldfastError) || err.code === 'CORRUPT_DATA') this.storageFailure ??= err
      throw err
    }
  }

  get(key: string, options: { readonly bucket?: string | undefined } = {}): KeyValue | undefined {
    this.#check()
    return this.getResolved(checkBucket(options.bucket), checkKey(key))
  }

  getResolved(bucket: string, key: string): KeyValue | undefined {
    return this.#lmdb(() => readResolved(this.#data, bucket, key))
  }

  list(options: ListOptions = {}): KeyValue[] {
    this.#check()
    return this.#lmdb(() => listRange(this.#data, options))
  }

  put(key: string, value: Value, options: { readonly bucket?: string | undefined; readonly ifRevision?: number | undefined } = {}): PutResult {
    this.#check()
    return this.putResolved(checkBucket(options.bucket), checkKey(key), checkValue(value), checkIfRevision(options.ifRevision))
  }

  delete(key: string, options: { readonly bucket?: string | undefined; readonly ifRevision?: number | undefined } = {}): DeleteResult {
    this.#check()
    return this.deleteResolved(checkBucket(options.bucket), checkKey(key), checkIfRevision(options.ifRevision))
  }

  putResolved(bucket: string, key: string, value: Value, ifRevision: number | undefined): PutResult {
    const prev = this.getResolved(bucket, key)
    const prevRevision = prev?.modRevision ?? 0
    if (ifRevision !== undefined && ifRevision !== prevRevision) throw mismatch(bucket, key, ifRevision, prevRevision)
    const createRevision = prev?.createRevision ?? this.revision
    const version = (prev?.version ?? 0) + 1
    const change: Change = { revision: this.revision, seq: this.changes.length, type: 'put', bucket, key, value, createRevision, version, prevRevision }
    this.#lmdb(() => {
      const dk = dataKey(bucket, key)
      const ck = changeKey(this.revision, change.seq)
      this.#data.db.putSync(dk, encodeValue(dk, { createRevision, modRevision: this.revision, version, value }))
      this.#changeDb.putSync(ck, encodeChange(ck, change))
    })
    this.changes.push(change)
    return { revision: this.revision, createRevision, version, prevRevision }
  }

  deleteResolved(bucket: string, key: string, ifRevision: number | undefined): DeleteResult {
    const prev = this.getResolved(bucket, key)
    const prevRevision = prev?.modRevision ?? 0
    if (ifRevision !== undefined && ifRevision !== prevRevision) throw mismatch(bucket, key, ifRevision, prevRevision)
    if (prev === undefined) return { revision: this.revision, deleted: false, prevRevision }
    const change: Change = { revision: this.revision, seq: this.changes.length, type: 'delete', bucket, key, value: undefined, createRevision: 0, version: 0, prevRevision }
    this.#lmdb(() => {
      const ck = changeKey(this.revision, change.seq)
      this.#data.db.removeSync(dataKey(bucket, key))
      this.#changeDb.putSync(ck, encodeChange(ck, change))
    })
    this.changes.push(change)
    return { revision: this.revision, deleted: true, prevRevision }
  }
}

function checkIfRevision(r: unknown): number | undefined {
  if (r === undefined) return undefined
  if (typeof r !== 'number' || !Number.isSafeInteger(r) || r < 0) throw new HoldfastError('INVALID_ARGUMENT', `ifRevision must be a non-negative safe integer, got ${String(r)}`)
  return r
}

function mismatch(bucket: string, key: string, expected: number, found: number): HoldfastError {
  const exp = expected === 0 ? '0 (absent)' : String(expected)
  const got = found === 0 ? 'none (absent)' : String(found)
  return new HoldfastError('REVISION_MISMATCH', `'${bucket}'/'${key}': expected revision ${exp}, found ${got}`)
}
