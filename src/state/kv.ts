/**
 * The replicated key-value state machine: buckets of keys with revisions, compare-and-set,
 * all-or-nothing txns, deterministic user commands, a change history for watchers, and
 * checksummed snapshots. It lives in the LMDB environment of the Raft log (LmdbStorage.env), in
 * its own sub-databases (layout.ts), so that the effects of applied entries and the applied
 * index commit in one transaction: apply is exactly-once across crashes.
 */
import createDebug from 'debug'
import type { Database, RootDatabase, Transaction } from 'lmdb'
import type { Entry } from '../core/types.js'
import { HoldfastError, isHoldfastError } from '../errors.js'
import { DEFAULT_MAX_COMMAND_SIZE, DEFAULT_MAX_VALUE_SIZE, MAX_COMMAND_NAME_BYTES, checkBucket, decodeCommand, encodeCommand } from './commands.js'
import type { Command, ResolvedCommand, Value } from './commands.js'
import { INITIAL_STATE, RecordKind, changeKey, decodeChange, decodeState, encodeState, splitDataKey, verifyRecord } from './layout.js'
import type { Change, StoredState } from './layout.js'
import { DEFAULT_SNAPSHOT_CHUNK_SIZE, readSnapshot, writeSnapshot } from './snapshot.js'
import type { KvSnapshotMeta, SnapshotRecord } from './snapshot.js'
import { EntryTx, listRange, readKey } from './tx.js'
import type { CommandTx, DeleteResult, KeyValue, ListOptions, PutResult, Store } from './tx.js'
import { watch } from './watch.js'
import type { WatchOptions } from './watch.js'

const log = createDebug('holdfast:state')

/** Default of KvOptions.changeRetention. */
export const DEFAULT_CHANGE_RETENTION = 10_000
const STATE_KEY = 'state'
/** transactionSync flags: abortable (child transactions need it) and committed before returning. */
const TXN_COMMIT = 0x1 | 0x2
/** ... and not waiting for the flush to disk (lmdb-js NO_SYNC_FLUSH). */
const TXN_NO_FLUSH_WAIT = 0x10000
/** Record bytes restore() writes per transaction (see restore). */
export const RESTORE_COMMIT_BYTES = 8 * 1024 * 1024
/** putSync option: MDB_APPEND, for keys written in increasing order into an empty database. */
const APPEND = { append: true } as const

/** Settings of a KvStateMachine. All replicas of a cluster must use the same handlers (see register). */
export interface KvOptions {
  /**
   * The prefix of the state machine's sub-database names (`<name>.meta`, `<name>.data.0`, ...).
   * @default 'kv'
   */
  readonly name?: string
  /** The value-size limit of encode() (see EncodeOptions.maxValueSize). @default 1048576 (1 MiB) */
  readonly maxValueSize?: number
  /** The command-size limit of encode() (see EncodeOptions.maxCommandSize). @default 4194304 (4 MiB) */
  readonly maxCommandSize?: number
  /**
   * How many revisions of change history compactChanges() keeps when called without an argument.
   * @default 10000
   */
  readonly changeRetention?: number
  /** The approximate size of snapshot chunks, in bytes. @default 65536 */
  readonly snapshotChunkSize?: number
  /**
   * Make apply() wait until its transaction is flushed to disk. Not needed for exactly-once:
   * effects and applied index commit together, and after a crash unflushed entries are simply
   * applied again from the (durable) log.
   * @default false
   */
  readonly durableApply?: boolean
}

export type { PutResult, DeleteResult, KeyValue, ListOptions, CommandTx }

/** The result of a txn command: which branch ran and each of its ops' results, in order. */
export interface TxnResult {
  readonly revision: number
  /** True when every compare held and the success ops ran; false when the failure ops ran. */
  readonly succeeded: boolean
  readonly results: readonly (PutResult | DeleteResult)[]
}

/** The result of a call command: what the handler returned. */
export interface CallResult {
  readonly revision: number
  readonly value: unknown
}

/** The result of a setFence command: the current token after it (a lower token leaves it as it was). */
export interface FenceResult {
  readonly fence: number
}

export type CommandResult = PutResult | DeleteResult | TxnResult | CallResult | FenceResult

/**
 * The outcome of one applied entry. A failed entry changed nothing (but is applied: its index is
 * passed, and every replica fails it the same way). Entries at or below the applied index are
 * `skipped`; membership and empty (no-op) entries succeed with result undefined.
 */
export type ApplyResult =
  | { readonly index: number; readonly ok: true; readonly result: CommandResult | undefined; readonly skipped?: true }
  | { readonly index: number; readonly ok: false; readonly error: HoldfastError }

/**
 * A deterministic command: runs inside the apply transaction on every replica, so it must depend
 * on nothing but `tx` and `args` (no clock, randomness, I/O or mutable outside state) and must be
 * synchronous. Throwing fails its entry alone and rolls back its writes; a HoldfastError keeps
 * its code, anything else becomes COMMAND_FAILED. Its writes are not size-limited: bound them.
 */
export type CommandHandler = (tx: CommandTx, args: Value | undefined) => unknown

/** Where a change-history read starts: after every change of `revision`, or after change `seq` of it. */
export interface ChangePosition {
  readonly revision: number
  readonly seq?: number | undefined
}

/** Filters and paging of change-history reads. */
export interface ChangesOptions {
  /** Only changes of this bucket; `null` for every bucket. @default 'default' */
  readonly bucket?: string | null | undefined
  /** Only keys starting with this. @default '' */
  readonly prefix?: string | undefined
  /** At most this many changes. @default unlimited */
  readonly limit?: number | undefined
}

/** Fired after each committed apply, restore, and at close. */
export type KvEvent =
  | { readonly type: 'apply'; readonly appliedIndex: number; readonly changes: readonly Change[] }
  | { readonly type: 'restore'; readonly appliedIndex: number }
  | { readonly type: 'close' }

/** A consistent snapshot being read. */
export interface KvSnapshot {
  readonly meta: KvSnapshotMeta
  /** The snapshot bytes (see snapshot.ts); can be iterated once. */
  readonly chunks: AsyncIterable<Uint8Array>
  /** Ends the read transaction; done automatically when iterating chunks ends. Idempotent. */
  release(): void
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] }

/** The key-value state machine. Create with KvStateMachine.open(env). */
export class KvStateMachine {
  readonly #env: RootDatabase
  readonly #name: string
  /** The LMDB data file, named in CORRUPT_DATA messages. */
  readonly #file: string
  readonly #meta: Database<Uint8Array, string>
  readonly #data: readonly [Database<Uint8Array, Uint8Array>, Database<Uint8Array, Uint8Array>]
  /** #data with their names for error messages. */
  readonly #dataStores: readonly [Store, Store]
  readonly #changes: readonly [Database<Uint8Array, Uint8Array>, Database<Uint8Array, Uint8Array>]
  readonly #options: Required<Omit<KvOptions, 'name'>>
  /** Mirrors the committed 'state' record. */
  #state: StoredState
  readonly #handlers = new Map<string, CommandHandler>()
  readonly #listeners = new Set<(e: KvEvent) => void>()
  readonly #snapshots = new Set<Transaction>()
  #applying = false
  /** An applyWithin() whose publish has not run yet: the in-memory state is behind its transaction. */
  #unpublished = false
  #restoring = false
  #closed = false

  private constructor(env: RootDatabase, name: string, options: KvOptions) {
    this.#env = env
    this.#name = name
    this.#file = dataFile(env)
    const bin = { encoding: 'binary', keyEncoding: 'binary' } as const
    this.#meta = env.openDB<Uint8Array, string>(`${name}.meta`, { encoding: 'binary' })
    this.#data = [env.openDB(`${name}.data.0`, bin), env.openDB(`${name}.data.1`, bin)]
    this.#dataStores = [
      { db: this.#data[0], name: `${this.#file} ${name}.data.0` },
      { db: this.#data[1], name: `${this.#file} ${name}.data.1` },
    ]
    this.#changes = [env.openDB(`${name}.changes.0`, bin), env.openDB(`${name}.changes.1`, bin)]
    const positive = (what: string, v: number | undefined, d: number): number => {
      if (v === undefined) return d
      if (!Number.isSafeInteger(v) || v < 1) throw new HoldfastError('INVALID_ARGUMENT', `${what} must be a positive integer, got ${v}`)
      return v
    }
    this.#options = {
      maxValueSize: positive('maxValueSize', options.maxValueSize, DEFAULT_MAX_VALUE_SIZE),
      maxCommandSize: positive('maxCommandSize', options.maxCommandSize, DEFAULT_MAX_COMMAND_SIZE),
      changeRetention: positive('changeRetention', options.changeRetention, DEFAULT_CHANGE_RETENTION),
      snapshotChunkSize: positive('snapshotChunkSize', options.snapshotChunkSize, DEFAULT_SNAPSHOT_CHUNK_SIZE),
      durableApply: options.durableApply ?? false,
    }
    this.#state = this.#load()
  }

  /**
   * Opens (creating if needed) the state machine in `env`, normally `LmdbStorage.env`. Throws
   * CORRUPT_DATA when its stored state is unreadable or from an unknown layout version.
   */
  static open(env: RootDatabase, options: KvOptions = {}): KvStateMachine {
    const name = options.name ?? 'kv'
    if (!/^[A-Za-z0-9_-]{1,32}$/.test(name)) throw new HoldfastError('INVALID_ARGUMENT', `state machine name '${name}' must be 1-32 of [A-Za-z0-9_-]`)
    return new KvStateMachine(env, name, options)
  }

  #load(): StoredState {
    const where = this.#stateWhere()
    const bytes = this.#meta.get(STATE_KEY)
    let state: StoredState
    if (bytes === undefined) {
      if (this.#data.some((d) => d.getKeysCount({ limit: 1 }) > 0)) {
        throw new HoldfastError('CORRUPT_DATA', `${this.#file} ${this.#name}: data without a state record (not written by holdfast, or damaged)`)
      }
      state = INITIAL_STATE
      this.#env.transactionSync(() => this.#meta.putSync(STATE_KEY, encodeState(state)), TXN_COMMIT)
      log('%s: created', this.#name)
    } else {
      state = decodeState(bytes, where)
    }
    // A restore that crashed before its switch leaves its partial data in the other slot.
    const other = (1 - state.slot) as 0 | 1
    if (this.#data[other].getKeysCount({ limit: 1 }) > 0 || this.#changes[other].getKeysCount({ limit: 1 }) > 0) {
      log('%s: clearing leftovers of an unfinished restore in slot %d', this.#name, other)
      this.#clearSlot(other)
    }
    log('%s: opened at applied index %d (generation %d, fence %d)', this.#name, state.applied, state.generation, state.fence)
    return state
  }

  /** The index of the last applied entry (0 before any). */
  appliedIndex(): number {
    return this.#state.applied
  }

  /** The current fencing token (0 before any setFence). */
  fenceToken(): number {
    return this.#state.fence
  }

  /** The lowest revision whose changes changesSince can still return (see compactChanges). */
  firstRetainedRevision(): number {
    return this.#state.retained
  }

  /** Validates and encodes a command with this state machine's size limits (see encodeCommand). */
  encode(command: Command): Uint8Array {
    return encodeCommand(command, this.#options)
  }

  /**
   * Registers a deterministic command under `name` (see CommandHandler). Every replica must
   * register the same handlers, with the same code, before it applies entries calling them: an
   * entry calling an unregistered name fails with UNKNOWN_COMMAND on that replica only.
   */
  register(name: string, handler: CommandHandler): void {
    if (typeof name !== 'string' || name.length === 0 || Buffer.byteLength(name) > MAX_COMMAND_NAME_BYTES) {
      throw new HoldfastError('INVALID_ARGUMENT', `a command name must be a non-empty string of at most ${MAX_COMMAND_NAME_BYTES} bytes`)
    }
    if (typeof handler !== 'function') throw new HoldfastError('INVALID_ARGUMENT', `the handler of '${name}' must be a function`)
    if (this.#handlers.has(name)) throw new HoldfastError('INVALID_ARGUMENT', `a command named '${name}' is already registered`)
    this.#handlers.set(name, handler)
  }

  /**
   * Applies committed entries in order, in one synchronous transaction that also records the
   * applied index. Entries at or below the applied index are skipped (exactly-once); the rest must
   * continue it without a gap (CONTRACT_VIOLATION otherwise, and nothing is applied). A command's
   * failure fails its entry only (see ApplyResult). Throws, having applied nothing, if LMDB fails.
   * Commits its own transaction: do not call it inside another write transaction of the
   * environment (it would become a child transaction whose parent could still abort).
   */
  apply(entries: readonly Entry[]): ApplyResult[] {
    const { results, publish } = this.#applyIn(entries, (fn) => {
      this.#env.transactionSync(fn, this.#options.durableApply ? TXN_COMMIT : TXN_COMMIT | TXN_NO_FLUSH_WAIT)
    })
    publish()
    return results
  }

  /**
   * apply(), inside a write transaction of the environment that the caller has open and commits
   * (the node applies committed entries in the transaction that also writes new log entries: one
   * commit and one disk sync instead of two). The effects and applied index are written now; the
   * state machine's view (appliedIndex(), apply listeners) moves only when the caller calls
   * `publish`, after its transaction committed. If that transaction aborts, never call publish:
   * nothing of this apply remains, on disk or in memory.
   */
  applyWithin(entries: readonly Entry[]): { results: ApplyResult[]; publish: () => void } {
    // Nested in the caller's transaction, transactionSync runs as a child transaction.
    const { results, publish } = this.#applyIn(entries, (fn) => {
      this.#env.transactionSync(fn, TXN_COMMIT)
    })
    this.#unpublished = true
    return {
      results,
      publish: () => {
        if (!this.#unpublished) return
        this.#unpublished = false
        publish()
      },
    }
  }

  #applyIn(entries: readonly Entry[], transact: (fn: () => void) => void): { results: ApplyResult[]; publish: () => void } {
    this.#checkIdle('apply')
    let expect = this.#state.applied + 1
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!
      if (i > 0 && e.index !== entries[i - 1]!.index + 1) throw new HoldfastError('CONTRACT_VIOLATION', `entries to apply are not consecutive: ${entries[i - 1]!.index} then ${e.index}`)
      if (e.index > this.#state.applied && e.index !== expect++) {
        throw new HoldfastError('CONTRACT_VIOLATION', `entry ${e.index} would leave a gap: the applied index is ${this.#state.applied}`)
      }
    }
    const results: ApplyResult[] = []
    const skipped = (index: number): ApplyResult => ({ index, ok: true, result: undefined, skipped: true })
    if (entries.length === 0 || entries[entries.length - 1]!.index <= this.#state.applied) return { results: entries.map((e) => skipped(e.index)), publish: () => {} }
    const state: Mutable<StoredState> = { ...this.#state }
    const changes: Change[] = []
    this.#applying = true
    try {
      transact(() => {
        for (const e of entries) {
          if (e.index <= state.applied) {
            results.push(skipped(e.index))
            continue
          }
          results.push(this.#applyOne(e, state, changes))
          state.applied = e.index
        }
        this.#meta.putSync(STATE_KEY, encodeState(state))
      })
    } finally {
      this.#applying = false
    }
    const publish = (): void => {
      this.#state = state
      this.#emit({ type: 'apply', appliedIndex: state.applied, changes })
    }
    return { results, publish }
  }

  /** Applies one entry inside the apply transaction. Throws only for a storage failure, which aborts the batch. */
  #applyOne(e: Entry, state: Mutable<StoredState>, changes: Change[]): ApplyResult {
    const index = e.index
    if (e.type === 'membership' || e.data.byteLength === 0) return { index, ok: true, result: undefined }
    let cmd: ResolvedCommand
    try {
      cmd = decodeCommand(e.data)
    } catch (err) {
      return { index, ok: false, error: asHoldfastError(err, 'DECODE_ERROR', `entry ${index}`) }
    }
    if (cmd.type === 'setFence') {
      if (cmd.token > state.fence) state.fence = cmd.token
      return { index, ok: true, result: { fence: state.fence } }
    }
    if (cmd.fence !== undefined && cmd.fence < state.fence) {
      return { index, ok: false, error: new HoldfastError('STALE_FENCE', `fencing token ${cmd.fence} is older than the current token ${state.fence}`) }
    }
    const tx = new EntryTx(this.#dataStores[state.slot], this.#changes[state.slot], index, state.fence)
    try {
      let result: CommandResult
      if (cmd.type === 'put') {
        // Single-key writes check before they write, so they need no child transaction.
        result = tx.putResolved(cmd.bucket, cmd.key, cmd.value, cmd.ifRevision)
      } else if (cmd.type === 'delete') {
        result = tx.deleteResolved(cmd.bucket, cmd.key, cmd.ifRevision)
      } else {
        const c = cmd
        result = this.#child(() => (c.type === 'txn' ? runTxn(tx, c) : this.#call(tx, c)))
      }
      if (tx.storageFailure !== undefined) throw tx.storageFailure
      changes.push(...tx.changes)
      return { index, ok: true, result }
    } catch (err) {
      if (tx.storageFailure !== undefined) throw tx.storageFailure
      if (isHoldfastError(err)) return { index, ok: false, error: err }
      const name = cmd.type === 'call' ? cmd.name : cmd.type
      return { index, ok: false, error: new HoldfastError('COMMAND_FAILED', `command '${name}' failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err }) }
    } finally {
      tx.close()
    }
  }

  /** Runs `fn` in a child transaction of the apply transaction: its writes vanish if it throws. */
  #child<T>(fn: () => T): T {
    // Inside transactionSync, lmdb-js runs a child transaction synchronously and returns fn's value.
    const r = this.#env.childTransaction(fn) as unknown
    if (r instanceof Promise) {
      r.catch(() => {})
      throw new HoldfastError('CONTRACT_VIOLATION', 'child transaction did not complete synchronously')
    }
    return r as T
  }

  #call(tx: EntryTx, c: Extract<ResolvedCommand, { type: 'call' }>): CallResult {
    const handler = this.#handlers.get(c.name)
    if (handler === undefined) throw new HoldfastError('UNKNOWN_COMMAND', `no command named '${c.name}' is registered`)
    const value = handler(tx, c.args)
    if (typeof (value as { then?: unknown } | null)?.then === 'function') {
      Promise.resolve(value).catch(() => {})
      throw new HoldfastError('COMMAND_FAILED', `command '${c.name}' returned a promise: handlers must be synchronous`)
    }
    return { revision: tx.revision, value }
  }

  /**
   * The key's value and revisions, or undefined. Reads the last applied state. Throws
   * CORRUPT_DATA, naming the key and the data file, when its stored record is damaged.
   */
  get(key: string, options: { readonly bucket?: string | undefined } = {}): KeyValue | undefined {
    this.#checkOpen()
    return readKey(this.#dataStores[this.#state.slot], checkBucket(options.bucket), key)
  }

  /**
   * Keys of a bucket in key order (UTF-8 byte order), by prefix and/or [start, end). Throws
   * CORRUPT_DATA when a record in the range is damaged.
   */
  list(options: ListOptions = {}): KeyValue[] {
    this.#checkOpen()
    return listRange(this.#dataStores[this.#state.slot], options)
  }

  /**
   * Every change after `position`, in (revision, seq) order, and the position to continue from.
   * Throws COMPACTED when some of those changes were compacted away, CORRUPT_DATA (naming the
   * revision and the data file) at a damaged change record.
   */
  changesPage(position: ChangePosition, options: ChangesOptions = {}): { changes: Change[]; next: ChangePosition } {
    this.#checkOpen()
    const { revision, seq } = position
    if (!Number.isSafeInteger(revision) || revision < 0 || (seq !== undefined && (!Number.isSafeInteger(seq) || seq < 0))) {
      throw new HoldfastError('INVALID_ARGUMENT', `bad change position ${revision}/${String(seq)}`)
    }
    const needed = seq === undefined ? revision + 1 : revision
    if (needed < this.#state.retained) {
      throw new HoldfastError(
        'COMPACTED',
        `changes after revision ${revision} were compacted (the history starts at revision ${this.#state.retained}); re-read the current state (applied index ${this.#state.applied}) and watch from there`,
      )
    }
    const bucket = options.bucket === null ? null : checkBucket(options.bucket)
    const prefix = options.prefix ?? ''
    const limit = options.limit ?? Infinity
    if (typeof prefix !== 'string') throw new HoldfastError('INVALID_ARGUMENT', 'prefix must be a string')
    if (!(limit >= 0)) throw new HoldfastError('INVALID_ARGUMENT', `limit must be >= 0, got ${limit}`)
    const out: Change[] = []
    if (limit === 0) return { changes: out, next: position }
    const db = this.#changes[this.#state.slot]
    const where = `${this.#file} ${this.#name}.changes.${this.#state.slot}`
    // Only changes up to the published applied index: LMDB may already hold an applyWithin() whose
    // transaction committed but is not published yet; its changes come with its apply event.
    const applied = this.#state.applied
    if (revision > applied || (revision === applied && seq === undefined)) return { changes: out, next: position }
    for (const { key, value } of db.getRange({ start: seq === undefined ? changeKey(revision + 1, 0) : changeKey(revision, seq + 1), end: changeKey(applied + 1, 0) })) {
      const c = decodeChange(key, value, where)
      if ((bucket !== null && c.bucket !== bucket) || !c.key.startsWith(prefix)) continue
      out.push(c)
      if (out.length >= limit) return { changes: out, next: { revision: c.revision, seq: c.seq } }
    }
    // Every change up to the applied index was scanned.
    return { changes: out, next: { revision: Math.max(revision, applied) } }
  }

  /** Every change with a revision above `revision`, in order (see changesPage). */
  changesSince(revision: number, options: ChangesOptions = {}): Change[] {
    return this.changesPage({ revision }, options).changes
  }

  /**
   * Deletes the change history below `belowRevision` (default: all but the last
   * `changeRetention` revisions); changesSince for an older revision then throws COMPACTED.
   * Returns the number of changes deleted. Meant to be called along with log compaction.
   */
  compactChanges(belowRevision?: number): number {
    this.#checkIdle('compactChanges')
    const s = this.#state
    const below = Math.min(belowRevision ?? s.applied + 1 - this.#options.changeRetention, s.applied + 1)
    if (!Number.isSafeInteger(below)) throw new HoldfastError('INVALID_ARGUMENT', `belowRevision must be an integer, got ${below}`)
    if (below <= s.retained) return 0
    const db = this.#changes[s.slot]
    const next: StoredState = { ...s, retained: below }
    const n = this.#env.transactionSync(() => {
      const keys = [...db.getKeys({ end: changeKey(below, 0) })]
      for (const k of keys) db.removeSync(k)
      this.#meta.putSync(STATE_KEY, encodeState(next))
      return keys.length
    }, TXN_COMMIT | TXN_NO_FLUSH_WAIT)
    this.#state = next
    log('%s: compacted %d changes below revision %d', this.#name, n, below)
    return n
  }

  /** Calls `listener` after each committed apply, restore, and at close. Returns the unsubscribe function. */
  subscribe(listener: (event: KvEvent) => void): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  /** An async iterator of changes: history first, then live (see watch.ts). */
  watch(options: WatchOptions = {}): AsyncIterableIterator<Change> {
    return watch(this, options)
  }

  /**
   * A consistent snapshot of the applied state, read in one LMDB read transaction while applies
   * go on. Iterate `chunks` (once) or call release(): the read transaction pins old pages.
   */
  snapshot(): KvSnapshot {
    this.#checkOpen()
    const txn = this.#env.useReadTransaction()
    this.#snapshots.add(txn)
    let released = false
    const release = (): void => {
      if (released) return
      released = true
      this.#snapshots.delete(txn)
      txn.done()
    }
    let state: StoredState
    try {
      const bytes = this.#meta.get(STATE_KEY, { transaction: txn })
      if (bytes === undefined) throw new HoldfastError('CORRUPT_DATA', `${this.#stateWhere()}: state record missing`)
      state = decodeState(bytes, this.#stateWhere())
    } catch (err) {
      release()
      throw err
    }
    const meta: KvSnapshotMeta = { appliedIndex: state.applied, fence: state.fence, generation: state.generation }
    const data = this.#dataStores[state.slot]
    const chunkSize = this.#options.snapshotChunkSize
    let started = false
    const chunks = {
      async *[Symbol.asyncIterator](): AsyncGenerator<Uint8Array, void, undefined> {
        if (started || released) throw new HoldfastError('CONTRACT_VIOLATION', 'a snapshot can be read once')
        started = true
        try {
          // Verified as streamed: the stream's digest must not vouch for a record damaged here.
          // The header's generation is 0, not this replica's (which counts its own restores): every
          // replica's stream of one applied index is then the same bytes, so a transfer broken off
          // can be resumed from another peer (src/transfer/protocol.ts).
          yield* writeSnapshot({ ...meta, generation: 0 }, verified(data.db.getRange({ transaction: txn }), data.name), chunkSize)
        } finally {
          release()
        }
      },
    }
    log('%s: snapshot at applied index %d', this.#name, meta.appliedIndex)
    return { meta, chunks, release }
  }

  /**
   * Replaces the whole state with a snapshot stream (from snapshot() of any replica). The data is
   * written into the idle slot beside the live one, and only after the stream's checksum verified
   * does one transaction switch the live slot, applied index and fence; the old slot is then
   * cleared. Until the switch the old state stays live and readable; a bad stream (CORRUPT_DATA),
   * a failing source, or a crash leave it intact. apply() is refused while a restore runs. Each
   * record's own checksum (layout.ts) is verified before it is written, so restored data is in the
   * checksummed form that reads verify.
   * Resolves with the restored snapshot's meta; the change history restarts after its index.
   */
  async restore(chunks: AsyncIterable<Uint8Array>): Promise<KvSnapshotMeta> {
    this.#checkIdle('restore')
    this.#restoring = true
    const target = (1 - this.#state.slot) as 0 | 1
    try {
      this.#clearSlot(target)
      const db = this.#data[target]
      // Few large commits, not one per frame: each costs about a flush, and the target slot is
      // not live until the switch below, so they need no durability of their own (a crash
      // before it leaves leftovers that open clears). The bound caps the records held in memory
      // and the dirty pages of one transaction.
      let pending: SnapshotRecord[][] = []
      let pendingBytes = 0
      const commit = (): void => {
        const batches = pending
        pending = []
        pendingBytes = 0
        if (batches.length === 0) return
        this.#checkOpen()
        this.#env.transactionSync(() => {
          // readSnapshot hands out strictly increasing keys and the slot was emptied: appends.
          // lmdb-js reports a refused append by returning false (its typings say void), not by throwing.
          for (const batch of batches) {
            for (const r of batch) {
              if ((db.putSync(r.key, r.value, APPEND) as unknown) === false) throw new HoldfastError('CORRUPT_DATA', 'snapshot stream: a record could not be appended (keys out of order)')
            }
          }
        }, TXN_COMMIT | TXN_NO_FLUSH_WAIT)
      }
      const { meta, records } = await readSnapshot(chunks, (batch) => {
        this.#checkOpen()
        for (const r of batch) {
          checkSnapshotRecord(r, 'snapshot stream')
          pendingBytes += r.key.byteLength + r.value.byteLength
        }
        pending.push(batch)
        if (pendingBytes >= RESTORE_COMMIT_BYTES) commit()
      })
      commit()
      this.#checkOpen()
      const old = this.#state
      const next: StoredState = { slot: target, generation: old.generation + 1, applied: meta.appliedIndex, fence: meta.fence, retained: meta.appliedIndex + 1 }
      this.#env.transactionSync(() => this.#meta.putSync(STATE_KEY, encodeState(next)), TXN_COMMIT)
      this.#state = next
      log('%s: restored %d keys at applied index %d (generation %d, slot %d)', this.#name, records, next.applied, next.generation, target)
      try {
        this.#clearSlot(old.slot)
      } catch (err) {
        log('%s: clearing the old slot failed (retried at the next open or restore): %O', this.#name, err)
      }
      this.#emit({ type: 'restore', appliedIndex: next.applied })
      return meta
    } catch (err) {
      if (this.#state.slot !== target && !this.#closed) {
        try {
          this.#clearSlot(target)
        } catch (e) {
          log('%s: clearing a failed restore failed: %O', this.#name, e)
        }
      }
      log('%s: restore failed, the old state stays: %O', this.#name, err)
      throw err
    } finally {
      this.#restoring = false
    }
  }

  /** Ends snapshots being read and ends watches (with CLOSED). Does not close the environment. */
  close(): void {
    if (this.#closed) return
    this.#closed = true
    for (const txn of this.#snapshots) txn.done()
    this.#snapshots.clear()
    this.#emit({ type: 'close' })
    this.#listeners.clear()
  }

  #clearSlot(slot: 0 | 1): void {
    this.#data[slot].clearSync()
    this.#changes[slot].clearSync()
  }

  #emit(event: KvEvent): void {
    for (const l of [...this.#listeners]) {
      try {
        l(event)
      } catch (err) {
        log('%s: a listener threw: %O', this.#name, err)
      }
    }
  }

  #stateWhere(): string {
    return `${this.#file} ${this.#name}.meta '${STATE_KEY}'`
  }

  #checkOpen(): void {
    if (this.#closed) throw new HoldfastError('CLOSED', `state machine ${this.#name} is closed`)
  }

  #checkIdle(op: string): void {
    this.#checkOpen()
    if (this.#applying) throw new HoldfastError('CONTRACT_VIOLATION', `${op} called during apply (from a command handler?)`)
    if (this.#restoring) throw new HoldfastError('CONTRACT_VIOLATION', `${op} called while a restore is running`)
    if (this.#unpublished) throw new HoldfastError('CONTRACT_VIOLATION', `${op} called before the last applyWithin() was published`)
  }
}

/** A txn: compares decide the branch; the branch's ops run in order (each sees the previous ones' writes). */
function runTxn(tx: EntryTx, c: Extract<ResolvedCommand, { type: 'txn' }>): TxnResult {
  const succeeded = c.compare.every((x) => (tx.getResolved(x.bucket, x.key)?.modRevision ?? 0) === x.revision)
  const results = (succeeded ? c.success : c.failure).map((op) =>
    op.type === 'put' ? tx.putResolved(op.bucket, op.key, op.value, op.ifRevision) : tx.deleteResolved(op.bucket, op.key, op.ifRevision),
  )
  return { revision: tx.revision, succeeded, results }
}

/**
 * The environment's data file, for error messages. lmdb-js keeps the path it opened on the root
 * database, but does not declare it (test/state/integrity.test.ts checks that messages name the file).
 */
function dataFile(env: RootDatabase): string {
  const path = (env as { path?: unknown }).path
  return typeof path === 'string' ? path : '(LMDB environment)'
}

/**
 * Checks a stored data record's checksum, version and kind (not its body: a CRC match means the
 * bytes are those a writer produced). Throws CORRUPT_DATA naming the key and `where`.
 */
function checkSnapshotRecord(r: SnapshotRecord, where: string): void {
  verifyRecord(r.key, r.value, RecordKind.value, () => {
    let k: string
    try {
      const { bucket, key } = splitDataKey(r.key, where)
      k = `'${bucket}'/'${key}'`
    } catch {
      k = `0x${Buffer.from(r.key).toString('hex')}`
    }
    return `${where} key ${k}`
  })
}

/** Passes `records` on, each verified first (see checkSnapshotRecord). */
function* verified(records: Iterable<SnapshotRecord>, where: string): Generator<SnapshotRecord, void, undefined> {
  for (const r of records) {
    checkSnapshotRecord(r, where)
    yield r
  }
}

function asHoldfastError(err: unknown, code: 'DECODE_ERROR', where: string): HoldfastError {
  return isHoldfastError(err) ? err : new HoldfastError(code, `${where}: ${err instanceof Error ? err.message : String(err)}`, { cause: err })
}
