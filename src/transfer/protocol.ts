/**
 * Snapshot transfer between peers, the protocol (sender.ts and receiver.ts are its two sides): a
 * sender streams the state machine's snapshot bytes to a receiver that spools them to a file,
 * verifies a digest of the whole stream, and only then hands the Raft snapshot message to its core
 * (whose install then restores from the file).
 *
 * Three PeerRpc methods, msgpack payloads:
 *
 * ```
 * begin {index, term}                          → {session, offset}
 * chunk {session, offset, data, prefix?}       → {next}      next: bytes now held
 * done  {session, bytes, sha256, message}      → {bytes}     message: the encoded Raft snapshot message
 * ```
 *
 * A transfer is identified by the snapshot's (index, term), not by its sender: every replica's
 * stream of the state at one applied index is the same bytes (the same records in key order,
 * framed by the same rules, and a header without anything replica-specific: see
 * KvStateMachine.snapshot), so a transfer broken by a lost connection resumes at the receiver's
 * held offset when any peer sends that snapshot again. The begin reply says where to start; the
 * sender skips (but hashes) the bytes before it. The first chunk of a resumed session carries the
 * SHA-256 of the sender's bytes before the offset, so a stream that does differ (another version, a
 * bug) is caught: a receiver whose held prefix differs discards it, and the next attempt starts at
 * 0. A begin for another snapshot replaces the partial.
 *
 * The leader's core always asks for a snapshot of its latest applied state, which on a busy cluster
 * is a new (index, term) at every retry; the sender therefore keeps a broken attempt's snapshot for
 * a while and offers it again (sender.ts: when and why that is safe).
 *
 * Flow control: the sender keeps at most `window` chunks of at most `chunkBytes` unacknowledged;
 * the receiver refuses a sender that runs further ahead than MAX_UNWRITTEN_BYTES of unwritten data.
 * Chunks are accepted strictly in order (a chunk must start where the held bytes end; a duplicate
 * of held bytes is acknowledged and ignored); anything else is refused and the sender's attempt
 * fails, to be retried (and resumed) by the Raft core's next snapshot message.
 *
 * Spool layout, under `<dataDir>/snapshot-incoming/`: `<index>-<term>-<n>.partial` while receiving,
 * renamed to `<index>-<term>-<n>.snap` once its digest matched and it was fsynced, removed once
 * installed. The directory is emptied when the receiver is created (a partial does not survive a
 * restart: the crash-safe install does not need it).
 */
import createDebug from 'debug'
import { Packr } from 'msgpackr'
import { HoldfastError } from '../errors.js'

export const log = createDebug('holdfast:snapshot')
export const packr = new Packr({ useRecords: false, mapsAsObjects: true, moreTypes: false })

/** The RPC methods of a snapshot transfer. */
export const SNAPSHOT_METHOD = {
  begin: 'holdfast.snapshot.begin',
  chunk: 'holdfast.snapshot.chunk',
  done: 'holdfast.snapshot.done',
} as const

/** The directory under the data directory that receives snapshots. */
export const SNAPSHOT_SPOOL_DIR = 'snapshot-incoming'
/**
 * Bytes per chunk a sender sends: the most a receiver accepts. Large chunks keep per-chunk costs
 * (a request, its encoding, a spool write, an acknowledgement) small against the bytes moved.
 * @default 1 MiB
 */
export const DEFAULT_TRANSFER_CHUNK_BYTES = 1024 * 1024
/**
 * Unacknowledged chunks a sender keeps in flight: enough to keep the link busy while the receiver
 * writes and acknowledges, and window × chunk stays within MAX_UNWRITTEN_BYTES (and well within
 * the swarm transport's per-connection queue) so a receiver never refuses a sender using the
 * defaults. @default 4
 */
export const DEFAULT_TRANSFER_WINDOW = 4
/** The largest chunk a receiver accepts. */
export const MAX_TRANSFER_CHUNK_BYTES = 1024 * 1024
/** Accepted but not yet written bytes a receiver holds in memory before it refuses more. */
export const MAX_UNWRITTEN_BYTES = 8 * MAX_TRANSFER_CHUNK_BYTES
/** Progress is reported at most this often (plus at the start and the end of each attempt). */
export const PROGRESS_INTERVAL_MS = 250
/** How long a sender keeps the snapshot of a broken transfer for a retry to resume. @default 60 s */
export const DEFAULT_TRANSFER_LINGER_MS = 60_000
/** A completed transfer that no install claimed is dropped after this long. */
export const COMPLETED_TTL_MS = 60_000
/** Bytes of a SHA-256 digest. */
export const DIGEST_BYTES = 32

/** Progress of one attempt, as reported to onProgress. */
export interface TransferProgress {
  readonly index: number
  readonly term: number
  /** Bytes of the stream the receiver holds (acknowledged, for a sender). */
  readonly bytes: number
  /** The stream's length, once known (at the end). */
  readonly totalBytes?: number | undefined
  /** Where this attempt started: above 0 when it resumed a partial transfer. */
  readonly startOffset: number
}

export function key(index: number, term: number): string {
  return `${index}-${term}`
}

export function unpackObject(bytes: Uint8Array, what: string): Record<string, unknown> {
  let v: unknown
  try {
    v = packr.unpack(bytes)
  } catch (err) {
    throw new HoldfastError('DECODE_ERROR', `${what}: undecodable payload (${(err as Error).message})`)
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v) || v instanceof Uint8Array) throw new HoldfastError('INVALID_ARGUMENT', `${what}: expected a map`)
  return v as Record<string, unknown>
}

export function uint(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new HoldfastError('INVALID_ARGUMENT', `\`${what}\` must be a non-negative integer`)
  return v
}

export function positive(v: unknown, what: string): number {
  const n = uint(v, what)
  if (n === 0) throw new HoldfastError('INVALID_ARGUMENT', `\`${what}\` must be positive`)
  return n
}

/** Calls `fn` at most every PROGRESS_INTERVAL_MS; `.now()` calls it at once. */
export function throttled(fn: (totalBytes?: number) => void): (() => void) & { now(totalBytes?: number): void } {
  let last = 0
  const call = (totalBytes?: number): void => {
    last = Date.now()
    try {
      fn(totalBytes)
    } catch (err) {
      log('a progress listener threw: %O', err)
    }
  }
  const t = (): void => {
    if (Date.now() - last >= PROGRESS_INTERVAL_MS) call()
  }
  t.now = call
  return t
}
