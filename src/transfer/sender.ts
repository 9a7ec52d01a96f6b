/**
 * The sending side of a snapshot transfer (see protocol.ts), and what it keeps between attempts.
 *
 * A receiver resumes a broken transfer only when it is sent the same snapshot (index, term) again.
 * The Raft core always asks for a snapshot of the leader's latest applied state, so on a cluster
 * that keeps writing, every retry would be a new snapshot and the receiver's partial copy would be
 * thrown away. So a SnapshotSender keeps the snapshot of a broken attempt (its open read snapshot,
 * positioned where the attempt stopped, and its Raft meta) per target peer, and when the core asks
 * for a snapshot to that peer again it offers the held one instead, provided
 *
 * - the leader's log still holds every entry after it (held index >= first index - 1), so the
 *   follower, having installed it, continues from the log: the core accepts the follower's answer
 *   at the older index and probes from there (test/core/snapshot-substitute.test.ts), and
 * - the receiver still holds a prefix of it that this stream can continue (its `begin` answer is
 *   above 0 and not before the bytes the sender forgot).
 *
 * Otherwise the held snapshot is dropped and the new one is sent (in the same attempt: a `begin`
 * for the new snapshot replaces the receiver's partial).
 *
 * Cost: a held snapshot is an LMDB read transaction, which keeps the pages it sees from being
 * reused, so the data file can grow by what the cluster writes meanwhile. It is bounded: one held
 * snapshot per peer, released after `lingerMs` without a retry, after a success, when superseded
 * (a newer attempt to that peer, a fresh snapshot chosen instead), when the node stops leading, and
 * on close. And because it is only re-offered while the log covers it, it cannot lag the state by
 * more than the log's tail (NodeOptions.logTail entries plus one compaction batch).
 */
import type { NodeId, SnapshotMeta } from '../core/types.js'
import { HoldfastError, isHoldfastError } from '../errors.js'
import type { PeerRpc } from '../transport/rpc.js'
import { DEFAULT_TRANSFER_CHUNK_BYTES, DEFAULT_TRANSFER_LINGER_MS, DEFAULT_TRANSFER_WINDOW, SNAPSHOT_METHOD, key, log, packr, throttled, uint, unpackObject, type TransferProgress } from './protocol.js'
import { SnapshotStream } from './stream.js'

/** What one send did; filled in as it goes, so a failed send reports it too. */
export interface SendStats {
  /** The snapshot sent: the one the core asked for, or an older one held from a broken attempt. */
  index: number
  term: number
  /** The index of the snapshot the core asked for. */
  requestedIndex: number
  /** The snapshot held from an earlier, broken attempt was sent again instead of the new one. */
  reoffered: boolean
  /** Where the receiver asked this attempt to start (0 for a fresh transfer). */
  startOffset: number
  /** Chunk payload bytes put on the wire by this attempt. */
  sentBytes: number
  /** The stream's length, once the stream was read to its end. */
  totalBytes: number | undefined
}

/** Fresh stats for a send of `meta`. */
export function sendStats(meta: SnapshotMeta): SendStats {
  return { index: meta.index, term: meta.term, requestedIndex: meta.index, reoffered: false, startOffset: 0, sentBytes: 0, totalBytes: undefined }
}

/** A snapshot to send: its Raft meta and its bytes (the state at exactly meta.index). */
export interface SnapshotToSend {
  readonly meta: SnapshotMeta
  /** Iterated once. Each chunk must stay unchanged once handed out: the stream keeps it (no copy) until acknowledged. */
  readonly chunks: AsyncIterable<Uint8Array>
  /** Ends the source early (its read transaction). Idempotent. */
  release(): void
}

export interface SnapshotSenderOptions {
  readonly rpc: PeerRpc
  /** Deadline of each request in ms. */
  readonly timeoutMs: number
  /** @default DEFAULT_TRANSFER_WINDOW */
  readonly window?: number
  /** @default DEFAULT_TRANSFER_CHUNK_BYTES */
  readonly chunkBytes?: number
  /** How long the snapshot of a broken attempt is kept for a retry to resume. @default DEFAULT_TRANSFER_LINGER_MS */
  readonly lingerMs?: number
}

export interface SendRequest {
  readonly to: NodeId
  /** The snapshot the core asked for, opened when it asked. Released by send(). */
  readonly snapshot: SnapshotToSend
  /** The first index of the leader's log now: a held snapshot below firstIndex - 1 is not re-offered. */
  readonly firstIndex: number
  /** Encodes the Raft snapshot message for `meta` (the receiver hands it to its core once the data is verified). */
  readonly message: (meta: SnapshotMeta) => Uint8Array
  /** Filled in as the send goes. */
  readonly stats?: SendStats
  readonly onProgress?: (p: TransferProgress) => void
}

/** A snapshot being sent, or held for a retry. */
interface Candidate {
  readonly meta: SnapshotMeta
  readonly stream: SnapshotStream
}

interface Held extends Candidate {
  readonly timer: NodeJS.Timeout
}

interface Peer {
  /** Numbers the sends to this peer: only the newest may leave its snapshot held. */
  seq: number
  held: Held | undefined
}

/** Sends snapshots to peers, resuming broken transfers (see the top of this file). */
export class SnapshotSender {
  readonly #rpc: PeerRpc
  readonly #timeoutMs: number
  readonly #window: number
  readonly #chunkBytes: number
  readonly #lingerMs: number
  readonly #peers = new Map<NodeId, Peer>()
  /** Sends under way, and releases of their sources not yet finished: close() waits for both. */
  readonly #active = new Set<Promise<unknown>>()
  #closed = false

  constructor(o: SnapshotSenderOptions) {
    this.#rpc = o.rpc
    this.#timeoutMs = o.timeoutMs
    this.#window = Math.max(1, o.window ?? DEFAULT_TRANSFER_WINDOW)
    this.#chunkBytes = Math.max(1, o.chunkBytes ?? DEFAULT_TRANSFER_CHUNK_BYTES)
    this.#lingerMs = o.lingerMs ?? DEFAULT_TRANSFER_LINGER_MS
  }

  /** The snapshot held for `to` after a broken attempt, and the offset its stream can resume from. */
  held(to: NodeId): { index: number; term: number; resumableFrom: number } | undefined {
    const h = this.#peers.get(to)?.held
    return h && { index: h.meta.index, term: h.meta.term, resumableFrom: h.stream.base }
  }

  /**
   * Sends a snapshot to `req.to`: the held one of an earlier broken attempt if it can be resumed
   * (see the top of this file), otherwise `req.snapshot`. Resolves once the receiver verified the
   * whole stream and accepted the Raft message; rejects (HoldfastError) when the attempt failed,
   * having sent no more than `window` unacknowledged chunks, and then keeps its snapshot for a retry.
   */
  send(req: SendRequest): Promise<void> {
    const p = this.#send(req)
    const tracked = p.catch(() => {}).finally(() => this.#active.delete(tracked))
    this.#active.add(tracked)
    return p
  }

  async #send(req: SendRequest): Promise<void> {
    const stats = req.stats ?? sendStats(req.snapshot.meta)
    stats.requestedIndex = req.snapshot.meta.index
    const peer = this.#peer(req.to)
    const seq = ++peer.seq
    const held = this.#unhold(peer)
    const fresh: Candidate = { meta: req.snapshot.meta, stream: new SnapshotStream(req.snapshot.chunks, () => req.snapshot.release()) }
    /** The snapshot this attempt sends, kept for a retry if the attempt fails. */
    let current: Candidate | undefined
    try {
      if (this.#closed) throw new HoldfastError('CLOSED', 'the snapshot sender is closed')
      let begun: Begun | undefined
      let sending: Candidate | undefined
      const trying = (c: Candidate): void => {
        current = c
        stats.index = c.meta.index
        stats.term = c.meta.term
        stats.reoffered = c === held
      }
      if (held && this.#reofferable(held, fresh.meta, req.firstIndex)) {
        trying(held)
        try {
          begun = await this.#begin(req.to, held.meta)
        } catch (err) {
          // The receiver refused it (it applied past it, for one): send the new one. Any other
          // failure fails this attempt and leaves the held one for the next.
          if (!isHoldfastError(err, 'INVALID_ARGUMENT')) throw err
          log('%s refused the held snapshot %s: %s', req.to, key(held.meta.index, held.meta.term), err.message)
        }
        if (begun !== undefined && begun.offset > 0 && held.stream.canStartAt(begun.offset)) {
          sending = held
        } else {
          log('dropping the held snapshot %s for %s: the receiver holds %s of it', key(held.meta.index, held.meta.term), req.to, begun ? `${begun.offset} bytes` : 'nothing')
          this.#release(held)
          current = undefined
        }
      } else {
        if (held) this.#release(held)
      }
      if (sending === undefined) {
        trying((sending = fresh))
        begun = await this.#begin(req.to, fresh.meta)
      } else {
        this.#release(fresh)
      }
      if (stats.reoffered) log('resuming the held snapshot %s to %s at %d (the core asked for %d)', key(stats.index, stats.term), req.to, begun!.offset, stats.requestedIndex)
      await this.#transfer(req, sending, begun!, stats)
      this.#release(sending)
      current = undefined
    } catch (err) {
      if (current) this.#hold(peer, seq, current, err)
      throw err
    } finally {
      if (current !== fresh) this.#release(fresh)
    }
  }

  /** Releases every held snapshot (the node stopped leading, or closes); resolves once they are released. */
  async releaseAll(): Promise<void> {
    const releasing: Promise<void>[] = []
    for (const peer of this.#peers.values()) {
      const h = this.#unhold(peer)
      if (h) releasing.push(this.#release(h))
    }
    await Promise.all(releasing)
  }

  /**
   * Releases every held snapshot and waits for the sends under way to end (the caller has closed
   * the transport, so they fail at once) and release theirs: the state machine's read
   * transactions must end while its environment is open. Sends after this fail with CLOSED.
   */
  async close(): Promise<void> {
    this.#closed = true
    await this.releaseAll()
    while (this.#active.size > 0) await Promise.all(this.#active)
  }

  /** Releases `c`'s source, tracked until it is done. */
  #release(c: Candidate): Promise<void> {
    const p = c.stream.release()
    const tracked = p.finally(() => this.#active.delete(tracked))
    this.#active.add(tracked)
    return p
  }

  #peer(to: NodeId): Peer {
    let p = this.#peers.get(to)
    if (!p) {
      p = { seq: 0, held: undefined }
      this.#peers.set(to, p)
    }
    return p
  }

  /** Takes the held snapshot out of `peer` (the caller uses or releases it). */
  #unhold(peer: Peer): Candidate | undefined {
    const h = peer.held
    if (!h) return undefined
    peer.held = undefined
    clearTimeout(h.timer)
    return { meta: h.meta, stream: h.stream }
  }

  /** Whether a held snapshot may be sent instead of `wanted`: intact, not newer, and covered by the log. */
  #reofferable(held: Candidate, wanted: SnapshotMeta, firstIndex: number): boolean {
    return held.stream.usable && held.meta.index <= wanted.index && held.meta.index >= firstIndex - 1
  }

  /** Keeps the snapshot of a failed attempt for a retry, if a retry could use it. */
  #hold(peer: Peer, seq: number, c: Candidate, err: unknown): void {
    // Nothing read means nothing the receiver could hold; CORRUPT_DATA means it discarded its copy
    // (or the source is damaged); a newer send to this peer supersedes this one.
    const useless = c.stream.end === 0 || !c.stream.usable || isHoldfastError(err, 'CORRUPT_DATA')
    if (this.#closed || seq !== peer.seq || useless) {
      this.#release(c)
      return
    }
    const old = this.#unhold(peer)
    if (old) this.#release(old)
    const timer = setTimeout(() => {
      if (peer.held?.timer !== timer) return
      peer.held = undefined
      log('the held snapshot %s lingered %d ms without a retry: released', key(c.meta.index, c.meta.term), this.#lingerMs)
      this.#release(c)
    }, this.#lingerMs)
    timer.unref()
    peer.held = { ...c, timer }
  }

  async #request(to: NodeId, method: string, body: unknown): Promise<Record<string, unknown>> {
    const reply = await this.#rpc.request(to, method, packr.pack(body), { timeoutMs: this.#timeoutMs })
    return unpackObject(reply, `${method} reply from ${to}`)
  }

  async #begin(to: NodeId, meta: SnapshotMeta): Promise<Begun> {
    const r = await this.#request(to, SNAPSHOT_METHOD.begin, { index: meta.index, term: meta.term })
    return { session: uint(r.session, 'session'), offset: uint(r.offset, 'offset') }
  }

  /** Streams `c` from `begun.offset` through `done`. */
  async #transfer(req: SendRequest, c: Candidate, begun: Begun, stats: SendStats): Promise<void> {
    const { to } = req
    const { index, term } = c.meta
    const { session, offset: start } = begun
    const stream = c.stream
    stats.startOffset = start
    let acked = start
    const progress = throttled((totalBytes?: number) => req.onProgress?.({ index, term, bytes: acked, totalBytes, startOffset: start }))
    progress.now()
    // Bytes the receiver holds are read (if not yet) and hashed, not sent.
    await stream.skipTo(start)
    /** The first chunk of a resumed session proves the sender's bytes before it match the receiver's. */
    let prefix = start > 0 && start <= stream.end ? stream.digestBefore(start) : undefined
    const inflight = new InFlight(this.#window)
    let next = start
    for (;;) {
      // What the receiver acknowledged is never sent again: forget it (a retry starts at or after it).
      stream.drop(Math.min(acked, next))
      const data = await stream.read(next, this.#chunkBytes)
      if (data.byteLength === 0) break
      const offset = next
      next += data.byteLength
      const body: Record<string, unknown> = { session, offset, data }
      if (prefix !== undefined) {
        body.prefix = prefix
        prefix = undefined
      }
      stats.sentBytes += data.byteLength
      await inflight.add(
        this.#request(to, SNAPSHOT_METHOD.chunk, body).then((r) => {
          const n = uint(r.next, 'next')
          if (n < offset + data.byteLength) throw new HoldfastError('CORRUPT_DATA', `${to} acknowledged ${n} bytes, expected ${offset + data.byteLength}`)
          acked = Math.max(acked, n)
          progress()
        }),
      )
    }
    await inflight.drain()
    const length = stream.length!
    stream.drop(length)
    stats.totalBytes = length
    // When start > length the receiver holds more than this stream has: done's digest tells it so.
    await this.#request(to, SNAPSHOT_METHOD.done, { session, bytes: length, sha256: stream.digestBefore(length), message: req.message(c.meta) })
    acked = length
    progress.now(length)
  }
}

interface Begun {
  readonly session: number
  /** Where the receiver's copy ends: the attempt starts there. */
  readonly offset: number
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
