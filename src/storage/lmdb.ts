import { mkdir } from 'node:fs/promises'
import { resolve } from 'node:path'
import createDebug from 'debug'
import { open as openLmdb } from 'lmdb'
import type { Database, DatabaseOptions, Key, RootDatabase, Transaction } from 'lmdb'
import { HoldfastError, isHoldfastError } from '../errors.js'
import type { Entry, HardState, SnapshotMeta } from '../core/types.js'
import { entrySize } from '../core/types.js'
import type { LogStorage, LogUpdate } from './types.js'
import {
  decodeEntry,
  decodeFormat,
  decodeHardState,
  decodeSnapshotMeta,
  encodeEntry,
  encodeFormat,
  encodeHardState,
  encodeSnapshotMeta,
} from './codec.js'
import { checkFileExtent, checkFileHeader } from './lmdb-file.js'

const log = createDebug('holdfast:storage')

/** The LMDB data file inside the node's data directory (its lock file is `holdfast.mdb-lock`). */
export const DATA_FILE = 'holdfast.mdb'
/** Sub-database of log entries: key = entry index (a number key; LMDB order is numeric order). */
export const LOG_DB = 'raft.log'
/** Sub-database of single records: 'format', 'hardState', 'snapshot'. */
export const META_DB = 'raft.meta'
/** Sub-database names starting with this are reserved for log storage. */
const RESERVED_PREFIX = 'raft.'
/** The layout (which sub-databases and keys exist, what they mean) this build reads and writes. */
export const LAYOUT_VERSION = 1
/** @internal Default for LmdbStorageOptions.maxDbs. */
export const DEFAULT_MAX_DBS = 64

/** Data files open in this process. */
const openPaths = new Set<string>()

const EMPTY_HARD_STATE: HardState = { term: 0, vote: null, commit: 0 }
const EMPTY_SNAPSHOT: SnapshotMeta = { index: 0, term: 0, membership: { voters: [], learners: [] } }

/** Options of LmdbStorage.open. */
export interface LmdbStorageOptions {
  /**
   * The maximum number of named sub-databases in the environment, the two of log storage included;
   * the rest are for the state machine (see LmdbStorage.openDb). Only takes effect when the
   * environment is first opened in this process.
   * @default 64
   */
  readonly maxDbs?: number
  /**
   * Walk every live page of the data file at open, checking it lies inside the file and carries
   * its own page number, even when the file's size alone shows nothing can be missing. Costs a
   * read of every tree page; the walk runs anyway whenever the size check is inconclusive.
   * @default false
   */
  readonly verifyPages?: boolean
}

/**
 * The in-memory view of the stored log. Invariant: the log database holds exactly the keys
 * snapshot.index + 1 .. last, and `terms` describes their terms. Never mutated once published.
 */
interface LogState {
  readonly snapshot: SnapshotMeta
  readonly last: number
  readonly hardState: HardState
  readonly terms: TermRuns
}

/**
 * The terms of the stored entries, run-length encoded (starts[i] is the first index of the run
 * with terms[i]), so term() needs no disk read. Runs are few: one per leader change in the log.
 */
class TermRuns {
  constructor(
    readonly starts: number[] = [],
    readonly terms: number[] = [],
  ) {}

  clone(): TermRuns {
    return new TermRuns(this.starts.slice(), this.terms.slice())
  }

  /** The term of a stored index (the caller checks the index is stored). */
  at(index: number): number | undefined {
    let lo = 0
    let hi = this.starts.length - 1
    if (hi < 0 || index < this.starts[0]!) return undefined
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1
      if (this.starts[mid]! <= index) lo = mid
      else hi = mid - 1
    }
    return this.terms[lo]
  }

  push(index: number, term: number): void {
    if (this.terms[this.terms.length - 1] !== term) {
      this.starts.push(index)
      this.terms.push(term)
    }
  }

  /** Forgets every index >= from. */
  truncateFrom(from: number): void {
    let n = this.starts.length
    while (n > 0 && this.starts[n - 1]! >= from) n--
    this.starts.length = n
    this.terms.length = n
  }

  /** Forgets every index <= through. */
  dropThrough(through: number): void {
    let drop = 0
    while (drop + 1 < this.starts.length && this.starts[drop + 1]! <= through + 1) drop++
    this.starts.splice(0, drop)
    this.terms.splice(0, drop)
    if (this.starts.length > 0 && this.starts[0]! <= through) this.starts[0] = through + 1
  }
}

/** One write within a save's transaction. */
type Op =
  | { readonly kind: 'delete'; readonly from: number; readonly to: number }
  | { readonly kind: 'put'; readonly index: number; readonly record: Uint8Array }
  | { readonly kind: 'meta'; readonly key: 'hardState' | 'snapshot'; readonly record: Uint8Array }

/** A save waiting for (or in) a write transaction. */
interface PendingSave {
  readonly ops: readonly Op[]
  readonly state: LogState
  readonly sync: boolean
  /** Runs inside the save's transaction, after its writes (see save). */
  readonly within: (() => void) | undefined
  readonly resolve: () => void
  readonly reject: (err: unknown) => void
}

/**
 * Plans one LogUpdate against `s`, with exactly the semantics of MemoryStorage.apply: snapshot,
 * then entries, then hard state, then compaction. Throws (CONTRACT_VIOLATION, INVALID_ARGUMENT)
 * before producing anything when the update is invalid, so a rejected save changes nothing.
 */
function plan(s: LogState, u: LogUpdate): { state: LogState; ops: Op[] } {
  const ops: Op[] = []
  let snapshot = s.snapshot
  let last = s.last
  let terms = s.terms
  const termAt = (i: number): number | undefined =>
    i === snapshot.index ? snapshot.term : i > snapshot.index && i <= last ? terms.at(i) : undefined
  const deleteRange = (from: number, to: number): void => {
    if (from <= to) ops.push({ kind: 'delete', from, to })
  }

  if (u.snapshot) {
    const snap = u.snapshot
    terms = terms.clone()
    // Keep entries after the snapshot only if they continue it (the same term at snap.index).
    if (termAt(snap.index) === snap.term && snap.index <= last) {
      deleteRange(snapshot.index + 1, snap.index)
      terms.dropThrough(snap.index)
    } else {
      deleteRange(snapshot.index + 1, last)
      terms = new TermRuns()
      last = snap.index
    }
    snapshot = snap
    ops.push({ kind: 'meta', key: 'snapshot', record: encodeSnapshotMeta(snap) })
  }

  const entries = u.entries ?? []
  if (entries.length > 0) {
    const first = entries[0]!.index
    if (first < snapshot.index + 1 || first > last + 1) {
      throw new HoldfastError('CONTRACT_VIOLATION', `append at ${first} leaves a gap or rewrites compacted entries (stored ${snapshot.index + 1}..${last})`)
    }
    entries.forEach((e, i) => {
      if (e.index !== first + i) throw new HoldfastError('CONTRACT_VIOLATION', `appended entries are not consecutive: entry ${i} has index ${e.index}, expected ${first + i}`)
    })
    const newLast = first + entries.length - 1
    deleteRange(newLast + 1, last)
    // The common case, appending entries of the last run's term, leaves the runs as they are.
    const lastTerm = terms.terms[terms.terms.length - 1]
    if (first <= last || entries.some((e) => e.term !== lastTerm)) {
      if (terms === s.terms) terms = terms.clone()
      terms.truncateFrom(first)
      for (const e of entries) terms.push(e.index, e.term)
    }
    for (const e of entries) ops.push({ kind: 'put', index: e.index, record: encodeEntry(e) })
    last = newLast
  }

  const hardState = u.hardState ?? s.hardState
  if (u.hardState) ops.push({ kind: 'meta', key: 'hardState', record: encodeHardState(u.hardState) })

  const compact = u.compact
  if (compact && compact.index > snapshot.index) {
    if (compact.index > last || termAt(compact.index) !== compact.term) {
      throw new HoldfastError('CONTRACT_VIOLATION', `compaction point ${compact.index}/${compact.term} does not match the stored log`)
    }
    deleteRange(snapshot.index + 1, compact.index)
    if (terms === s.terms) terms = terms.clone()
    terms.dropThrough(compact.index)
    snapshot = compact
    ops.push({ kind: 'meta', key: 'snapshot', record: encodeSnapshotMeta(compact) })
  }

  return { state: { snapshot, last, hardState, terms }, ops }
}

/**
 * Raft log storage in LMDB (lmdb-js), in one environment: the file `holdfast.mdb` in the node's
 * data directory, with named sub-databases `raft.log` (entry records keyed by index) and
 * `raft.meta` (format, hard state and snapshot meta records). Every record carries a version and
 * a CRC-32 (src/storage/codec.ts). The state machine opens its own sub-databases in the same
 * environment with openDb(), so its effects and applied index can commit in one transaction.
 *
 * Reads are synchronous. First/last index, snapshot meta, hard state and the term of every stored
 * entry are held in memory; entries() reads LMDB. All of it is one consistent view, which moves
 * from one committed save to the next when that save's transaction commits: a read issued after
 * save() is called sees the old state until the transaction commits, then the new state, possibly
 * before save() resolves (when it still waits for the flush to disk). While a transaction is in
 * flight, entries() reads through a read transaction pinned to the published state.
 *
 * Writes: saves are applied in call order. Saves called while a transaction is in flight are
 * grouped into the next transaction (group commit: one commit and one fsync for all of them),
 * applied in one child transaction, so a failure leaves nothing of them behind even when other
 * users of the environment share the LMDB transaction. save() resolves in call order. An invalid
 * update is refused when save() is called, against the state all earlier saves will leave.
 *
 * Durability: the environment uses lmdb-js `overlappingSync` (except on Windows, where lmdb-js
 * does not support it and every commit is synchronous and durable): a commit is visible at once
 * and is fdatasync'd outside the write lock, so the next transaction need not wait for it.
 * save(u, true) resolves only after awaiting `flushed` past its commit, i.e. after the fdatasync
 * that covers it; save(u, false) resolves at commit (but never before an earlier save). After a
 * process crash LMDB recovers the last commit (its pages are in the OS cache); after an OS crash,
 * the last flushed one. Synchronous commits (overlappingSync off) measured the same here; this
 * mode is lmdb-js's default on Linux and separates "visible" from "durable", which the state
 * machine's transactions (that need no durability of their own) can use. Measured
 * on this project's VM with an idle disk: a durable save of one entry takes about 0.6 ms (as a
 * bare lmdb-js put + flushed does); with 64 durable saves in flight, about 45k saves/s.
 *
 * Bad data: open() refuses (CORRUPT_DATA) a data file shorter than the pages its live trees
 * use, an unknown layout or record version, and any record failing its checksum (the whole log is
 * verified at open); entries() re-verifies every record it reads. A failed write transaction
 * rejects its saves and every later one (CLOSED, with the cause); reads keep the last committed state.
 */
export class LmdbStorage implements LogStorage {
  readonly #path: string
  readonly #root: RootDatabase
  readonly #log: Database<Uint8Array, number>
  readonly #meta: Database<Uint8Array, string>
  /** The published state: what reads see. */
  #state: LogState
  /** The state after every accepted save, committed or not: what new saves are planned against. */
  #planned: LogState
  #queue: PendingSave[] = []
  #writing = false
  /** Pins entries() to #state while a transaction of ours is in flight (LMDB may be ahead). */
  #pin: Transaction | undefined
  /** The last accepted save (close() waits for it). */
  #tail: Promise<void> = Promise.resolve()
  /** Settles when the last committed batch's saves have resolved: batches resolve in order. */
  #lastBatch: Promise<void> = Promise.resolve()
  #failure: HoldfastError | undefined
  #closed = false

  private constructor(path: string, root: RootDatabase, logDb: Database<Uint8Array, number>, metaDb: Database<Uint8Array, string>, state: LogState) {
    this.#path = path
    this.#root = root
    this.#log = logDb
    this.#meta = metaDb
    this.#state = state
    this.#planned = state
  }

  /**
   * Opens (creating if needed) the log storage in `dir`. Rejects with CORRUPT_DATA when the data
   * there is truncated, fails a checksum, or was written in an unknown format.
   */
  static async open(dir: string, options: LmdbStorageOptions = {}): Promise<LmdbStorage> {
    await mkdir(dir, { recursive: true })
    const path = resolve(dir, DATA_FILE)
    // lmdb-js shares one environment per path within a process: two storages would interleave
    // two logs' writes. (Across processes, the node's data directory is its own.)
    if (openPaths.has(path)) throw new HoldfastError('CONTRACT_VIOLATION', `log storage ${path} is already open in this process`)
    openPaths.add(path)
    try {
      return await LmdbStorage.#open(path, options)
    } catch (err) {
      openPaths.delete(path)
      throw err
    }
  }

  static async #open(path: string, options: LmdbStorageOptions): Promise<LmdbStorage> {
    checkFileHeader(path)
    let root: RootDatabase
    try {
      root = openLmdb(path, {
        noSubdir: true,
        maxDbs: options.maxDbs ?? DEFAULT_MAX_DBS,
        overlappingSync: process.platform !== 'win32',
      })
    } catch (err) {
      throw lmdbFailure(path, 'open', err)
    }
    try {
      // Before any tree page is touched: a page past the end of the file would be a SIGBUS.
      checkFileExtent(path, root, options.verifyPages ?? false)
      const logDb = root.openDB<Uint8Array, number>(LOG_DB, { encoding: 'binary' })
      const metaDb = root.openDB<Uint8Array, string>(META_DB, { encoding: 'binary' })
      const state = load(path, logDb, metaDb)
      if (state === undefined) {
        await root.transaction(() => {
          metaDb.putSync('format', encodeFormat(LAYOUT_VERSION))
        })
        await root.flushed
        log('created %s', path)
      }
      const s = state ?? { snapshot: EMPTY_SNAPSHOT, last: 0, hardState: EMPTY_HARD_STATE, terms: new TermRuns() }
      log('opened %s: entries %d..%d, term %d', path, s.snapshot.index + 1, s.last, s.hardState.term)
      return new LmdbStorage(path, root, logDb, metaDb, s)
    } catch (err) {
      await root.close().catch(() => {})
      throw isHoldfastError(err) ? err : lmdbFailure(path, 'open', err)
    }
  }

  /**
   * The root LMDB environment. Use it for transactions spanning the state machine's
   * sub-databases (`env.transaction`, `env.childTransaction`); do not write log storage's own
   * sub-databases (`raft.*`) through it.
   */
  get env(): RootDatabase {
    return this.#root
  }

  /** The path of the LMDB data file. */
  get path(): string {
    return this.#path
  }

  /**
   * Opens (creating if needed) a named sub-database in the same environment, for the state machine.
   * Writes to it can share a transaction with other sub-databases of `env`; use
   * `env.childTransaction` for a group of writes that must be atomic on its own (a plain
   * `transaction` callback that throws still commits the writes it made).
   */
  openDb<V = unknown, K extends Key = Key>(name: string, options: DatabaseOptions = {}): Database<V, K> {
    if (name.startsWith(RESERVED_PREFIX)) {
      throw new HoldfastError('INVALID_ARGUMENT', `sub-database names starting with '${RESERVED_PREFIX}' are reserved for log storage`)
    }
    this.#checkOpen()
    return this.#root.openDB<V, K>(name, options)
  }

  hardState(): HardState {
    return this.#state.hardState
  }

  snapshotMeta(): SnapshotMeta {
    return this.#state.snapshot
  }

  firstIndex(): number {
    return this.#state.snapshot.index + 1
  }

  lastIndex(): number {
    return this.#state.last
  }

  term(index: number): number | undefined {
    const s = this.#state
    if (index === s.snapshot.index) return s.snapshot.term
    if (index <= s.snapshot.index || index > s.last) return undefined
    return s.terms.at(index)
  }

  entries(lo: number, hi: number, maxBytes = Infinity): Entry[] {
    const s = this.#state
    const first = s.snapshot.index + 1
    if (lo < first || hi > s.last + 1 || lo > hi) {
      throw new HoldfastError('COMPACTED', `entries [${lo}, ${hi}) outside stored range [${first}, ${s.last}]`)
    }
    this.#checkOpen()
    const out: Entry[] = []
    if (lo === hi) return out
    let bytes = 0
    let expect = lo
    try {
      const range = this.#log.getRange(this.#pin ? { start: lo, end: hi, transaction: this.#pin } : { start: lo, end: hi })
      for (const { key, value } of range) {
        if (key !== expect) throw new HoldfastError('CORRUPT_DATA', `${this.#where(expect)}: entry is missing (found key ${String(key)})`)
        const at = expect
        const e = decodeEntry(value, () => this.#where(at), expect)
        bytes += entrySize(e)
        if (out.length > 0 && bytes > maxBytes) break
        out.push(e)
        expect++
      }
    } catch (err) {
      throw isHoldfastError(err) ? err : lmdbFailure(this.#path, 'read', err)
    }
    if (out.length === 0 || (expect < hi && bytes <= maxBytes)) {
      throw new HoldfastError('CORRUPT_DATA', `${this.#where(expect)}: entry is missing`)
    }
    return out
  }

  /**
   * Applies `update` atomically (see the class comment for ordering, visibility and durability).
   * An invalid update rejects at once (CONTRACT_VIOLATION, INVALID_ARGUMENT) and changes nothing.
   * `within`, if given, runs synchronously inside the same LMDB transaction after the update's
   * writes, for other writes to the environment that must commit (and sync) with it, such as the
   * state machine's apply. If it throws, the transaction aborts and the storage fails as on any
   * failed write (this save and every later one reject).
   */
  save(update: LogUpdate, sync: boolean, within?: () => void): Promise<void> {
    if (this.#closed) return Promise.reject(new HoldfastError('CLOSED', `log storage ${this.#path} is closed`))
    if (this.#failure) return Promise.reject(this.#failure)
    let planned: { state: LogState; ops: Op[] }
    try {
      planned = plan(this.#planned, update)
    } catch (err) {
      return Promise.reject(err)
    }
    this.#planned = planned.state
    const done = new Promise<void>((resolve, reject) => {
      this.#queue.push({ ops: planned.ops, state: planned.state, sync, within, resolve, reject })
    })
    this.#tail = done
    if (!this.#writing) this.#write()
    return done
  }

  /** Waits for accepted saves to settle, then closes the environment. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    await this.#tail.catch(() => {})
    this.#pin?.done()
    this.#pin = undefined
    await this.#root.close()
    openPaths.delete(this.#path)
    log('closed %s', this.#path)
  }

  /** Starts one transaction for every queued save. Only one of ours is in flight at a time. */
  #write(): void {
    const batch = this.#queue
    this.#queue = []
    this.#writing = true
    // LMDB will be ahead of #state from the commit until #committed runs: pin reads to #state.
    this.#pin ??= this.#root.useReadTransaction()
    this.#root.childTransaction(() => {
      for (const p of batch) {
        this.#apply(p.ops)
        p.within?.()
      }
    }).then(
      () => this.#committed(batch),
      (err: unknown) => this.#failed(batch, err),
    )
  }

  #apply(ops: readonly Op[]): void {
    for (const op of ops) {
      if (op.kind === 'delete') for (let i = op.from; i <= op.to; i++) this.#log.removeSync(i)
      else if (op.kind === 'put') this.#log.putSync(op.index, op.record)
      else this.#meta.putSync(op.key, op.record)
    }
  }

  #committed(batch: readonly PendingSave[]): void {
    this.#state = batch[batch.length - 1]!.state
    // Nothing of ours is in flight now, so LMDB's latest state is #state: unpin.
    this.#pin?.done()
    this.#pin = undefined
    this.#root.resetReadTxn()
    this.#writing = false
    // A batch resolves after the one before it, and after its flush when any save asked for sync
    // (a sync save then also waits for the flush of saves grouped before it: flushes are ordered).
    // `flushed` is a thenable naming the latest batch when its `then` runs: call it now, before
    // the next batch starts (Promise.all would call it a microtask later, waiting one flush too many).
    const flushed = batch.some((p) => p.sync) ? this.#root.flushed.then(() => undefined) : undefined
    const resolved = Promise.all([this.#lastBatch, flushed]).then(() => {
      if (this.#failure) throw this.#failure
      for (const p of batch) p.resolve()
    })
    this.#lastBatch = resolved.catch((err: unknown) => {
      this.#failure ??= this.#failureOf(err)
      for (const p of batch) p.reject(this.#failure)
    })
    if (this.#queue.length > 0) this.#write()
  }

  /** The in-flight batch's transaction failed. */
  #failed(batch: readonly PendingSave[], err: unknown): void {
    // The batch's child transaction aborted, so the log on disk is still #state; but queued saves
    // were planned on top of the failed ones, and a failed disk is no place to keep a Raft log.
    this.#failure ??= this.#failureOf(err)
    this.#pin?.done()
    this.#pin = undefined
    this.#writing = false
    for (const p of [...batch, ...this.#queue]) p.reject(this.#failure)
    this.#queue = []
  }

  #failureOf(err: unknown): HoldfastError {
    log('write failed: %O', err)
    return new HoldfastError('CLOSED', `log storage ${this.#path} failed a write and accepts no more: ${errorMessage(err)}`, { cause: err })
  }

  #checkOpen(): void {
    if (this.#closed) throw new HoldfastError('CLOSED', `log storage ${this.#path} is closed`)
  }

  #where(index: number): string {
    return `${this.#path} ${LOG_DB} entry ${index}`
  }
}

/** Opens log storage in `dir`: shorthand for LmdbStorage.open. */
export function openLmdbStorage(dir: string, options?: LmdbStorageOptions): Promise<LmdbStorage> {
  return LmdbStorage.open(dir, options)
}

/** Reads and verifies the stored state; undefined for a new, empty environment. */
function load(path: string, logDb: Database<Uint8Array, number>, metaDb: Database<Uint8Array, string>): LogState | undefined {
  const where = (key: string): string => `${path} ${META_DB} record '${key}'`
  const format = metaDb.getBinary('format')
  if (format === undefined) {
    if (metaDb.getKeysCount() > 0 || logDb.getKeysCount() > 0) {
      throw new HoldfastError('CORRUPT_DATA', `${path}: data without a format record (not written by holdfast, or damaged)`)
    }
    return undefined
  }
  const version = decodeFormat(format, where('format'))
  if (version !== LAYOUT_VERSION) {
    throw new HoldfastError('CORRUPT_DATA', `${path}: storage layout version ${version} is not supported (this build reads version ${LAYOUT_VERSION}); was it written by a newer holdfast?`)
  }
  const hsBytes = metaDb.getBinary('hardState')
  const hardState = hsBytes === undefined ? EMPTY_HARD_STATE : decodeHardState(hsBytes, where('hardState'))
  const snapBytes = metaDb.getBinary('snapshot')
  const snapshot = snapBytes === undefined ? EMPTY_SNAPSHOT : decodeSnapshotMeta(snapBytes, where('snapshot'))

  // Verify every stored entry (checksum, index, contiguity) and collect their terms.
  const terms = new TermRuns()
  let expect = snapshot.index + 1
  for (const { key, value } of logDb.getRange({})) {
    const at = (): string => `${path} ${LOG_DB} entry ${String(key)}`
    if (key !== expect) {
      throw new HoldfastError('CORRUPT_DATA', `${at()}: expected entry ${expect} (the log must be contiguous after snapshot ${snapshot.index})`)
    }
    const e = decodeEntry(value, at, expect)
    terms.push(e.index, e.term)
    expect++
  }
  return { snapshot, last: expect - 1, hardState, terms }
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

/** LMDB's own corruption and version errors become CORRUPT_DATA; anything else keeps its cause. */
function lmdbFailure(path: string, op: string, err: unknown): HoldfastError {
  const msg = errorMessage(err)
  if (/MDB_(CORRUPTED|PAGE_NOTFOUND|INVALID|VERSION_MISMATCH)/.test(msg)) {
    return new HoldfastError('CORRUPT_DATA', `${path}: LMDB ${op} failed, the data file is damaged: ${msg}`, { cause: err })
  }
  return new HoldfastError('CLOSED', `${path}: LMDB ${op} failed: ${msg}`, { cause: err })
}
