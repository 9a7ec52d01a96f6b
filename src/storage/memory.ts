import { HoldfastError } from '../errors.js'
import type { Entry, HardState, SnapshotMeta } from '../core/types.js'
import { entrySize } from '../core/types.js'
import type { LogStorage, LogUpdate } from './types.js'

const EMPTY_HARD_STATE: HardState = { term: 0, vote: null, commit: 0 }
const EMPTY_SNAPSHOT: SnapshotMeta = { index: 0, term: 0, membership: { voters: [], learners: [] } }

/**
 * Log storage held in memory. Every `save` is "durable" the moment it is applied; the simulator
 * models lost writes by deciding when to call `save`. Invariant: entries[i].index === snap.index + 1 + i.
 */
export class MemoryStorage implements LogStorage {
  #hardState: HardState = EMPTY_HARD_STATE
  #snapshot: SnapshotMeta = EMPTY_SNAPSHOT
  #entries: Entry[] = []

  hardState(): HardState {
    return this.#hardState
  }

  snapshotMeta(): SnapshotMeta {
    return this.#snapshot
  }

  firstIndex(): number {
    return this.#snapshot.index + 1
  }

  lastIndex(): number {
    return this.#snapshot.index + this.#entries.length
  }

  term(index: number): number | undefined {
    if (index === this.#snapshot.index) return this.#snapshot.term
    return this.#entries[index - this.#snapshot.index - 1]?.term
  }

  entries(lo: number, hi: number, maxBytes = Infinity): Entry[] {
    if (lo < this.firstIndex() || hi > this.lastIndex() + 1 || lo > hi) {
      throw new HoldfastError('COMPACTED', `entries [${lo}, ${hi}) outside stored range [${this.firstIndex()}, ${this.lastIndex()}]`)
    }
    const out: Entry[] = []
    let bytes = 0
    for (let i = lo; i < hi; i++) {
      const e = this.#entries[i - this.#snapshot.index - 1]!
      bytes += entrySize(e)
      if (out.length > 0 && bytes > maxBytes) break
      out.push(e)
    }
    return out
  }

  /** Applies the update at once, then resolves; an invalid update rejects and changes nothing. */
  save(update: LogUpdate, _sync: boolean): Promise<void> {
    try {
      this.apply(update)
    } catch (err) {
      return Promise.reject(err)
    }
    return Promise.resolve()
  }

  /** The synchronous form of save(), for the simulator. Throws before changing anything when the update is invalid. */
  apply(update: LogUpdate): void {
    this.#check(update)
    if (update.snapshot) {
      const snap = update.snapshot
      // Keep entries after the snapshot only if they continue it (the same term at snap.index).
      if (this.term(snap.index) === snap.term && snap.index <= this.lastIndex()) {
        this.#entries = this.#entries.slice(snap.index - this.#snapshot.index)
      } else {
        this.#entries = []
      }
      this.#snapshot = snap
    }
    const entries = update.entries ?? []
    if (entries.length > 0) {
      this.#entries.length = entries[0]!.index - this.#snapshot.index - 1
      for (const e of entries) this.#entries.push(e)
    }
    if (update.hardState) this.#hardState = update.hardState
    if (update.compact) this.#compact(update.compact)
  }

  /**
   * Validates `update` against the state each step would leave, without changing anything, so that
   * apply() is all or nothing: only the index/term shape of the log is simulated.
   */
  #check(update: LogUpdate): void {
    let snapIndex = this.#snapshot.index
    let last = this.lastIndex()
    let termAt = (i: number): number | undefined => this.term(i)
    if (update.snapshot) {
      const snap = update.snapshot
      const keep = termAt(snap.index) === snap.term && snap.index <= last
      const before = termAt
      termAt = (i) => (i === snap.index ? snap.term : keep && i > snap.index ? before(i) : undefined)
      snapIndex = snap.index
      if (!keep) last = snap.index
    }
    const entries = update.entries ?? []
    if (entries.length > 0) {
      const first = entries[0]!.index
      if (first < snapIndex + 1 || first > last + 1) {
        throw new HoldfastError('CONTRACT_VIOLATION', `append at ${first} leaves a gap or rewrites compacted entries (stored ${snapIndex + 1}..${last})`)
      }
      entries.forEach((e, i) => {
        if (e.index !== first + i) throw new HoldfastError('CONTRACT_VIOLATION', `appended entries are not consecutive: entry ${i} has index ${e.index}, expected ${first + i}`)
      })
      const before = termAt
      termAt = (i) => (i >= first ? entries[i - first]?.term : before(i))
      last = first + entries.length - 1
    }
    const meta = update.compact
    if (meta && meta.index > snapIndex && (meta.index > last || termAt(meta.index) !== meta.term)) {
      throw new HoldfastError('CONTRACT_VIOLATION', `compaction point ${meta.index}/${meta.term} does not match the stored log`)
    }
  }

  /** Checked by #check. */
  #compact(meta: SnapshotMeta): void {
    if (meta.index <= this.#snapshot.index) return
    this.#entries = this.#entries.slice(meta.index - this.#snapshot.index)
    this.#snapshot = meta
  }

  /** A deep copy, for tests that compare or fork storage. */
  clone(): MemoryStorage {
    const copy = new MemoryStorage()
    copy.#hardState = this.#hardState
    copy.#snapshot = this.#snapshot
    copy.#entries = this.#entries.slice()
    return copy
  }

  async close(): Promise<void> {}
}
