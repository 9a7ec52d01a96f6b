/**
 * The byte stream of a key-value snapshot: written from one consistent read transaction, read
 * back by KvStateMachine.restore. Chunk boundaries carry no meaning; the stream is
 *
 * ```
 * 'HFKV' (4 bytes) | frame*
 * frame   = kind (u8) | length (u32 BE) | payload
 * kind 1  header:  MessagePack [layoutVersion, appliedIndex, fence, generation]   (first frame)
 * kind 2  records: (keyLength u16 BE | key | valueLength u32 BE | value)*          (stored data records)
 * kind 3  trailer: recordCount (u64 BE) | SHA-256 of every byte before the digest  (last frame)
 * ```
 *
 * Records carry the stored bytes of the data sub-database as they are (see layout.ts), in key
 * order, so each keeps its own checksum: KvStateMachine.snapshot verifies every record as it
 * streams it (the digest must not vouch for a record damaged on disk) and restore verifies each
 * again before writing it. A reader verifies the digest only at the end, so it must not let
 * anything it wrote become live before readSnapshot resolves.
 */
import { createHash } from 'node:crypto'
import type { Hash } from 'node:crypto'
import { HoldfastError } from '../errors.js'
import { MAX_BUCKET_BYTES, MAX_KEY_BYTES, packr } from './commands.js'
import { KV_LAYOUT_VERSION } from './layout.js'

const MAGIC = Buffer.from('HFKV', 'latin1')
const KIND_HEADER = 1
const KIND_RECORDS = 2
const KIND_TRAILER = 3
const FRAME_HEADER = 5
const DIGEST_BYTES = 32
const TRAILER_BYTES = 8 + DIGEST_BYTES
const TWO_32 = 0x1_0000_0000
/** The largest frame a reader accepts: a bound on memory for a corrupt length field. */
export const MAX_FRAME_BYTES = 256 * 1024 * 1024
/** The longest stored key: bucket, separator, key. */
const MAX_STORED_KEY = MAX_BUCKET_BYTES + 1 + MAX_KEY_BYTES
/** Default of KvOptions.snapshotChunkSize: 64 KiB. */
export const DEFAULT_SNAPSHOT_CHUNK_SIZE = 64 * 1024

/** What a key-value snapshot covers. */
export interface KvSnapshotMeta {
  /** The state after applying every entry up to this index. */
  readonly appliedIndex: number
  /** The fencing token current at appliedIndex. */
  readonly fence: number
  /** The data generation of the source (informational). */
  readonly generation: number
}

/** A raw stored record. */
export interface SnapshotRecord {
  readonly key: Uint8Array
  readonly value: Uint8Array
}

function corrupt(what: string): HoldfastError {
  return new HoldfastError('CORRUPT_DATA', `snapshot stream: ${what}`)
}

function frameHeader(kind: number, length: number): Buffer {
  const h = Buffer.allocUnsafe(FRAME_HEADER)
  h[0] = kind
  h.writeUInt32BE(length, 1)
  return h
}

/**
 * Streams `records` (in key order) as snapshot bytes, in chunks of about `chunkSize` bytes
 * (a chunk holds whole frames, so one large record makes one large chunk). Each chunk is a fresh
 * buffer the caller may keep.
 */
export async function* writeSnapshot(meta: KvSnapshotMeta, records: Iterable<SnapshotRecord>, chunkSize: number): AsyncGenerator<Uint8Array, void, undefined> {
  const hash = createHash('sha256')
  const header = packr.pack([KV_LAYOUT_VERSION, meta.appliedIndex, meta.fence, meta.generation])
  const first = Buffer.concat([MAGIC, frameHeader(KIND_HEADER, header.byteLength), header])
  hash.update(first)
  yield first
  // Records are copied straight into the chunk's buffer (LMDB may reuse the buffers a range
  // iterator hands out): one allocation per chunk, not several per record.
  const fresh = (min: number): Buffer => Buffer.allocUnsafe(Math.max(FRAME_HEADER + chunkSize + 4096, min))
  let buf = fresh(0)
  let at = FRAME_HEADER
  let count = 0
  const flush = (): Buffer => {
    buf[0] = KIND_RECORDS
    buf.writeUInt32BE(at - FRAME_HEADER, 1)
    const chunk = buf.subarray(0, at)
    hash.update(chunk)
    buf = fresh(0)
    at = FRAME_HEADER
    return chunk
  }
  for (const r of records) {
    const kl = r.key.byteLength
    const vl = r.value.byteLength
    const need = 6 + kl + vl
    if (at + need > buf.byteLength) {
      const bigger = fresh(at + need)
      buf.copy(bigger, 0, 0, at)
      buf = bigger
    }
    buf.writeUInt16BE(kl, at)
    buf.set(r.key, at + 2)
    buf.writeUInt32BE(vl, at + 2 + kl)
    buf.set(r.value, at + 6 + kl)
    at += need
    count++
    if (at - FRAME_HEADER >= chunkSize) yield flush()
  }
  const last = at > FRAME_HEADER ? [flush()] : []
  const trailer = Buffer.allocUnsafe(FRAME_HEADER + TRAILER_BYTES)
  trailer.set(frameHeader(KIND_TRAILER, TRAILER_BYTES))
  trailer.writeUInt32BE(Math.floor(count / TWO_32), FRAME_HEADER)
  trailer.writeUInt32BE(count % TWO_32, FRAME_HEADER + 4)
  hash.update(trailer.subarray(0, FRAME_HEADER + 8))
  hash.digest().copy(trailer, FRAME_HEADER + 8)
  yield Buffer.concat([...last, trailer])
}

/** Buffers incoming chunks and hands out exact byte counts, hashing what it hands out. */
class ByteReader {
  #parts: Buffer[] = []
  #size = 0
  #done = false
  readonly #it: AsyncIterator<Uint8Array>
  readonly hash: Hash = createHash('sha256')

  constructor(chunks: AsyncIterable<Uint8Array>) {
    this.#it = chunks[Symbol.asyncIterator]()
  }

  /** Reads exactly n bytes, or returns undefined if the stream ends first (at a frame boundary when n is the frame header). */
  async read(n: number, hashed = true): Promise<Buffer | undefined> {
    while (this.#size < n && !this.#done) {
      const r = await this.#it.next()
      if (r.done) {
        this.#done = true
        break
      }
      if (!(r.value instanceof Uint8Array)) throw new HoldfastError('INVALID_ARGUMENT', 'snapshot chunks must be Uint8Arrays')
      if (r.value.byteLength === 0) continue
      // A copy: the source may reuse its buffer once asked for the next chunk.
      this.#parts.push(Buffer.from(r.value))
      this.#size += r.value.byteLength
    }
    if (this.#size < n) return undefined
    const all = this.#parts.length === 1 ? this.#parts[0]! : Buffer.concat(this.#parts)
    const out = all.subarray(0, n)
    this.#parts = all.byteLength > n ? [all.subarray(n)] : []
    this.#size -= n
    if (hashed) this.hash.update(out)
    return out
  }

  /** True when nothing is left after what was read. */
  async atEnd(): Promise<boolean> {
    return (await this.read(1, false)) === undefined
  }

  /** Lets the source release its resources (calls its return()) when reading stops early. */
  async close(): Promise<void> {
    if (!this.#done) await this.#it.return?.()
  }
}

/**
 * Reads a snapshot stream, handing each frame's records (checked for plausible shape and strictly
 * increasing keys) to `onRecords` as they arrive, and resolves with the snapshot meta and record
 * count only after the trailer's digest matched and the stream ended right after it. Rejects with
 * CORRUPT_DATA for anything else (truncation, corruption, an unknown format); an error thrown by
 * the chunk source or by onRecords propagates as it is.
 */
export async function readSnapshot(chunks: AsyncIterable<Uint8Array>, onRecords: (records: SnapshotRecord[]) => void): Promise<{ meta: KvSnapshotMeta; records: number }> {
  const r = new ByteReader(chunks)
  try {
    const magic = await r.read(MAGIC.byteLength)
    if (magic === undefined || !magic.equals(MAGIC)) throw corrupt(magic === undefined ? 'empty or truncated before its header' : 'not a holdfast key-value snapshot (bad magic)')
    let meta: KvSnapshotMeta | undefined
    let count = 0
    let prev: Buffer | undefined
    for (;;) {
      const fh = await r.read(FRAME_HEADER)
      if (fh === undefined) throw corrupt(`truncated after ${count} records (no trailer)`)
      const kind = fh[0]!
      const len = fh.readUInt32BE(1)
      if (len > MAX_FRAME_BYTES) throw corrupt(`frame of ${len} bytes exceeds the limit of ${MAX_FRAME_BYTES}`)
      if (kind === KIND_TRAILER) {
        if (meta === undefined) throw corrupt('trailer before header')
        if (len !== TRAILER_BYTES) throw corrupt(`trailer of ${len} bytes`)
        const counted = await r.read(8)
        const expected = r.hash.digest()
        const digest = await r.read(DIGEST_BYTES, false)
        if (counted === undefined || digest === undefined) throw corrupt('truncated inside its trailer')
        if (!digest.equals(expected)) throw corrupt('checksum mismatch (the data is corrupt)')
        const n = counted.readUInt32BE(0) * TWO_32 + counted.readUInt32BE(4)
        if (n !== count) throw corrupt(`trailer counts ${n} records, the stream held ${count}`)
        if (!(await r.atEnd())) throw corrupt('data after the trailer')
        return { meta, records: count }
      }
      const payload = await r.read(len)
      if (payload === undefined) throw corrupt(`truncated inside a frame after ${count} records`)
      if (kind === KIND_HEADER) {
        if (meta !== undefined) throw corrupt('a second header')
        meta = parseHeader(payload)
      } else if (kind === KIND_RECORDS) {
        if (meta === undefined) throw corrupt('records before the header')
        const records = parseRecords(payload, prev)
        count += records.length
        if (records.length > 0) prev = Buffer.from(records[records.length - 1]!.key)
        onRecords(records)
      } else {
        throw corrupt(`unknown frame kind ${kind}`)
      }
    }
  } finally {
    await r.close().catch(() => {})
  }
}

function parseHeader(payload: Buffer): KvSnapshotMeta {
  let h: unknown
  try {
    h = packr.unpack(payload)
  } catch {
    throw corrupt('undecodable header')
  }
  const ok = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0
  if (!Array.isArray(h) || h.length !== 4 || !h.every(ok)) throw corrupt('malformed header')
  if (h[0] !== KV_LAYOUT_VERSION) throw corrupt(`layout version ${String(h[0])} is not supported (this build reads ${KV_LAYOUT_VERSION})`)
  const [, appliedIndex, fence, generation] = h as [number, number, number, number]
  return { appliedIndex, fence, generation }
}

function parseRecords(p: Buffer, prev: Buffer | undefined): SnapshotRecord[] {
  const out: SnapshotRecord[] = []
  let at = 0
  let last = prev
  while (at < p.byteLength) {
    if (at + 2 > p.byteLength) throw corrupt('record cut short')
    const kl = p.readUInt16BE(at)
    if (kl < 3 || kl > MAX_STORED_KEY || at + 2 + kl + 4 > p.byteLength) throw corrupt('record with a bad key length')
    const key = p.subarray(at + 2, at + 2 + kl)
    at += 2 + kl
    const vl = p.readUInt32BE(at)
    if (at + 4 + vl > p.byteLength) throw corrupt('record with a bad value length')
    const value = p.subarray(at + 4, at + 4 + vl)
    at += 4 + vl
    if (last !== undefined && Buffer.compare(last, key) >= 0) throw corrupt('records out of key order')
    last = key
    out.push({ key, value })
  }
  return out
}
