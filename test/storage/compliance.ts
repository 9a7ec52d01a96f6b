/**
 * The LogStorage compliance suite: every implementation (src/storage/memory.ts, src/storage/lmdb.ts)
 * runs it and must behave identically. The semantics are those of the Ready contract in
 * src/core/types.ts and LogReader/LogUpdate.
 */
import type { Test } from 'tap'
import { isHoldfastError } from '../../src/errors.js'
import type { ErrorCode } from '../../src/errors.js'
import type { Entry, EntryType, HardState, SnapshotMeta } from '../../src/core/types.js'
import { entrySize } from '../../src/core/types.js'
import type { LogStorage } from '../../src/storage/types.js'

/** How the suite gets storage to test. */
export interface ComplianceTarget {
  /** Fresh, empty storage. Register its cleanup with `t.teardown`. */
  open(t: Test): Promise<LogStorage>
  /** Closes `s` and opens the same storage again; when given, every scenario also checks its end state survives. */
  reopen?(t: Test, s: LogStorage): Promise<LogStorage>
}

/** A comparable picture of everything a LogReader exposes. */
export interface StorageView {
  first: number
  last: number
  hardState: HardState
  snapshot: SnapshotMeta
  terms: (number | undefined)[]
  entries: Entry[]
}

export function view(s: LogStorage): StorageView {
  const first = s.firstIndex()
  const last = s.lastIndex()
  const terms: (number | undefined)[] = []
  for (let i = first - 2; i <= last + 1; i++) terms.push(s.term(i))
  return { first, last, hardState: s.hardState(), snapshot: s.snapshotMeta(), terms, entries: s.entries(first, last + 1) }
}

const NO_MEMBERS = { voters: [], learners: [] }

export function entry(index: number, term: number, text = `e${index}t${term}`, type: EntryType = 'normal'): Entry {
  return { index, term, type, data: new TextEncoder().encode(text) }
}

/** Entries lo..hi inclusive, all of term `term`. */
export function run(lo: number, hi: number, term: number): Entry[] {
  const out: Entry[] = []
  for (let i = lo; i <= hi; i++) out.push(entry(i, term))
  return out
}

export function snap(index: number, term: number, voters: string[] = ['a', 'b', 'c']): SnapshotMeta {
  return { index, term, membership: { voters, learners: ['l'] } }
}

async function rejectsWith(t: Test, p: Promise<unknown>, code: ErrorCode, message: string): Promise<void> {
  try {
    await p
    t.fail(`${message}: expected ${code}, resolved`)
  } catch (err) {
    t.ok(isHoldfastError(err, code), `${message}: ${code}`, { error: err })
  }
}

function throwsCode(t: Test, fn: () => unknown, code: ErrorCode, message: string): void {
  try {
    fn()
    t.fail(`${message}: expected ${code}, returned`)
  } catch (err) {
    t.ok(isHoldfastError(err, code), `${message}: ${code}`, { error: err })
  }
}

export function logStorageCompliance(t: Test, name: string, target: ComplianceTarget): void {
  /** Runs a scenario; with `reopen`, the state it ends in must survive close and open. */
  const scenario = (title: string, body: (t: Test, s: LogStorage) => Promise<LogStorage | void>): void => {
    t.test(`${name}: ${title}`, async (t) => {
      const opened = await target.open(t)
      const s = (await body(t, opened)) ?? opened
      if (target.reopen) {
        const before = view(s)
        const again = await target.reopen(t, s)
        t.same(view(again), before, 'state survives close and reopen')
      }
    })
  }

  scenario('empty storage', async (t, s) => {
    t.same(s.hardState(), { term: 0, vote: null, commit: 0 })
    t.same(s.snapshotMeta(), { index: 0, term: 0, membership: NO_MEMBERS })
    t.equal(s.firstIndex(), 1)
    t.equal(s.lastIndex(), 0)
    t.equal(s.term(0), 0, 'term of the (empty) snapshot point')
    t.equal(s.term(1), undefined)
    t.same(s.entries(1, 1), [])
    throwsCode(t, () => s.entries(1, 2), 'COMPACTED', 'entries past the end')
  })

  scenario('append and read back', async (t, s) => {
    const es = [entry(1, 1, ''), entry(2, 1, 'two'), entry(3, 2, 'members', 'membership'), entry(4, 2, 'x'.repeat(5000)), entry(5, 3)]
    await s.save({ entries: es }, true)
    t.equal(s.firstIndex(), 1)
    t.equal(s.lastIndex(), 5)
    t.same(s.entries(1, 6), es)
    t.same(s.entries(2, 4), es.slice(1, 3))
    t.same(s.entries(3, 3), [])
    t.same([0, 1, 2, 3, 4, 5].map((i) => s.term(i)), [0, 1, 1, 2, 2, 3])
    await s.save({ entries: [entry(6, 3), entry(7, 3)] }, false)
    t.equal(s.lastIndex(), 7)
    t.same(s.entries(5, 8), [es[4], entry(6, 3), entry(7, 3)])
    throwsCode(t, () => s.entries(0, 2), 'COMPACTED', 'entries before the first index')
    throwsCode(t, () => s.entries(1, 9), 'COMPACTED', 'entries past the last index')
  })

  scenario('entries() stops at maxBytes but returns at least one', async (t, s) => {
    const es = run(1, 6, 1).map((e) => ({ ...e, data: new Uint8Array(100).fill(e.index) }))
    const size = entrySize(es[0]!)
    await s.save({ entries: es }, true)
    t.equal(s.entries(1, 7, 0).length, 1, 'maxBytes 0: one entry')
    t.equal(s.entries(1, 7, size - 1).length, 1, 'below one entry: still one')
    t.equal(s.entries(1, 7, size).length, 1)
    t.equal(s.entries(1, 7, 2 * size - 1).length, 1)
    t.equal(s.entries(1, 7, 2 * size).length, 2)
    t.same(s.entries(2, 7, 3 * size), es.slice(1, 4))
    t.equal(s.entries(1, 7, Infinity).length, 6)
    t.equal(s.entries(1, 7).length, 6)
    t.equal(s.entries(6, 7, 0).length, 1)
  })

  scenario('an append truncates a conflicting suffix', async (t, s) => {
    await s.save({ entries: run(1, 5, 1) }, true)
    await s.save({ entries: [entry(3, 2), entry(4, 2)] }, true)
    t.equal(s.lastIndex(), 4)
    t.same(s.entries(1, 5), [...run(1, 2, 1), entry(3, 2), entry(4, 2)])
    t.equal(s.term(5), undefined, 'the old suffix is gone')
    // Appending at the end of the log and rewriting the last entry.
    await s.save({ entries: [entry(5, 2)] }, true)
    await s.save({ entries: [entry(5, 3), entry(6, 3)] }, true)
    t.same([3, 4, 5, 6].map((i) => s.term(i)), [2, 2, 3, 3])
    // Rewriting from the first index replaces the whole log.
    await s.save({ entries: [entry(1, 4)] }, true)
    t.equal(s.lastIndex(), 1)
    t.same(s.entries(1, 2), [entry(1, 4)])
  })

  scenario('an append that leaves a gap is refused and changes nothing', async (t, s) => {
    await s.save({ entries: run(1, 5, 1), hardState: { term: 1, vote: 'a', commit: 2 } }, true)
    const before = view(s)
    await rejectsWith(t, s.save({ entries: [entry(7, 1)] }, true), 'CONTRACT_VIOLATION', 'gap after the end')
    await rejectsWith(t, s.save({ entries: [entry(7, 2)], hardState: { term: 2, vote: 'b', commit: 5 } }, true), 'CONTRACT_VIOLATION', 'gap with a hard state')
    await rejectsWith(t, s.save({ entries: [entry(6, 1), entry(8, 1)] }, true), 'CONTRACT_VIOLATION', 'entries not consecutive')
    await rejectsWith(
      t,
      s.save({ entries: [entry(6, 2)], hardState: { term: 2, vote: null, commit: 3 }, compact: snap(3, 9) }, true),
      'CONTRACT_VIOLATION',
      'valid entries with a bad compaction point',
    )
    await rejectsWith(t, s.save({ snapshot: snap(8, 3), entries: [entry(10, 3)] }, true), 'CONTRACT_VIOLATION', 'snapshot then a gap')
    t.same(view(s), before, 'nothing changed')
    // Still usable afterwards.
    await s.save({ entries: [entry(6, 1)] }, true)
    t.equal(s.lastIndex(), 6)
  })

  scenario('an append below the first index is refused', async (t, s) => {
    await s.save({ entries: run(1, 6, 1), compact: snap(3, 1) }, true)
    t.equal(s.firstIndex(), 4)
    await rejectsWith(t, s.save({ entries: [entry(3, 2)] }, true), 'CONTRACT_VIOLATION', 'rewriting a compacted entry')
    t.equal(s.firstIndex(), 4)
    t.equal(s.lastIndex(), 6)
    await s.save({ entries: [entry(4, 2)] }, true)
    t.same([3, 4, 5].map((i) => s.term(i)), [1, 2, undefined], 'appending at the first index is allowed')
  })

  scenario('a snapshot that matches the log keeps the suffix after it', async (t, s) => {
    await s.save({ entries: [...run(1, 4, 1), ...run(5, 10, 2)] }, true)
    const meta = snap(6, 2)
    await s.save({ snapshot: meta }, true)
    t.same(s.snapshotMeta(), meta)
    t.equal(s.firstIndex(), 7)
    t.equal(s.lastIndex(), 10)
    t.equal(s.term(6), 2, 'term at the snapshot point')
    t.equal(s.term(5), undefined)
    t.same(s.entries(7, 11), run(7, 10, 2))
    throwsCode(t, () => s.entries(6, 8), 'COMPACTED', 'entries at the snapshot point')
  })

  scenario('a snapshot that does not match the log replaces it', async (t, s) => {
    await s.save({ entries: [...run(1, 4, 1), ...run(5, 10, 2)] }, true)
    await s.save({ snapshot: snap(6, 3) }, true)
    t.equal(s.firstIndex(), 7)
    t.equal(s.lastIndex(), 6, 'no entries left')
    t.equal(s.term(6), 3)
    t.equal(s.term(7), undefined)
    t.same(s.entries(7, 7), [])
    // A snapshot past the end of the log, then entries that continue it, in one update.
    await s.save({ snapshot: snap(20, 4), entries: run(21, 23, 4), hardState: { term: 4, vote: null, commit: 20 } }, true)
    t.equal(s.firstIndex(), 21)
    t.equal(s.lastIndex(), 23)
    t.same(s.entries(21, 24), run(21, 23, 4))
    t.equal(s.term(20), 4)
    t.same(s.hardState(), { term: 4, vote: null, commit: 20 })
  })

  scenario('a snapshot at the last index with the matching term keeps nothing but moves the start', async (t, s) => {
    await s.save({ entries: run(1, 5, 1) }, true)
    await s.save({ snapshot: snap(5, 1) }, true)
    t.equal(s.firstIndex(), 6)
    t.equal(s.lastIndex(), 5)
    t.equal(s.term(5), 1)
    await s.save({ entries: [entry(6, 2)] }, true)
    t.same(s.entries(6, 7), [entry(6, 2)])
  })

  scenario('compaction keeps the term of the compaction point and moves the first index', async (t, s) => {
    await s.save({ entries: [...run(1, 3, 1), ...run(4, 8, 2)] }, true)
    const meta = snap(5, 2, ['x', 'y'])
    await s.save({ compact: meta }, true)
    t.same(s.snapshotMeta(), meta)
    t.equal(s.firstIndex(), 6)
    t.equal(s.lastIndex(), 8)
    t.equal(s.term(5), 2)
    t.equal(s.term(4), undefined)
    t.same(s.entries(6, 9), run(6, 8, 2))
    throwsCode(t, () => s.entries(5, 9), 'COMPACTED', 'compacted entries')
    // At or below the current point: nothing to do.
    await s.save({ compact: snap(3, 1) }, true)
    await s.save({ compact: meta }, true)
    t.equal(s.firstIndex(), 6)
    t.same(s.snapshotMeta(), meta)
    await rejectsWith(t, s.save({ compact: snap(7, 9) }, true), 'CONTRACT_VIOLATION', 'term mismatch')
    await rejectsWith(t, s.save({ compact: snap(9, 2) }, true), 'CONTRACT_VIOLATION', 'past the last index')
    // Compacting the whole log.
    await s.save({ compact: snap(8, 2) }, true)
    t.equal(s.firstIndex(), 9)
    t.equal(s.lastIndex(), 8)
    t.equal(s.term(8), 2)
    // Entries appended in the same update can be compacted by it.
    await s.save({ entries: run(9, 12, 3), compact: snap(10, 3) }, true)
    t.equal(s.firstIndex(), 11)
    t.same(s.entries(11, 13), run(11, 12, 3))
  })

  scenario('term() is undefined outside the stored range', async (t, s) => {
    await s.save({ entries: run(1, 6, 2), compact: snap(2, 2) }, true)
    t.equal(s.term(-1), undefined)
    t.equal(s.term(0), undefined)
    t.equal(s.term(1), undefined)
    t.equal(s.term(2), 2, 'the compaction point')
    t.equal(s.term(6), 2)
    t.equal(s.term(7), undefined)
    t.equal(s.term(1e12), undefined)
  })

  scenario('hard state round trip', async (t, s) => {
    const states: HardState[] = [
      { term: 1, vote: 'node-a', commit: 0 },
      { term: 2, vote: null, commit: 7 },
      { term: 9_007_199_254, vote: 'ünïcødé-✓-' + 'f'.repeat(64), commit: 2 ** 40 },
    ]
    for (const hs of states) {
      await s.save({ hardState: hs }, true)
      t.same(s.hardState(), hs)
    }
    // An update without a hard state keeps it.
    await s.save({ entries: [entry(1, 1)] }, true)
    t.same(s.hardState(), states[2])
  })

  scenario('one save applies snapshot, entries, hard state and compaction together', async (t, s) => {
    await s.save({ entries: run(1, 5, 1) }, true)
    const before = view(s)
    const hs = { term: 3, vote: 'b', commit: 12 }
    const p = s.save({ snapshot: snap(10, 2), entries: run(11, 15, 3), hardState: hs, compact: snap(12, 3) }, true)
    // Until it resolves, reads see the old state or the new one, never a mix.
    const mid = view(s)
    await p
    const after = view(s)
    t.ok(JSON.stringify(mid) === JSON.stringify(before) || JSON.stringify(mid) === JSON.stringify(after), 'reads are all old or all new')
    t.same(after.hardState, hs)
    t.same(after.snapshot, snap(12, 3))
    t.equal(after.first, 13)
    t.equal(after.last, 15)
    t.same(after.entries, run(13, 15, 3))
  })

  scenario('saves in flight apply and resolve in call order', async (t, s) => {
    const resolved: number[] = []
    const saves: Promise<void>[] = []
    for (let i = 1; i <= 60; i++) {
      // A rewrite every tenth save: order matters.
      const entries = i % 10 === 0 ? [entry(i - 5, i), ...run(i - 4, i, i)] : [entry(i, 1)]
      saves.push(s.save({ entries, hardState: { term: i, vote: null, commit: i - 1 } }, i % 3 === 0).then(() => void resolved.push(i)))
    }
    await Promise.all(saves)
    t.same(resolved, saves.map((_, i) => i + 1), 'resolved in call order')
    t.equal(s.lastIndex(), 60)
    t.same(s.hardState(), { term: 60, vote: null, commit: 59 })
    t.same(s.entries(55, 61), [entry(55, 60), ...run(56, 60, 60)])
    t.same(s.entries(1, 5), run(1, 4, 1))
    t.equal(s.term(49), 50)
  })

  scenario('an invalid save among saves in flight fails alone', async (t, s) => {
    const a = s.save({ entries: run(1, 3, 1) }, true)
    const bad = rejectsWith(t, s.save({ entries: [entry(9, 1)] }, true), 'CONTRACT_VIOLATION', 'gap relative to the saves before it')
    const c = s.save({ entries: [entry(4, 1)] }, true)
    await Promise.all([a, bad, c])
    t.same(s.entries(1, 5), run(1, 4, 1))
  })

  scenario('large and many entries', async (t, s) => {
    const big = { index: 1, term: 1, type: 'normal' as const, data: new Uint8Array(3 * 1024 * 1024).map((_, i) => i * 7) }
    await s.save({ entries: [big, ...run(2, 2000, 1)] }, true)
    const [got] = s.entries(1, 2)
    t.ok(got && Buffer.compare(got.data, big.data) === 0 && got.term === 1 && got.index === 1, 'a 3 MiB entry reads back')
    t.equal(s.entries(1, 2001).length, 2000)
    let fit = 0
    for (let i = 2, bytes = 0; (bytes += entrySize(entry(i, 1))) <= 10 * 1024; i++) fit++
    t.equal(s.entries(2, 2001, 10 * 1024).length, fit, 'as many entries as fit in maxBytes')
    await s.save({ compact: snap(1500, 1) }, false)
    t.equal(s.entries(1501, 2001).length, 500)
  })
}
