import type { Entry, LogReader, SnapshotMeta } from './types.js'
import { entrySize } from './types.js'

/**
 * The core's view of the log: durable entries in storage, followed by an unstable tail that the
 * driver has not yet persisted, optionally preceded by a received snapshot not yet installed.
 *
 * Invariants:
 * - unstable[i].index === offset + i; storage entries at or after `offset` are superseded and will
 *   be discarded when the unstable tail is persisted (the Ready contract truncates at entries[0]).
 * - with a pending snapshot, nothing in storage is visible and offset === snapshot.index + 1.
 * - applied <= committed <= lastIndex().
 */
export class RaftLog {
  readonly #storage: LogReader
  #unstable: Entry[] = []
  #offset: number
  #pendingSnapshot: SnapshotMeta | undefined
  /** Highest index known committed. */
  committed: number
  /** Highest index the driver has applied (as of the last advance()). */
  applied: number

  constructor(storage: LogReader, applied: number) {
    this.#storage = storage
    this.#offset = storage.lastIndex() + 1
    this.applied = applied
    this.committed = Math.min(Math.max(storage.hardState().commit, applied), storage.lastIndex())
  }

  get storage(): LogReader {
    return this.#storage
  }

  /** The index of the last snapshot or compaction point. */
  snapshotIndex(): number {
    return this.#pendingSnapshot ? this.#pendingSnapshot.index : this.#storage.snapshotMeta().index
  }

  firstIndex(): number {
    return this.snapshotIndex() + 1
  }

  lastIndex(): number {
    if (this.#unstable.length > 0) return this.#offset + this.#unstable.length - 1
    if (this.#pendingSnapshot) return this.#pendingSnapshot.index
    return Math.min(this.#storage.lastIndex(), this.#offset - 1)
  }

  lastTerm(): number {
    return this.term(this.lastIndex()) ?? 0
  }

  /** The term of entry `index`, or undefined if it is compacted or beyond the end. */
  term(index: number): number | undefined {
    if (index >= this.#offset) return this.#unstable[index - this.#offset]?.term
    if (this.#pendingSnapshot) return index === this.#pendingSnapshot.index ? this.#pendingSnapshot.term : undefined
    return this.#storage.term(index)
  }

  matchTerm(index: number, term: number): boolean {
    return this.term(index) === term
  }

  /** Entries in [lo, hi) up to maxBytes (at least one when lo < hi). Caller ensures lo >= firstIndex(). */
  entries(lo: number, hi: number, maxBytes = Infinity): Entry[] {
    const out: Entry[] = []
    if (lo >= hi) return out
    let bytes = 0
    if (lo < this.#offset) {
      const stableHi = Math.min(hi, this.#offset)
      for (const e of this.#storage.entries(lo, stableHi, maxBytes)) {
        out.push(e)
        bytes += entrySize(e)
      }
      if (out.length < stableHi - lo) return out // stopped by maxBytes
    }
    for (let i = Math.max(lo, this.#offset); i < hi; i++) {
      const e = this.#unstable[i - this.#offset]
      if (e === undefined) break
      bytes += entrySize(e)
      if (out.length > 0 && bytes > maxBytes) break
      out.push(e)
    }
    return out
  }

  /** Whether a node with this last entry has a log at least as up to date as ours (Raft §5.4.1). */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const myTerm = this.lastTerm()
    return lastTerm > myTerm || (lastTerm === myTerm && lastIndex >= this.lastIndex())
  }

  /**
   * The first entry of `entries` that is absent from our log or has another term; undefined when
   * every entry is already present.
   */
  findConflict(entries: readonly Entry[]): Entry | undefined {
    for (const e of entries) {
      if (!this.matchTerm(e.index, e.term)) return e
    }
    return undefined
  }

  /**
   * The largest index <= `index` whose term is <= `term`: where our log and a log whose entry at
   * `index` has `term` could still agree. Used on both sides of fast conflict backtracking.
   */
  findConflictByTerm(index: number, term: number): number {
    let i = Math.min(index, this.lastIndex())
    for (; i >= this.snapshotIndex(); i--) {
      const t = this.term(i)
      if (t === undefined || t <= term) return i
    }
    return this.snapshotIndex()
  }

  /** Appends entries at entries[0].index, discarding our entries from there on. Caller ensures no committed entry is discarded. */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return
    const after = entries[0]!.index
    const end = this.#offset + this.#unstable.length
    if (after === end) {
      for (const e of entries) this.#unstable.push(e)
    } else if (after <= this.#offset) {
      // Replaces part of the stable log: the tail from `after` is superseded.
      this.#offset = after
      this.#unstable = entries.slice()
    } else {
      this.#unstable = this.#unstable.slice(0, after - this.#offset).concat(entries)
    }
  }

  commitTo(index: number): boolean {
    if (index <= this.committed) return false
    this.committed = Math.min(index, this.lastIndex())
    return true
  }

  /** Replaces the whole log with a received snapshot. */
  restore(snapshot: SnapshotMeta): void {
    this.#pendingSnapshot = snapshot
    this.#unstable = []
    this.#offset = snapshot.index + 1
    this.committed = snapshot.index
  }

  pendingSnapshot(): SnapshotMeta | undefined {
    return this.#pendingSnapshot
  }

  unstableEntries(): readonly Entry[] {
    return this.#unstable
  }

  /** The last index that is certainly durable. Underestimates are safe: it only feeds commit counting. */
  stableLastIndex(): number {
    if (this.#pendingSnapshot) return 0
    return Math.min(this.#offset - 1, this.#storage.lastIndex())
  }

  /** Called once the driver has persisted the pending snapshot and unstable entries. */
  markStable(): void {
    this.#offset += this.#unstable.length
    this.#unstable = []
    if (this.#pendingSnapshot) {
      this.applied = Math.max(this.applied, this.#pendingSnapshot.index)
      this.#pendingSnapshot = undefined
    }
  }

  hasNextCommitted(): boolean {
    return this.committed > this.applied && this.applied + 1 >= this.firstIndex()
  }

  /** Committed entries not yet applied, up to maxBytes (at least one if any). */
  nextCommitted(maxBytes: number): Entry[] {
    if (!this.hasNextCommitted()) return []
    return this.entries(this.applied + 1, this.committed + 1, maxBytes)
  }
}
