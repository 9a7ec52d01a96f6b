/** The receiving side of a snapshot transfer: spool files, verification, completed snapshots (see protocol.ts). */
import { createHash, randomInt, type Hash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { mkdir, open, rename, rm, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import type { NodeId } from '../core/types.js'
import { HoldfastError } from '../errors.js'
import type { PeerRpc } from '../transport/rpc.js'
import {
  COMPLETED_TTL_MS,
  DIGEST_BYTES,
  MAX_TRANSFER_CHUNK_BYTES,
  MAX_UNWRITTEN_BYTES,
  PROGRESS_INTERVAL_MS,
  SNAPSHOT_METHOD,
  key,
  log,
  packr,
  positive,
  uint,
  unpackObject,
  type TransferProgress,
} from './protocol.js'

/** A received, verified snapshot waiting for its install. */
export interface CompletedSnapshot {
  readonly from: NodeId
  readonly index: number
  readonly term: number
  readonly bytes: number
  /** The spool file. */
  readonly path: string
  /** The snapshot bytes, read from the spool file. */
  read(): AsyncIterable<Uint8Array>
  /** Deletes the spool file. */
  remove(): Promise<void>
}

export interface SnapshotReceiverOptions {
  /** The spool directory (emptied now). */
  readonly dir: string
  /** The state machine's applied index: snapshots at or below it are refused as stale. */
  readonly appliedIndex: () => number
  /**
   * Checks the encoded Raft message a `done` carries: it must be a snapshot message from `from`
   * for `index` and `term`. Throws a HoldfastError otherwise.
   */
  readonly checkMessage: (from: NodeId, message: Uint8Array, index: number, term: number) => void
  /** Hands a verified transfer's Raft message to the core. */
  readonly deliver: (from: NodeId, message: Uint8Array) => void
  /** @default MAX_TRANSFER_CHUNK_BYTES */
  readonly maxChunkBytes?: number
  readonly onProgress?: (p: TransferProgress & { readonly from: NodeId }) => void
  /** A transfer failed at this receiver (checksum mismatch, write failure, differing prefix). */
  readonly onFailed?: (e: { readonly from: NodeId; readonly index: number; readonly term: number; readonly error: HoldfastError }) => void
}

/** A transfer's spooled bytes. */
interface Spool {
  readonly index: number
  readonly term: number
  path: string
  /** Open while receiving. */
  file: FileHandle | undefined
  /** Over the bytes accepted so far. */
  readonly hash: Hash
  /** Bytes accepted (hashed, written or queued for writing). */
  accepted: number
  /** Bytes in the file. */
  written: number
  /** The write queue; never rejects (a failure is kept in `failed`). */
  writes: Promise<void>
  failed: HoldfastError | undefined
  /** Set once verified and renamed. */
  digest: Buffer | undefined
  completedAt: number
  from: NodeId
}

interface Session {
  readonly id: number
  readonly owner: NodeId
  readonly spool: Spool
  readonly startOffset: number
  /** The sender's stream is known to continue the held bytes (a fresh start, or a matched prefix digest). */
  prefixChecked: boolean
  /** A `done` is being handled: no more chunks. */
  closing: boolean
  lastProgressAt: number
}

/**
 * The receiving side: serves begin/chunk/done, spools to disk, verifies, and keeps completed
 * snapshots for takeCompleted(). Bad input from a peer gets a HoldfastError reply and changes
 * nothing, except that a digest mismatch discards the partial copy it condemns.
 */
export class SnapshotReceiver {
  readonly #o: SnapshotReceiverOptions
  readonly #maxChunk: number
  readonly #ready: Promise<void>
  #partial: Spool | undefined
  readonly #completed = new Map<string, Spool>()
  #session: Session | undefined
  #nextSession = randomInt(1, 0x7fff_ffff)
  /** Makes spool file names unique, so discarding an old file never hits a newer one. */
  #nextFile = 1
  /** Serialises begin and done. */
  #ops: Promise<unknown> = Promise.resolve()
  #closed = false

  constructor(options: SnapshotReceiverOptions) {
    this.#o = options
    this.#maxChunk = options.maxChunkBytes ?? MAX_TRANSFER_CHUNK_BYTES
    this.#ready = rm(options.dir, { recursive: true, force: true }).then(() => mkdir(options.dir, { recursive: true })).then(() => {})
    // Surfaced by the first begin; never an unhandled rejection.
    this.#ready.catch(() => {})
  }

  /** Registers the handlers of SNAPSHOT_METHOD on `rpc`. */
  register(rpc: PeerRpc): void {
    rpc.handle(SNAPSHOT_METHOD.begin, (p, from) => this.#serial(() => this.#begin(p, from)))
    rpc.handle(SNAPSHOT_METHOD.chunk, (p, from) => this.#chunk(p, from))
    rpc.handle(SNAPSHOT_METHOD.done, (p, from) => this.#serial(() => this.#done(p, from)))
  }

  /** Where the partial transfer stands (for status and tests). */
  partial(): { index: number; term: number; bytes: number; path: string } | undefined {
    const p = this.#partial
    return p && { index: p.index, term: p.term, bytes: p.written, path: p.path }
  }

  /** Takes the verified snapshot (index, term) for its install; undefined if none was received. */
  takeCompleted(index: number, term: number): CompletedSnapshot | undefined {
    const k = key(index, term)
    const s = this.#completed.get(k)
    if (!s) return undefined
    this.#completed.delete(k)
    if (this.#session?.spool === s) this.#session = undefined
    const path = s.path
    return {
      from: s.from,
      index,
      term,
      bytes: s.written,
      path,
      // Large reads: the restore reading it waits on each one.
      read: () => createReadStream(path, { highWaterMark: 1024 * 1024 }),
      remove: () => rm(path, { force: true }),
    }
  }

  /** Closes the partial's file. Handlers refuse requests after this. */
  close(): void {
    this.#closed = true
    this.#session = undefined
    const p = this.#partial
    this.#partial = undefined
    if (p) void closeQuietly(p)
  }

  #serial<T>(op: () => Promise<T>): Promise<T> {
    const run = this.#ops.then(op, op)
    this.#ops = run.catch(() => {})
    return run
  }

  async #begin(payload: Uint8Array, from: NodeId): Promise<Uint8Array> {
    this.#checkOpen()
    const b = unpackObject(payload, 'snapshot begin')
    const index = positive(b.index, 'index')
    const term = positive(b.term, 'term')
    this.#checkFresh(index)
    await this.#ready
    this.#checkOpen()
    this.#dropStaleCompleted()
    const k = key(index, term)
    // A newer begin takes over: chunks of an older session are refused from here on.
    this.#session = undefined
    let spool = this.#completed.get(k)
    if (spool === undefined) {
      const p = this.#partial
      if (p && key(p.index, p.term) === k) {
        await p.writes
        if (p.failed) await this.#discard(p)
        else spool = p
      } else if (p) {
        log('replacing the partial snapshot %s (%d bytes) with %s from %s', key(p.index, p.term), p.written, k, from)
        await this.#discard(p)
      }
      if (spool === undefined) {
        const path = join(this.#o.dir, `${index}-${term}-${this.#nextFile++}.partial`)
        const file = await open(path, 'w')
        spool = { index, term, path, file, hash: createHash('sha256'), accepted: 0, written: 0, writes: Promise.resolve(), failed: undefined, digest: undefined, completedAt: 0, from }
        this.#partial = spool
      }
    }
    spool.from = from
    const offset = spool.digest ? spool.written : spool.accepted
    const id = this.#nextSession
    this.#nextSession = this.#nextSession >= 0x7fff_ffff ? 1 : this.#nextSession + 1
    this.#session = { id, owner: from, spool, startOffset: offset, prefixChecked: offset === 0, closing: false, lastProgressAt: 0 }
    log('snapshot %s from %s: session %d starts at %d', k, from, id, offset)
    this.#progress(this.#session, true)
    return packr.pack({ session: id, offset })
  }

  async #chunk(payload: Uint8Array, from: NodeId): Promise<Uint8Array> {
    this.#checkOpen()
    // Everything up to the acceptance runs synchronously, so chunks are taken in arrival order.
    const b = unpackObject(payload, 'snapshot chunk')
    const s = this.#sessionOf(b.session, from)
    const offset = uint(b.offset, 'offset')
    const data = b.data
    if (!(data instanceof Uint8Array) || data.byteLength === 0) throw new HoldfastError('INVALID_ARGUMENT', 'a snapshot chunk needs non-empty bytes in `data`')
    if (data.byteLength > this.#maxChunk) throw new HoldfastError('TOO_LARGE', `a snapshot chunk of ${data.byteLength} bytes exceeds the limit of ${this.#maxChunk}`)
    const spool = s.spool
    if (spool.digest) throw new HoldfastError('INVALID_ARGUMENT', `snapshot ${key(spool.index, spool.term)} is complete here; send done`)
    this.#checkFresh(spool.index)
    if (spool.failed) throw spool.failed
    if (offset > spool.accepted) throw new HoldfastError('INVALID_ARGUMENT', `chunk at offset ${offset} is beyond the ${spool.accepted} bytes held`)
    if (offset < spool.accepted) {
      // A duplicate of held bytes (a frame delivered twice) is acknowledged and ignored.
      if (offset + data.byteLength <= spool.accepted && s.prefixChecked) return packr.pack({ next: spool.accepted })
      throw new HoldfastError('INVALID_ARGUMENT', `chunk at ${offset}..${offset + data.byteLength} overlaps the end of the ${spool.accepted} bytes held`)
    }
    if (!s.prefixChecked) {
      const prefix = b.prefix
      if (!(prefix instanceof Uint8Array) || prefix.byteLength !== DIGEST_BYTES) {
        throw new HoldfastError('INVALID_ARGUMENT', `the first chunk of a transfer resumed at ${offset} must carry the SHA-256 of the bytes before it in \`prefix\``)
      }
      if (!spool.hash.copy().digest().equals(prefix)) {
        const error = new HoldfastError('CORRUPT_DATA', `the ${offset} bytes held of snapshot ${key(spool.index, spool.term)} differ from ${from}'s stream; they were discarded, send it again from 0`)
        this.#fail(s, error)
        throw error
      }
      s.prefixChecked = true
    }
    if (spool.accepted - spool.written + data.byteLength > MAX_UNWRITTEN_BYTES) {
      throw new HoldfastError('TOO_LARGE', `more than ${MAX_UNWRITTEN_BYTES} bytes of snapshot chunks are waiting to be written; wait for acknowledgements`)
    }
    spool.hash.update(data)
    spool.accepted += data.byteLength
    const end = spool.accepted
    const file = spool.file!
    spool.writes = spool.writes.then(async () => {
      if (spool.failed) return
      try {
        await file.write(data, 0, data.byteLength, offset)
        spool.written = end
      } catch (err) {
        spool.failed = new HoldfastError('UNAVAILABLE', `writing the snapshot spool ${spool.path} failed: ${(err as Error).message}`, { cause: err })
      }
    })
    const mine = spool.writes
    await mine
    if (spool.written < end) {
      const error = spool.failed ?? new HoldfastError('UNAVAILABLE', 'the snapshot transfer was abandoned')
      if (this.#session === s) this.#fail(s, error)
      throw error
    }
    this.#progress(s, false)
    return packr.pack({ next: end })
  }

  async #done(payload: Uint8Array, from: NodeId): Promise<Uint8Array> {
    this.#checkOpen()
    const b = unpackObject(payload, 'snapshot done')
    const s = this.#sessionOf(b.session, from)
    const bytes = uint(b.bytes, 'bytes')
    const sha256 = b.sha256
    if (!(sha256 instanceof Uint8Array) || sha256.byteLength !== DIGEST_BYTES) throw new HoldfastError('INVALID_ARGUMENT', 'done needs the SHA-256 of the whole stream in `sha256`')
    const message = b.message
    if (!(message instanceof Uint8Array)) throw new HoldfastError('INVALID_ARGUMENT', 'done needs the encoded Raft snapshot message in `message`')
    const spool = s.spool
    this.#checkFresh(spool.index)
    this.#o.checkMessage(from, message, spool.index, spool.term)
    s.closing = true
    try {
      await spool.writes
      this.#checkOpen()
      if (this.#session !== s) throw new HoldfastError('INVALID_ARGUMENT', 'the transfer was replaced by a newer one')
      if (spool.failed) {
        this.#fail(s, spool.failed)
        throw spool.failed
      }
      if (s.prefixChecked && bytes !== spool.accepted) {
        throw new HoldfastError('INVALID_ARGUMENT', `done at ${bytes} bytes, but ${spool.accepted} bytes were received`)
      }
      // Unchecked (nothing sent since a resume): the held bytes must be the sender's whole stream.
      const held = spool.digest ?? spool.hash.copy().digest()
      if (bytes !== spool.accepted || !held.equals(sha256)) {
        const error = new HoldfastError(
          'CORRUPT_DATA',
          `snapshot ${key(spool.index, spool.term)} from ${from} failed its checksum (${spool.accepted} bytes held, ${bytes} sent); it was discarded`,
        )
        this.#fail(s, error)
        throw error
      }
      if (!spool.digest) {
        try {
          await this.#complete(spool)
        } catch (err) {
          const error = new HoldfastError('UNAVAILABLE', `storing snapshot ${key(spool.index, spool.term)} failed: ${(err as Error).message}`, { cause: err })
          this.#fail(s, error)
          throw error
        }
      }
      this.#session = undefined
      log('snapshot %s from %s verified: %d bytes', key(spool.index, spool.term), from, bytes)
      this.#o.onProgress?.({ from, index: spool.index, term: spool.term, bytes, totalBytes: bytes, startOffset: s.startOffset })
      this.#o.deliver(from, message)
      return packr.pack({ bytes })
    } finally {
      s.closing = false
    }
  }

  /** Makes a verified partial durable and moves it to the completed set. */
  async #complete(spool: Spool): Promise<void> {
    const file = spool.file!
    await file.sync()
    await file.close()
    spool.file = undefined
    const done = spool.path.replace(/\.partial$/, '.snap')
    await rename(spool.path, done)
    spool.path = done
    await syncDir(this.#o.dir)
    spool.digest = spool.hash.digest()
    spool.completedAt = Date.now()
    if (this.#partial === spool) this.#partial = undefined
    this.#completed.set(key(spool.index, spool.term), spool)
  }

  #sessionOf(id: unknown, from: NodeId): Session {
    const s = this.#session
    if (s === undefined || s.id !== id || s.owner !== from || s.closing) {
      throw new HoldfastError('INVALID_ARGUMENT', `unknown snapshot transfer ${String(id)} from ${from} (never begun, replaced, or finished)`)
    }
    return s
  }

  /** Refuses a snapshot not newer than the applied state. */
  #checkFresh(index: number): void {
    const applied = this.#o.appliedIndex()
    if (index <= applied) throw new HoldfastError('INVALID_ARGUMENT', `a snapshot at index ${index} is not newer than the applied index ${applied}`)
  }

  #checkOpen(): void {
    if (this.#closed) throw new HoldfastError('CLOSED', 'the snapshot receiver is closed')
  }

  /** Ends session `s` with `error`, discarding what it held. */
  #fail(s: Session, error: HoldfastError): void {
    if (this.#session === s) this.#session = undefined
    void this.#discard(s.spool)
    log('snapshot %s from %s failed: %s', key(s.spool.index, s.spool.term), s.owner, error.message)
    this.#o.onFailed?.({ from: s.owner, index: s.spool.index, term: s.spool.term, error })
  }

  async #discard(spool: Spool): Promise<void> {
    if (this.#partial === spool) this.#partial = undefined
    const k = key(spool.index, spool.term)
    if (this.#completed.get(k) === spool) this.#completed.delete(k)
    await closeQuietly(spool)
  }

  #dropStaleCompleted(): void {
    const applied = this.#o.appliedIndex()
    const now = Date.now()
    for (const s of [...this.#completed.values()]) {
      if (s.index <= applied || now - s.completedAt > COMPLETED_TTL_MS) void this.#discard(s)
    }
  }

  #progress(s: Session, force: boolean): void {
    const now = Date.now()
    if (!force && now - s.lastProgressAt < PROGRESS_INTERVAL_MS) return
    s.lastProgressAt = now
    this.#o.onProgress?.({ from: s.owner, index: s.spool.index, term: s.spool.term, bytes: s.spool.written, startOffset: s.startOffset })
  }
}

async function closeQuietly(spool: Spool): Promise<void> {
  const file = spool.file
  spool.file = undefined
  spool.failed ??= new HoldfastError('UNAVAILABLE', 'the snapshot transfer was abandoned')
  try {
    await spool.writes
    await file?.close()
  } catch (err) {
    log('closing %s failed: %O', spool.path, err)
  }
  await rm(spool.path, { force: true }).catch((err: unknown) => log('removing %s failed: %O', spool.path, err))
}

/** Makes a rename in `dir` durable (where the platform allows syncing a directory). */
async function syncDir(dir: string): Promise<void> {
  let fh: FileHandle | undefined
  try {
    fh = await open(dir, 'r')
    await fh.sync()
  } catch (err) {
    log('syncing directory %s: %s', dir, (err as Error).message)
  } finally {
    await fh?.close().catch(() => {})
  }
}
