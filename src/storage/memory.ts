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

  /** Applies the update at once, then resolves. */
  save(update: LogUpdate, _sync: boolean): Promise<void> {
    this.apply(update)
    return Promise.resolve()
  }

  /** The synchronous form of save(), for the simulator. */
  apply(update: LogUpdate): void {
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
      const first = entries[0]!.index
      if (first < this.firstIndex() || first > this.lastIndex() + 1) {
        throw new HoldfastError('CONTRACT_VIOLATION', `append at ${first} leaves a gap or rewrites compacted entries (stored ${this.firstIndex()}..${this.lastIndex()})`)
      }
      this.#entries.length = first - this.#snapshot.index - 1
      for (const e of entries) this.#entries.push(e)
    }
    if (update.hardState) this.#hardState = update.hardState
    if (update.compact) this.#compact(update.compact)
  }

  #compact(meta: SnapshotMeta): void {
    if (meta.index <= this.#snapshot.index) return
    if (meta.index > this.lastIndex() || this.term(meta.index) !== meta.term) {
      throw new HoldfastError('CONTRACT_VIOLATION', `compaction point ${meta.index}/${meta.term} does not match the stored log`)
    }
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
