/**
 * The on-disk encoding of log storage records (src/storage/lmdb.ts).
 *
 * Every record is `header (8 bytes) | body`:
 *
 * ```
 * offset 0  u8   record version (RECORD_VERSION)
 * offset 1  u8   kind (RecordKind)
 * offset 2  u16  reserved, 0
 * offset 4  u32  CRC-32 of bytes [0, 4) followed by the body
 * ```
 *
 * Integers are big-endian; u64 values are written as two u32 halves and must be safe integers.
 * Decoding never returns wrong data: a short buffer, an unknown version or kind, a checksum
 * mismatch or a body that does not parse exactly gives HoldfastError('CORRUPT_DATA') naming `where`.
 */
import { crc32 } from 'node:zlib'
import { HoldfastError } from '../errors.js'
import type { Entry, EntryType, HardState, SnapshotMeta } from '../core/types.js'

/** The version of the record encoding written by this code. Readers refuse any other. */
export const RECORD_VERSION = 1

/** What a record holds; part of the checksummed header, so a record cannot be read as another kind. */
export const RecordKind = {
  entry: 1,
  hardState: 2,
  snapshotMeta: 3,
  format: 4,
} as const
export type RecordKind = (typeof RecordKind)[keyof typeof RecordKind]

const HEADER_BYTES = 8
const TWO_32 = 0x1_0000_0000
const ENTRY_TYPES: readonly EntryType[] = ['normal', 'membership']
const utf8Decoder = new TextDecoder('utf-8', { fatal: true })

/** Names a record in error messages; a function when building the name would cost on every read. */
export type Where = string | (() => string)

function corrupt(where: Where, what: string): HoldfastError {
  return new HoldfastError('CORRUPT_DATA', `${typeof where === 'function' ? where() : where}: ${what}`)
}

/**
 * Writes the fields of one record into a buffer of exactly its size (Node's pooled allocation:
 * records are small and many); `finish` writes the header and checksum.
 */
class Writer {
  readonly #buf: Buffer
  #pos = HEADER_BYTES

  constructor(bodyBytes: number) {
    this.#buf = Buffer.allocUnsafe(HEADER_BYTES + bodyBytes)
  }

  u8(v: number): void {
    this.#pos = this.#buf.writeUInt8(v, this.#pos)
  }

  u32(v: number): void {
    this.#pos = this.#buf.writeUInt32BE(v, this.#pos)
  }

  u64(v: number, field: string): void {
    if (!Number.isSafeInteger(v) || v < 0) {
      throw new HoldfastError('INVALID_ARGUMENT', `${field} must be a non-negative safe integer, got ${v}`)
    }
    this.#buf.writeUInt32BE(Math.floor(v / TWO_32), this.#pos)
    this.#pos = this.#buf.writeUInt32BE(v % TWO_32, this.#pos + 4)
  }

  bytes(b: Uint8Array): void {
    this.#buf.set(b, this.#pos)
    this.#pos += b.byteLength
  }

  /** A string as u32 byte length + UTF-8; its size is stringBytes(s). */
  string(s: string): void {
    const n = this.#buf.write(s, this.#pos + 4, 'utf8')
    this.u32(n)
    this.#pos += n
  }

  finish(kind: RecordKind): Uint8Array {
    // Every byte must be written: the buffer comes uninitialised from the pool.
    if (this.#pos !== this.#buf.byteLength) throw new Error(`record size mismatch: wrote ${this.#pos} of ${this.#buf.byteLength} bytes`)
    const out = this.#buf
    out[0] = RECORD_VERSION
    out[1] = kind
    out[2] = 0
    out[3] = 0
    out.writeUInt32BE(checksum(out), 4)
    return out
  }
}

function stringBytes(s: string): number {
  return 4 + Buffer.byteLength(s, 'utf8')
}

function checksum(record: Uint8Array): number {
  return crc32(record.subarray(HEADER_BYTES), crc32(record.subarray(0, 4)))
}

/** Reads fields of one verified record body; every read is bounds-checked. */
class Reader {
  readonly #buf: Uint8Array
  readonly #view: DataView
  readonly #where: Where
  #pos = HEADER_BYTES

  constructor(buf: Uint8Array, where: Where) {
    this.#buf = buf
    this.#view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
    this.#where = where
  }

  #need(n: number): void {
    if (this.#pos + n > this.#buf.byteLength) throw corrupt(this.#where, 'record body is truncated')
  }

  u8(): number {
    this.#need(1)
    return this.#view.getUint8(this.#pos++)
  }

  u32(): number {
    this.#need(4)
    const v = this.#view.getUint32(this.#pos)
    this.#pos += 4
    return v
  }

  u64(): number {
    this.#need(8)
    const hi = this.#view.getUint32(this.#pos)
    const lo = this.#view.getUint32(this.#pos + 4)
    this.#pos += 8
    const v = hi * TWO_32 + lo
    if (!Number.isSafeInteger(v)) throw corrupt(this.#where, 'integer field out of range')
    return v
  }

  /** The rest of the record, as a view (the caller owns `buf`). */
  rest(): Uint8Array {
    const out = this.#buf.subarray(this.#pos)
    this.#pos = this.#buf.byteLength
    return out
  }

  string(): string {
    const n = this.u32()
    this.#need(n)
    const bytes = this.#buf.subarray(this.#pos, this.#pos + n)
    this.#pos += n
    try {
      return utf8Decoder.decode(bytes)
    } catch {
      throw corrupt(this.#where, 'string field is not valid UTF-8')
    }
  }

  strings(): string[] {
    const n = this.u32()
    // Each string needs at least its 4-byte length: refuse counts the record cannot hold.
    this.#need(n * 4)
    const out: string[] = []
    for (let i = 0; i < n; i++) out.push(this.string())
    return out
  }

  end(): void {
    if (this.#pos !== this.#buf.byteLength) throw corrupt(this.#where, 'record has trailing bytes')
  }
}

/** Verifies header and checksum, returning a reader positioned at the body. */
function open(buf: Uint8Array | undefined, kind: RecordKind, where: Where): Reader {
  if (buf === undefined) throw corrupt(where, 'record is missing')
  if (buf.byteLength < HEADER_BYTES) throw corrupt(where, `record is ${buf.byteLength} bytes, shorter than its header`)
  if (buf[0] !== RECORD_VERSION) throw corrupt(where, `record version ${buf[0]} is not supported (this build reads version ${RECORD_VERSION})`)
  const stored = new DataView(buf.buffer, buf.byteOffset, buf.byteLength).getUint32(4)
  if (stored !== checksum(buf)) throw corrupt(where, 'record checksum mismatch')
  if (buf[1] !== kind) throw corrupt(where, `record kind ${buf[1]} where kind ${kind} was expected`)
  return new Reader(buf, where)
}

export function encodeEntry(e: Entry): Uint8Array {
  const w = new Writer(17 + e.data.byteLength)
  w.u64(e.index, 'entry.index')
  w.u64(e.term, 'entry.term')
  const type = ENTRY_TYPES.indexOf(e.type)
  if (type < 0) throw new HoldfastError('INVALID_ARGUMENT', `unknown entry type ${String(e.type)}`)
  w.u8(type)
  w.bytes(e.data)
  return w.finish(RecordKind.entry)
}

/**
 * Decodes an entry record. `data` is a view into `buf`, so `buf` must be a private copy.
 * `index`, when given, must match the index stored in the record (the key it was found under).
 */
export function decodeEntry(buf: Uint8Array | undefined, where: Where, index?: number): Entry {
  const r = open(buf, RecordKind.entry, where)
  const storedIndex = r.u64()
  const term = r.u64()
  const type = ENTRY_TYPES[r.u8()]
  if (type === undefined) throw corrupt(where, 'unknown entry type')
  if (index !== undefined && storedIndex !== index) throw corrupt(where, `record holds entry ${storedIndex}`)
  const data = r.rest()
  // A plain Uint8Array view, so entries read back compare equal to the ones written.
  return { index: storedIndex, term, type, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) }
}

export function encodeHardState(hs: HardState): Uint8Array {
  const w = new Writer(17 + (hs.vote === null ? 0 : stringBytes(hs.vote)))
  w.u64(hs.term, 'hardState.term')
  w.u64(hs.commit, 'hardState.commit')
  w.u8(hs.vote === null ? 0 : 1)
  if (hs.vote !== null) w.string(hs.vote)
  return w.finish(RecordKind.hardState)
}

export function decodeHardState(buf: Uint8Array | undefined, where: Where): HardState {
  const r = open(buf, RecordKind.hardState, where)
  const term = r.u64()
  const commit = r.u64()
  const hasVote = r.u8()
  if (hasVote > 1) throw corrupt(where, 'bad vote flag')
  const vote = hasVote === 1 ? r.string() : null
  r.end()
  return { term, vote, commit }
}

export function encodeSnapshotMeta(meta: SnapshotMeta): Uint8Array {
  const { voters, learners } = meta.membership
  const w = new Writer(24 + [...voters, ...learners].reduce((n, id) => n + stringBytes(id), 0))
  w.u64(meta.index, 'snapshot.index')
  w.u64(meta.term, 'snapshot.term')
  w.u32(meta.membership.voters.length)
  for (const v of meta.membership.voters) w.string(v)
  w.u32(meta.membership.learners.length)
  for (const l of meta.membership.learners) w.string(l)
  return w.finish(RecordKind.snapshotMeta)
}

export function decodeSnapshotMeta(buf: Uint8Array | undefined, where: Where): SnapshotMeta {
  const r = open(buf, RecordKind.snapshotMeta, where)
  const index = r.u64()
  const term = r.u64()
  const voters = r.strings()
  const learners = r.strings()
  r.end()
  return { index, term, membership: { voters, learners } }
}

/** The storage layout version record: which sub-databases and keys exist and what they mean. */
export function encodeFormat(layoutVersion: number): Uint8Array {
  const w = new Writer(4)
  w.u32(layoutVersion)
  return w.finish(RecordKind.format)
}

export function decodeFormat(buf: Uint8Array | undefined, where: Where): number {
  const r = open(buf, RecordKind.format, where)
  const v = r.u32()
  r.end()
  return v
}
