/**
 * A snapshot's byte stream as a sender reads it, kept across send attempts (see sender.ts).
 *
 * The source is read once, in order. Bytes are kept from `base` (the offset the receiver is known
 * to hold: acknowledged, or skipped at its request) up to `end` (what was read), and everything
 * before `base` survives only as a running SHA-256. So an attempt broken off mid-way can be
 * followed by another one that starts anywhere from `base` on, where the receiver's partial copy
 * ends, without reading the source again and without pinning more memory than the bytes in flight:
 * `end - base` is at most the sender's window plus one source chunk.
 *
 * The source (the state machine's snapshot) holds an LMDB read transaction until release(), or
 * until it has been read to its end: see SnapshotSender for how long one is kept.
 */
import { createHash } from 'node:crypto'
import { HoldfastError } from '../errors.js'
import { log } from './protocol.js'

export class SnapshotStream {
  readonly #source: AsyncIterator<Uint8Array>
  readonly #releaseSource: () => void
  /** Over the bytes [0, base). */
  readonly #hash = createHash('sha256')
  #base = 0
  /** The bytes [base, end), in order. */
  #kept: Buffer[] = []
  #end = 0
  #started = false
  #ended = false
  #failed: unknown
  /** Set by release(). */
  #releasing: Promise<void> | undefined

  /** `chunks` is iterated once, and must not change a chunk once handed out; `release` ends the source early (idempotent). */
  constructor(chunks: AsyncIterable<Uint8Array>, release: () => void) {
    this.#source = chunks[Symbol.asyncIterator]()
    this.#releaseSource = release
  }

  /** Bytes before this offset are forgotten (hashed only). */
  get base(): number {
    return this.#base
  }

  /** Bytes read from the source so far. */
  get end(): number {
    return this.#end
  }

  /** The stream's length, once it was read to its end. */
  get length(): number | undefined {
    return this.#ended ? this.#end : undefined
  }

  /** Whether an attempt can start at `offset`: the stream is intact and the bytes from there on are here or unread. */
  canStartAt(offset: number): boolean {
    return this.usable && offset >= this.#base
  }

  /** Whether it can serve another attempt at all (its source did not fail, it was not released). */
  get usable(): boolean {
    return this.#failed === undefined && this.#releasing === undefined
  }

  /** Forgets the bytes before `offset` (at most `end`), keeping their hash. */
  drop(offset: number): void {
    let n = Math.min(offset, this.#end) - this.#base
    while (n > 0) {
      const b = this.#kept[0]!
      if (b.byteLength <= n) {
        this.#hash.update(b)
        this.#kept.shift()
        this.#base += b.byteLength
        n -= b.byteLength
      } else {
        this.#hash.update(b.subarray(0, n))
        this.#kept[0] = b.subarray(n)
        this.#base += n
        n = 0
      }
    }
  }

  /**
   * Moves `base` to `offset`, reading (and hashing, not keeping) the source up to there if needed.
   * Stops at the end of the stream if it is shorter. Throws if `offset` < base.
   */
  async skipTo(offset: number): Promise<void> {
    this.#checkFrom(offset)
    this.drop(offset)
    while (this.#base < offset && !this.#ended) {
      const b = await this.#pull()
      if (b === undefined) break
      const skip = Math.min(offset - this.#base, b.byteLength)
      this.#hash.update(b.subarray(0, skip))
      this.#base += skip
      this.#end = this.#base
      if (skip < b.byteLength) {
        this.#kept.push(b.subarray(skip))
        this.#end += b.byteLength - skip
      }
    }
  }

  /** The SHA-256 of the bytes [0, offset), for base <= offset <= end. */
  digestBefore(offset: number): Buffer {
    this.#checkFrom(offset)
    if (offset > this.#end) throw new HoldfastError('CONTRACT_VIOLATION', `digest at ${offset} beyond the ${this.#end} bytes read`)
    const h = this.#hash.copy()
    let n = offset - this.#base
    for (const b of this.#kept) {
      if (n <= 0) break
      h.update(n >= b.byteLength ? b : b.subarray(0, n))
      n -= b.byteLength
    }
    return h.digest()
  }

  /** The bytes [offset, offset + max): fewer at the end of the stream, none past it. offset >= base. */
  async read(offset: number, max: number): Promise<Buffer> {
    this.#checkFrom(offset)
    while (this.#end < offset + max && !this.#ended) {
      const b = await this.#pull()
      if (b === undefined) break
      this.#kept.push(b)
      this.#end += b.byteLength
    }
    const from = offset - this.#base
    const to = Math.min(offset + max, this.#end) - this.#base
    if (to <= from) return Buffer.alloc(0)
    const parts: Buffer[] = []
    let at = 0
    for (const b of this.#kept) {
      const lo = Math.max(from - at, 0)
      const hi = Math.min(to - at, b.byteLength)
      if (hi > lo) parts.push(b.subarray(lo, hi))
      at += b.byteLength
      if (at >= to) break
    }
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts)
  }

  /**
   * Ends the source (its read transaction) and forgets the kept bytes. Idempotent; the promise
   * (which never rejects) resolves once the source is released.
   */
  release(): Promise<void> {
    if (this.#releasing) return this.#releasing
    this.#kept = []
    const finish = (): void => {
      try {
        this.#releaseSource()
      } catch (err) {
        log('releasing a snapshot source: %s', (err as Error).message)
      }
    }
    // A source being read has a cursor open in its transaction: return() closes it (the source's
    // own cleanup) before the transaction ends. One never started, ended or failed has none.
    if (!this.#started || this.#ended || this.#failed !== undefined) {
      finish()
      this.#releasing = Promise.resolve()
    } else {
      this.#releasing = (async () => {
        try {
          await this.#source.return?.()
        } catch (err) {
          log('ending a snapshot source: %s', (err as Error).message)
        }
        finish()
      })()
    }
    return this.#releasing
  }

  async #pull(): Promise<Buffer | undefined> {
    if (this.#failed !== undefined) throw this.#failed
    if (this.#releasing) throw new HoldfastError('CLOSED', 'the snapshot stream was released')
    let r: IteratorResult<Uint8Array>
    this.#started = true
    try {
      r = await this.#source.next()
    } catch (err) {
      this.#failed = err
      throw err
    }
    if (r.done) {
      this.#ended = true
      return undefined
    }
    // A view, not a copy: the source does not reuse a chunk's buffer (SnapshotToSend.chunks).
    return Buffer.from(r.value.buffer, r.value.byteOffset, r.value.byteLength)
  }

  #checkFrom(offset: number): void {
    if (offset < this.#base) throw new HoldfastError('CONTRACT_VIOLATION', `offset ${offset} is before the ${this.#base} bytes already forgotten`)
  }
}
