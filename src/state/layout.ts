/**
 * How the key-value state machine lays its data out in LMDB. Every sub-database uses binary keys
 * and binary values (LMDB compares keys bytewise), encoded here:
 *
 * - `<prefix>.data.<slot>`: key = UTF-8(bucket) 0x00 UTF-8(key); value = a value record whose
 *   body is MessagePack [createRevision, modRevision, version, value]. Bucket names contain no
 *   U+0000, so the first 0x00 ends the bucket; keys sort by bucket, then by the key's UTF-8 bytes
 *   (= code point order).
 * - `<prefix>.changes.<slot>`: key = revision (u64 BE) | seq (u32 BE), the seq-th change made by
 *   the entry at that index; value = a change record whose body is MessagePack [bucket, key,
 *   'p'|'d', createRevision, version, prevRevision, value?].
 * - `<prefix>.meta`: key 'state' = the StoredState record (layout version byte, CRC-32 of the
 *   body, MessagePack body). Checked at open and by snapshot(); it is rewritten by every apply.
 *
 * Value and change records (the data that outlives the Raft log once it is compacted) are
 *
 * ```
 * offset 0    u8   record version (RECORD_VERSION)
 * offset 1    u8   kind (RecordKind)
 * offset 2    MessagePack body
 * offset n-4  u32  CRC-32 (BE) of the stored key followed by bytes [0, n-4)
 * ```
 *
 * The checksum covers the key too, so a record read under another key (a damaged key, or a
 * record moved between keys) fails it like a damaged value. Every read verifies it before
 * decoding: a damaged record gives CORRUPT_DATA, never a wrong value. Snapshots carry these
 * records as stored (so they stay checksummed end to end) and restore verifies each one.
 *
 * There are two slots (0 and 1) of data+changes; StoredState.slot names the live one. A restore
 * fills the other slot and switches `slot` in one transaction (see KvStateMachine.restore).
 */
import { crc32 } from 'node:zlib'
import { HoldfastError } from '../errors.js'
import { packr } from './commands.js'
import type { Value } from './commands.js'

/**
 * The version of the layout (record formats and meaning of sub-databases) this code reads and
 * writes; stored in the state record and in snapshot headers. 1 (pre-release) had value and change
 * records without checksums: such data is refused, not converted.
 */
export const KV_LAYOUT_VERSION = 2

/** The version of the value and change record encoding. Readers refuse any other. */
export const RECORD_VERSION = 1

/** What a record holds; checksummed, so a change record cannot be read as a value or vice versa. */
export const RecordKind = {
  value: 1,
  change: 2,
} as const
export type RecordKind = (typeof RecordKind)[keyof typeof RecordKind]

/** Version and kind bytes before the body. */
const RECORD_HEAD = 2
/** The trailing CRC-32. */
const RECORD_CRC = 4

const TWO_32 = 0x1_0000_0000

/** The persistent scalar state, rewritten by every apply transaction. */
export interface StoredState {
  /** Which data/changes slot is live. */
  readonly slot: 0 | 1
  /** Bumped by every restore; names the data generation for logs and snapshots. */
  readonly generation: number
  /** The index of the last applied entry. */
  readonly applied: number
  /** The current fencing token (0 before any setFence). */
  readonly fence: number
  /** The lowest revision whose changes are still kept: changes of revisions below it were compacted. */
  readonly retained: number
}

export const INITIAL_STATE: StoredState = { slot: 0, generation: 0, applied: 0, fence: 0, retained: 1 }

/** Names a record in error messages; a function where building the name would cost on every read. */
export type Where = string | (() => string)

function corrupt(where: Where, what: string, cause?: unknown): HoldfastError {
  return new HoldfastError('CORRUPT_DATA', `${typeof where === 'function' ? where() : where}: ${what}`, { cause })
}

/** Decodes MessagePack filling bytes [start, end) exactly (by range, not a subarray: msgpackr is faster so). */
function unpack(bytes: Uint8Array, where: Where, start = 0, end = bytes.byteLength): unknown {
  try {
    return packr.unpack(bytes, { start, end })
  } catch (err) {
    throw corrupt(where, `undecodable record (${err instanceof Error ? err.message : String(err)})`, err)
  }
}

const isCount = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0

export function encodeState(s: StoredState): Uint8Array {
  const body = packr.pack([s.slot, s.generation, s.applied, s.fence, s.retained])
  const out = Buffer.allocUnsafe(5 + body.byteLength)
  out[0] = KV_LAYOUT_VERSION
  out.set(body, 5)
  out.writeUInt32BE(crc32(body), 1)
  return out
}

export function decodeState(bytes: Uint8Array, where: string): StoredState {
  if (bytes.byteLength < 6) throw corrupt(where, `state record is ${bytes.byteLength} bytes`)
  if (bytes[0] !== KV_LAYOUT_VERSION) {
    const why = bytes[0]! < KV_LAYOUT_VERSION ? 'written by an older holdfast whose value records carry no checksums' : 'was it written by a newer holdfast?'
    throw corrupt(where, `state machine layout version ${bytes[0]} is not supported (this build reads ${KV_LAYOUT_VERSION}); ${why}`)
  }
  const body = bytes.subarray(5)
  if (Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).readUInt32BE(1) !== crc32(body)) throw corrupt(where, 'state record fails its checksum')
  const v = unpack(body, where)
  if (!Array.isArray(v) || v.length !== 5 || (v[0] !== 0 && v[0] !== 1) || !v.slice(1).every(isCount)) throw corrupt(where, 'malformed state record')
  return { slot: v[0], generation: v[1], applied: v[2], fence: v[3], retained: v[4] }
}

/** The stored key of (bucket, key). Both must already be validated. */
export function dataKey(bucket: string, key: string): Buffer {
  const b = Buffer.byteLength(bucket, 'utf8')
  const out = Buffer.allocUnsafe(b + 1 + Buffer.byteLength(key, 'utf8'))
  out.write(bucket, 0, 'utf8')
  out[b] = 0
  out.write(key, b + 1, 'utf8')
  return out
}

/** The stored-key prefix of every key of `bucket` (the bucket's keys are [prefix, prefix+0xFF...)). */
export function bucketPrefix(bucket: string): Buffer {
  return dataKey(bucket, '')
}

export function splitDataKey(k: Uint8Array, where: Where): { bucket: string; key: string } {
  const b = Buffer.from(k.buffer, k.byteOffset, k.byteLength)
  const sep = b.indexOf(0)
  if (sep <= 0 || sep === b.byteLength - 1) throw corrupt(where, 'malformed stored key')
  return { bucket: b.toString('utf8', 0, sep), key: b.toString('utf8', sep + 1) }
}

/** What is stored per key. */
export interface StoredValue {
  readonly createRevision: number
  readonly modRevision: number
  /** How many times the key was written since it was (re)created: 1 for a new key. */
  readonly version: number
  readonly value: Value
}

/** Frames a MessagePack body as a record of `kind` stored under `key` (see the header comment). */
function encodeRecord(key: Uint8Array, kind: RecordKind, body: Uint8Array): Buffer {
  const n = RECORD_HEAD + body.byteLength + RECORD_CRC
  // Pooled and uninitialised: every byte is written below.
  const out = Buffer.allocUnsafe(n)
  out[0] = RECORD_VERSION
  out[1] = kind
  out.set(body, RECORD_HEAD)
  out.writeUInt32BE(crc32(out.subarray(0, n - RECORD_CRC), crc32(key)), n - RECORD_CRC)
  return out
}

/**
 * Verifies a stored record of `kind` under `key`: length, checksum, version, kind. Its body is
 * then bytes [RECORD_HEAD, length - RECORD_CRC). The checksum is checked first, so that a version
 * or kind byte changed by a fault is reported as damage, not as a record of another version.
 */
export function verifyRecord(key: Uint8Array, bytes: Uint8Array, kind: RecordKind, where: Where): void {
  const n = bytes.byteLength
  if (n < RECORD_HEAD + 1 + RECORD_CRC) throw corrupt(where, `${recordName(kind)} is ${n} bytes, too short`)
  // Read by hand: a DataView per record would cost more than the rest of the check.
  const stored = ((bytes[n - 4]! << 24) | (bytes[n - 3]! << 16) | (bytes[n - 2]! << 8) | bytes[n - 1]!) >>> 0
  if (stored !== crc32(bytes.subarray(0, n - RECORD_CRC), crc32(key))) throw corrupt(where, `${recordName(kind)} fails its checksum`)
  if (bytes[0] !== RECORD_VERSION) throw corrupt(where, `${recordName(kind)} version ${bytes[0]} is not supported (this build reads version ${RECORD_VERSION})`)
  if (bytes[1] !== kind) throw corrupt(where, `record kind ${bytes[1]} where a ${recordName(kind)} (kind ${kind}) was expected`)
}

function recordName(kind: RecordKind): string {
  return kind === RecordKind.value ? 'value record' : 'change record'
}

/** Verifies a record (see verifyRecord) and decodes its body. */
function unpackRecord(key: Uint8Array, bytes: Uint8Array, kind: RecordKind, where: Where): unknown {
  verifyRecord(key, bytes, kind, where)
  return unpack(bytes, where, RECORD_HEAD, bytes.byteLength - RECORD_CRC)
}

/** The stored record of a key's value; `key` is its dataKey. */
export function encodeValue(key: Uint8Array, v: StoredValue): Buffer {
  return encodeRecord(key, RecordKind.value, packr.pack([v.createRevision, v.modRevision, v.version, v.value]))
}

/** Decoded bytes come out of msgpackr as Buffers; callers get plain Uint8Arrays. */
export function plainValue(v: unknown): Value {
  return v instanceof Uint8Array && v.constructor !== Uint8Array ? new Uint8Array(v.buffer, v.byteOffset, v.byteLength) : (v as Value)
}

/** Verifies and decodes the value record stored under `key` (its dataKey). */
export function decodeValue(key: Uint8Array, bytes: Uint8Array, where: Where): StoredValue {
  const v = unpackRecord(key, bytes, RecordKind.value, where)
  if (!Array.isArray(v) || v.length !== 4 || !isCount(v[0]) || !isCount(v[1]) || !isCount(v[2])) throw corrupt(where, 'malformed value record')
  return { createRevision: v[0], modRevision: v[1], version: v[2], value: plainValue(v[3]) }
}

export function changeKey(revision: number, seq: number): Buffer {
  const out = Buffer.allocUnsafe(12)
  out.writeUInt32BE(Math.floor(revision / TWO_32), 0)
  out.writeUInt32BE(revision % TWO_32, 4)
  out.writeUInt32BE(seq, 8)
  return out
}

export function splitChangeKey(k: Uint8Array, where: Where): { revision: number; seq: number } {
  if (k.byteLength !== 12) throw corrupt(where, 'malformed change key')
  const b = Buffer.from(k.buffer, k.byteOffset, k.byteLength)
  return { revision: b.readUInt32BE(0) * TWO_32 + b.readUInt32BE(4), seq: b.readUInt32BE(8) }
}

/**
 * One change to one key, as recorded in the change history and delivered to watchers. A txn or
 * command makes several changes at the same `revision`, numbered by `seq` from 0.
 */
export interface Change {
  /** The index of the entry that made the change (the key's new modRevision, for a put). */
  readonly revision: number
  /** The change's position among the changes of its revision, from 0. */
  readonly seq: number
  readonly type: 'put' | 'delete'
  readonly bucket: string
  readonly key: string
  /** The new value (undefined for a delete). */
  readonly value: Value | undefined
  /** The key's createRevision after a put (0 for a delete). */
  readonly createRevision: number
  /** The key's version after a put (0 for a delete). */
  readonly version: number
  /** The key's modRevision before the change (0 if it did not exist). */
  readonly prevRevision: number
}

/** The stored record of a change; `key` is its changeKey. */
export function encodeChange(key: Uint8Array, c: Change): Buffer {
  const base = [c.bucket, c.key, c.type === 'put' ? 'p' : 'd', c.createRevision, c.version, c.prevRevision]
  return encodeRecord(key, RecordKind.change, packr.pack(c.type === 'put' ? [...base, c.value] : base))
}

/** Names a change in CORRUPT_DATA messages, built only when one is thrown. */
function changeWhere(where: string, revision: number, seq: number): () => string {
  return () => `${where} revision ${revision} change ${seq}`
}

/** Verifies and decodes the change record stored under `k`; `where` names the sub-database. */
export function decodeChange(k: Uint8Array, bytes: Uint8Array, where: string): Change {
  const { revision, seq } = splitChangeKey(k, where)
  const at = changeWhere(where, revision, seq)
  const v = unpackRecord(k, bytes, RecordKind.change, at)
  if (!Array.isArray(v) || typeof v[0] !== 'string' || typeof v[1] !== 'string' || (v[2] !== 'p' && v[2] !== 'd') || !isCount(v[3]) || !isCount(v[4]) || !isCount(v[5])) {
    throw corrupt(at, 'malformed change record')
  }
  const put = v[2] === 'p'
  return { revision, seq, type: put ? 'put' : 'delete', bucket: v[0], key: v[1], value: put ? plainValue(v[6]) : undefined, createRevision: v[3], version: v[4], prevRevision: v[5] }
}
