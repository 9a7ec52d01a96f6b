/** The JSON a run writes (result.json): what ran, on what, and every section's figures. */
import type { FailoverSeries } from './sections/failover.js'
import type { FloorResult } from './sections/floor.js'
import type { RestoreResult } from './sections/restore.js'
import type { FormationResult, RssResult } from './sections/scale.js'
import type { WriteRow } from './sections/writes.js'

export interface Machine {
  readonly cpuModel: string
  readonly cores: number
  readonly memoryBytes: number
  readonly os: string
  readonly node: string
  readonly etcd: string | null
  /** The device and file system the data directories are on. */
  readonly disk: string
  /** The commit measured, "+dirty" when the work tree differs. */
  readonly commit: string
}

/** The floor comparison: holdfast's single-writer latency against one fsync plus one round trip. */
export interface FloorSummary extends FloorResult {
  /** Raw lmdb-js durable put, one writer, p50 ms (from the write rows). */
  readonly lmdbPutP50Ms: number | null
  /** holdfast embedded, one writer, p50 ms (from the write rows). */
  readonly embeddedP50Ms: number | null
  /** fdatasync p50 + loopback RTT p50, ms. */
  readonly fsyncRttMs: number
  /** lmdb-js durable put p50 + loopback RTT p50, ms. */
  readonly lmdbRttMs: number | null
  readonly embeddedVsFsyncRtt: number | null
  readonly embeddedVsLmdbRtt: number | null
}

/** One target of the issue, as measured. */
export interface TargetResult {
  readonly name: string
  readonly goal: string
  /** The measured figure, in words. */
  readonly measured: string
  /** null when the figures it needs were not measured. */
  readonly met: boolean | null
  /** How far off, as a factor (> 1), when not met. */
  readonly shortBy: number | null
}

export interface BenchResult {
  readonly benchmark: 'holdfast vs etcd vs the hardware'
  readonly date: string
  readonly command: string
  readonly quick: boolean
  readonly machine: Machine
  readonly options: Record<string, unknown>
  writes?: { readonly valueSize: number; readonly rows: readonly WriteRow[] }
  floor?: FloorSummary
  failover?: readonly FailoverSeries[]
  restore?: readonly RestoreResult[]
  scale?: { formation?: readonly FormationResult[]; rss?: RssResult; note: string }
  targets?: readonly TargetResult[]
  durationSeconds?: number
  /** Seconds each part of the run took (cluster starts included). */
  sectionSeconds?: Record<string, number>
  /** Sections (or failover systems) that failed: the run exits 1 when there is any. */
  errors?: readonly string[]
  /** Failover repetitions that timed out (also in their series); the run exits 3 without --quick when there is any. */
  timedOut?: readonly string[]
  /** Figures written next to result.json. */
  figures?: readonly string[]
}
