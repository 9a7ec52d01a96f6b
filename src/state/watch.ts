/**
 * Watches: an async iterator over the change history that then follows live changes. It reads
 * the history in pages (KvStateMachine.changesPage) and, once caught up, sleeps until the next
 * apply. Because it always continues from the exact (revision, seq) it last delivered, it never
 * skips or repeats a change, however far behind its consumer is, as long as the history it needs
 * is not compacted (then it throws COMPACTED).
 */
import { HoldfastError } from '../errors.js'
import type { Change } from './layout.js'
import type { ChangePosition, ChangesOptions, KvEvent } from './kv.js'

/** What watch needs of a state machine (KvStateMachine provides it). */
export interface WatchSource {
  appliedIndex(): number
  changesPage(position: ChangePosition, options?: ChangesOptions): { changes: Change[]; next: ChangePosition }
  subscribe(listener: (event: KvEvent) => void): () => void
}

/** Options of watch. */
export interface WatchOptions {
  /** Only changes of this bucket; `null` for every bucket. @default 'default' */
  readonly bucket?: string | null | undefined
  /** Only keys starting with this. @default '' */
  readonly prefix?: string | undefined
  /**
   * Deliver changes with revision >= fromRevision (history first). When older than the retained
   * history, the iterator throws COMPACTED.
   * @default appliedIndex() + 1 at the call: only changes applied after it
   */
  readonly fromRevision?: number | undefined
  /** Ends the iteration (normally, without an error) when aborted. */
  readonly signal?: AbortSignal | undefined
  /** How many changes to read from LMDB at a time. @default 256 */
  readonly batchSize?: number | undefined
}

/**
 * Iterates every matching change from `fromRevision` on, in (revision, seq) order, then waits for
 * new ones. Throws COMPACTED when the history it needs is gone (also after a restore from a
 * snapshot past its position), CLOSED when the state machine closes.
 */
export function watch(source: WatchSource, options: WatchOptions = {}): AsyncIterableIterator<Change> {
  const from = options.fromRevision ?? source.appliedIndex() + 1
  if (!Number.isSafeInteger(from) || from < 1) throw new HoldfastError('INVALID_ARGUMENT', `fromRevision must be a positive integer, got ${from}`)
  const batchSize = options.batchSize ?? 256
  if (!Number.isSafeInteger(batchSize) || batchSize < 1) throw new HoldfastError('INVALID_ARGUMENT', `batchSize must be a positive integer, got ${batchSize}`)
  return run(source, { revision: from - 1 }, { bucket: options.bucket, prefix: options.prefix, limit: batchSize }, options.signal)
}

async function* run(source: WatchSource, start: ChangePosition, filter: ChangesOptions, signal: AbortSignal | undefined): AsyncGenerator<Change, void, undefined> {
  let position = start
  // Set by every event after the last history read: then there may be more to read, so no sleep.
  let dirty = false
  let closed = false
  let wake: (() => void) | undefined
  const unsubscribe = source.subscribe((e) => {
    dirty = true
    if (e.type === 'close') closed = true
    wake?.()
  })
  const onAbort = (): void => wake?.()
  signal?.addEventListener('abort', onAbort)
  try {
    for (;;) {
      if (signal?.aborted) return
      if (closed) throw new HoldfastError('CLOSED', 'the state machine closed')
      dirty = false
      const page = source.changesPage(position, filter)
      for (const change of page.changes) {
        // Advance before yielding: a consumer that stops here has received this change.
        position = { revision: change.revision, seq: change.seq }
        yield change
        if (signal?.aborted) return
      }
      position = page.next
      if (page.changes.length === filter.limit || dirty) continue
      await new Promise<void>((resolve) => {
        wake = resolve
        if (dirty || closed || signal?.aborted) resolve()
      })
      wake = undefined
    }
  } finally {
    unsubscribe()
    signal?.removeEventListener('abort', onAbort)
  }
}
