import type { Entry, HardState, LogReader, SnapshotMeta } from '../core/types.js'

/**
 * One durable write of the driver's turn (see the Ready contract in src/core/types.ts). Applied
 * atomically: after a crash either all of it is present or none of it.
 */
export interface LogUpdate {
  /** Replace the log with this snapshot point: every stored entry at or before `snapshot.index` goes. */
  readonly snapshot?: SnapshotMeta | undefined
  /** Append at entries[0].index, discarding any stored entries at or after it first. */
  readonly entries?: readonly Entry[] | undefined
  readonly hardState?: HardState | undefined
  /** Delete stored entries at or before compact.index and record `compact` as the snapshot meta. */
  readonly compact?: SnapshotMeta | undefined
}

/**
 * Log storage: synchronous reads (LogReader) and one asynchronous, atomic, durable write.
 * `save` resolves only once the update is durable, when `sync` is true; with `sync` false it may
 * resolve once the update is visible to reads.
 */
export interface LogStorage extends LogReader {
  save(update: LogUpdate, sync: boolean): Promise<void>
  close(): Promise<void>
}
