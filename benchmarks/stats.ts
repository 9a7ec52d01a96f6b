/**
 * Latency statistics: nearest-rank percentiles of sorted samples, and the summary every measured
 * row carries (writes/s, p50/p99/p999, and a percentile curve for the latency-distribution plot).
 */

/** Nearest-rank percentile of ascending `sorted` (p in [0, 100]); NaN when empty. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN
  const rank = Math.ceil((p / 100) * sorted.length) - 1
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank))]!
}

/** The median of a few values (failover repetitions, say); NaN when empty. */
export function median(values: readonly number[]): number {
  return percentile(Float64Array.from(values).sort(), 50)
}

/**
 * Points of the latency curve, in "nines": x = -log10(1 - p/100), so 0 is p0, 1 is p90, 2 is p99,
 * 3 is p99.9. Stops where the samples run out (no p99.99 from 1,000 samples).
 */
export const CURVE_NINES: readonly number[] = Array.from({ length: 41 }, (_, i) => i / 10)

/** One system's measurement at one writer count. */
export interface LatencySummary {
  /** Writes acknowledged in the measured intervals. */
  readonly writes: number
  /** Writes that failed (counted, not in the latencies). */
  readonly errors: number
  readonly seconds: number
  readonly writesPerSec: number
  /** Latency of one write, from the call to its acknowledgement, in ms. */
  readonly p50Ms: number
  readonly p99Ms: number
  readonly p999Ms: number
  readonly maxMs: number
  readonly meanMs: number
  /** [nines, ms] pairs (see CURVE_NINES), for the latency-distribution plot. */
  readonly curve: ReadonlyArray<readonly [number, number]>
}

/** Latencies (ms) and elapsed seconds of one or more measured intervals. */
export interface Samples {
  readonly parts: Float64Array[]
  seconds: number
  errors: number
}

export function emptySamples(): Samples {
  return { parts: [], seconds: 0, errors: 0 }
}

/** Merges the intervals of `samples` and summarises them. */
export function summarize(samples: Samples): LatencySummary {
  const all = new Float64Array(samples.parts.reduce((n, p) => n + p.length, 0))
  let at = 0
  for (const p of samples.parts) {
    all.set(p, at)
    at += p.length
  }
  all.sort()
  let sum = 0
  for (const v of all) sum += v
  const curve: Array<readonly [number, number]> = []
  for (const nines of CURVE_NINES) {
    const p = 100 * (1 - 10 ** -nines)
    // A percentile needs at least one sample beyond it to mean anything.
    if (all.length * (1 - p / 100) < 1 && nines > 0) break
    curve.push([nines, round3(percentile(all, p))])
  }
  return {
    writes: all.length,
    errors: samples.errors,
    seconds: round3(samples.seconds),
    writesPerSec: samples.seconds > 0 ? Math.round(all.length / samples.seconds) : 0,
    p50Ms: round3(percentile(all, 50)),
    p99Ms: round3(percentile(all, 99)),
    p999Ms: round3(percentile(all, 99.9)),
    maxMs: round3(percentile(all, 100)),
    meanMs: all.length > 0 ? round3(sum / all.length) : NaN,
    curve,
  }
}

/** Rounds to 3 decimals (JSON output stays readable; microsecond resolution is enough). */
export function round3(v: number): number {
  return Math.round(v * 1000) / 1000
}
