/** The sending side of a snapshot transfer (see protocol.ts). */
import { createHash } from 'node:crypto'
import type { NodeId } from '../core/types.js'
import { HoldfastError } from '../errors.js'
import type { PeerRpc } from '../transport/rpc.js'
import { DEFAULT_TRANSFER_CHUNK_BYTES, DEFAULT_TRANSFER_WINDOW, SNAPSHOT_METHOD, packr, throttled, uint, unpackObject, type TransferProgress } from './protocol.js'

/** What one send attempt did; filled in as it goes, so a failed attempt reports it too. */
export interface SendStats {
  /** Where the receiver asked this attempt to start (0 for a fresh transfer). */
  startOffset: number
  /** Chunk payload bytes put on the wire by this attempt. */
  sentBytes: number
  /** The stream's length, once the stream was read to its end. */
  totalBytes: number | undefined
}

export interface SendSnapshotOptions {
  readonly rpc: PeerRpc
  readonly to: NodeId
  /** The snapshot's identity: its last included index and term. */
  readonly index: number
  readonly term: number
  /** The snapshot's byte stream, read once. */
  readonly chunks: AsyncIterable<Uint8Array>
  /** The encoded Raft snapshot message, handed to the receiver's core once its data is verified. */
  readonly message: Uint8Array
  /** Deadline of each request in ms. */
  readonly timeoutMs: number
  /** @default DEFAULT_TRANSFER_WINDOW */
  readonly window?: number
  /** @default DEFAULT_TRANSFER_CHUNK_BYTES */
  readonly chunkBytes?: number
  readonly onProgress?: (p: TransferProgress) => void
  /** Filled in as the attempt goes. */
  readonly stats?: SendStats
}

/**
 * Sends one snapshot to `to`, resuming where the receiver's partial copy ends. Resolves once the
 * receiver verified the whole stream and accepted the Raft message; rejects (HoldfastError) when
 * the attempt failed, having sent no more than `window` unacknowledged chunks.
 */
export async function sendSnapshot(o: SendSnapshotOptions): Promise<void> {
  const window = o.window ?? DEFAULT_TRANSFER_WINDOW
  const chunkBytes = o.chunkBytes ?? DEFAULT_TRANSFER_CHUNK_BYTES
  const stats = o.stats ?? { startOffset: 0, sentBytes: 0, totalBytes: undefined }
  const request = async (method: string, body: unknown): Promise<Record<string, unknown>> => {
    const reply = await o.rpc.request(o.to, method, packr.pack(body), { timeoutMs: o.timeoutMs })
    return unpackObject(reply, `${method} reply from ${o.to}`)
  }
  const begun = await request(SNAPSHOT_METHOD.begin, { index: o.index, term: o.term })
  const session = uint(begun.session, 'session')
  const start = uint(begun.offset, 'offset')
  stats.startOffset = start
  let acked = start
  const progress = throttled((totalBytes?: number) => o.onProgress?.({ index: o.index, term: o.term, bytes: acked, totalBytes, startOffset: start }))
  progress.now()

  const inflight = new InFlight(window)
  const hash = createHash('sha256')
  /** Stream bytes read so far. */
  let pos = 0
  /** Where the next chunk starts. */
  let nextOffset = start
  let prefix: Buffer | undefined
  let pending: Buffer[] = []
  let pendingBytes = 0
  const send = async (data: Buffer): Promise<void> => {
    const offset = nextOffset
    nextOffset += data.byteLength
    const body: Record<string, unknown> = { session, offset, data }
    if (prefix !== undefined) {
      body.prefix = prefix
      prefix = undefined
    }
    stats.sentBytes += data.byteLength
    await inflight.add(
      request(SNAPSHOT_METHOD.chunk, body).then((r) => {
        const next = uint(r.next, 'next')
        if (next < offset + data.byteLength) throw new HoldfastError('CORRUPT_DATA', `${o.to} acknowledged ${next} bytes, expected ${offset + data.byteLength}`)
        acked = Math.max(acked, next)
        progress()
      }),
    )
  }
  for await (const c of o.chunks) {
    let b = Buffer.from(c.buffer, c.byteOffset, c.byteLength)
    if (pos < start) {
      // Bytes the receiver holds: hashed, not sent.
      const skip = Math.min(start - pos, b.byteLength)
      hash.update(b.subarray(0, skip))
      pos += skip
      b = b.subarray(skip)
      if (pos === start) prefix = hash.copy().digest()
      if (b.byteLength === 0) continue
    }
    hash.update(b)
    pos += b.byteLength
    // A copy: the source may reuse its buffer once asked for the next chunk.
    pending.push(Buffer.from(b))
    pendingBytes += b.byteLength
    while (pendingBytes >= chunkBytes) {
      const all = pending.length === 1 ? pending[0]! : Buffer.concat(pending)
      pending = all.byteLength > chunkBytes ? [all.subarray(chunkBytes)] : []
      pendingBytes -= chunkBytes
      await send(all.subarray(0, chunkBytes))
    }
  }
  if (pendingBytes > 0) {
    const last = Buffer.concat(pending)
    pending = []
    await send(last)
    pendingBytes = 0
  }
  await inflight.drain()
  stats.totalBytes = pos
  // When start > pos the receiver holds more than this stream has: done's digest tells it so.
  await request(SNAPSHOT_METHOD.done, { session, bytes: pos, sha256: hash.digest(), message: o.message })
  acked = pos
  progress.now(pos)
}

/** A bounded set of outstanding requests; the first failure fails the attempt. */
class InFlight {
  readonly #limit: number
  readonly #set = new Set<Promise<void>>()
  #error: unknown

  constructor(limit: number) {
    this.#limit = Math.max(1, limit)
  }

  /** Adds a request, then waits until the window has room. Throws the first failure of any request. */
  async add(p: Promise<void>): Promise<void> {
    // The tracked promise never rejects: late failures after the attempt gave up go nowhere.
    const tracked: Promise<void> = p.then(
      () => {},
      (err: unknown) => {
        this.#error ??= err
      },
    ).finally(() => this.#set.delete(tracked))
    this.#set.add(tracked)
    while (this.#error === undefined && this.#set.size >= this.#limit) await Promise.race(this.#set)
    if (this.#error !== undefined) throw this.#error
  }

  async drain(): Promise<void> {
    while (this.#error === undefined && this.#set.size > 0) await Promise.race(this.#set)
    if (this.#error !== undefined) throw this.#error
  }
}
