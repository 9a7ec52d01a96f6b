/**
 * Fuzz runs: cases in order with heap checkpoints after gc (the memory check), summaries, and
 * merging the summaries of shards (runner.ts runs them in child processes).
 */
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { ENTRY_POINTS, FuzzEngine, emptyStats, type EngineOptions, type Finding, type FuzzStats } from './engine.js'

// ---------------------------------------------------------------------------------------------
// Runs with memory checkpoints

/** The garbage collector: global gc() under --expose-gc, else enabled at run time. */
export function getGc(): () => void {
  const g = (globalThis as { gc?: () => void }).gc
  if (typeof g === 'function') return g
  setFlagsFromString('--expose-gc')
  return runInNewContext('gc') as () => void
}

export interface HeapSample {
  /** Cases completed when the sample was taken. */
  readonly cases: number
  readonly heapUsed: number
  readonly arrayBuffers: number
  readonly elapsedMs: number
}

export interface RunOptions extends EngineOptions {
  /** First case number. @default 0 */
  readonly from?: number
  /** Distance between case numbers: shard k of J runs from + k with stride J. @default 1 */
  readonly stride?: number
  /** Cases to run (at most). */
  readonly cases: number
  /** Stop after this much time (ms), whatever `cases` says. */
  readonly maxMs?: number
  /** Stop after this many findings. @default 10 */
  readonly maxFindings?: number
  /** Sample the heap (after gc) every this many cases. @default 5000 */
  readonly checkpointEvery?: number
  /** Memory growth is measured from the first checkpoint at or after this many cases. @default checkpointEvery */
  readonly warmup?: number
  /** The bound on heap (and, separately, ArrayBuffer) growth after warm-up. @default 32 MiB */
  readonly maxHeapGrowth?: number
  /** Called every `progressEvery` cases with the next case number. @default 1000 */
  readonly progressEvery?: number
  readonly onProgress?: (nextCase: number, stats: FuzzStats) => void
  readonly onCheckpoint?: (sample: HeapSample) => void
  readonly onFinding?: (finding: Finding) => void
}

export interface RunSummary {
  readonly seed: number
  readonly from: number
  /** Case numbers ran from, from + stride, ... */
  readonly stride: number
  readonly stats: FuzzStats
  readonly findings: readonly Finding[]
  readonly samples: readonly HeapSample[]
  /** heapUsed growth from the warm-up checkpoint to the end (bytes), and the largest sample minus it. */
  readonly heapGrowth: number
  readonly heapPeakGrowth: number
  readonly arrayBuffersGrowth: number
  readonly elapsedMs: number
}

export const DEFAULT_MAX_HEAP_GROWTH = 32 * 1024 * 1024

/** Runs cases `from`.. until `cases` or `maxMs` is reached, sampling the heap; adds a memory finding if it grew. */
export function runFuzz(options: RunOptions): RunSummary {
  const engine = new FuzzEngine(options)
  const gc = getGc()
  const from = options.from ?? 0
  const stride = Math.max(1, options.stride ?? 1)
  const every = Math.max(1, options.checkpointEvery ?? 5000)
  const warmup = options.warmup ?? every
  const progressEvery = Math.max(1, options.progressEvery ?? 1000)
  const maxFindings = options.maxFindings ?? 10
  const maxGrowth = options.maxHeapGrowth ?? DEFAULT_MAX_HEAP_GROWTH
  const started = performance.now()
  const samples: HeapSample[] = []
  const sample = (done: number): HeapSample => {
    gc()
    gc()
    const m = process.memoryUsage()
    const s = { cases: done, heapUsed: m.heapUsed, arrayBuffers: m.arrayBuffers, elapsedMs: performance.now() - started }
    samples.push(s)
    options.onCheckpoint?.(s)
    return s
  }
  sample(0)
  for (const message of engine.trailersProblems()) {
    const f: Finding = { check: 'round-trip', seed: options.seed, caseNo: from, family: 'trailer', site: 'decodeEnvelope(trailer)', message, hex: '' }
    engine.findings.push(f)
    options.onFinding?.(f)
  }
  let n = 0
  // Capturing stack traces is a large part of the cost of a rejected frame; findings do not need them.
  const stackTraceLimit = Error.stackTraceLimit
  Error.stackTraceLimit = 0
  try {
    while (n < options.cases && engine.findings.length < maxFindings) {
      if (options.maxMs !== undefined && n % 64 === 0 && performance.now() - started > options.maxMs) break
      for (const f of engine.runCase(from + n * stride)) options.onFinding?.(f)
      n++
      if (n % progressEvery === 0) options.onProgress?.(from + n * stride, engine.stats)
      if (n % every === 0) sample(n)
    }
  } finally {
    Error.stackTraceLimit = stackTraceLimit
  }
  if (samples[samples.length - 1]!.cases !== n) sample(n)
  const base = samples.find((s) => s.cases >= warmup && s.cases < n) ?? samples[0]!
  const last = samples[samples.length - 1]!
  const heapGrowth = last.heapUsed - base.heapUsed
  const arrayBuffersGrowth = last.arrayBuffers - base.arrayBuffers
  const heapPeakGrowth = Math.max(...samples.filter((s) => s.cases >= base.cases).map((s) => s.heapUsed)) - base.heapUsed
  for (const [what, growth] of [['heap', heapGrowth], ['ArrayBuffer memory', arrayBuffersGrowth]] as const) {
    if (growth <= maxGrowth) continue
    const f: Finding = {
      check: 'memory',
      seed: options.seed,
      caseNo: from + base.cases * stride,
      family: '*',
      site: `cases ${from + base.cases * stride}..${from + (n - 1) * stride}${stride > 1 ? ` (every ${stride}th)` : ''}`,
      message: `${what} grew by ${mib(growth)} after gc, over the ${mib(maxGrowth)} bound (${samples.map((s) => mib(what === 'heap' ? s.heapUsed : s.arrayBuffers)).join(' → ')})`,
      hex: '',
    }
    engine.findings.push(f)
    options.onFinding?.(f)
  }
  return { seed: options.seed, from, stride, stats: engine.stats, findings: engine.findings, samples, heapGrowth, heapPeakGrowth, arrayBuffersGrowth, elapsedMs: performance.now() - started }
}

/**
 * One summary for shards that ran cases from + k, stride J (k < J) with equal counts give or take
 * one: together, cases from.. in order.
 */
export function mergeSummaries(shards: readonly RunSummary[]): RunSummary {
  if (shards.length === 1) return shards[0]!
  const stats = emptyStats()
  for (const { stats: st } of shards) {
    for (const k of ['cases', 'streams', 'streamsRejected', 'streamFrames', 'inputsDecoded', 'inputsRejected', 'decodeMs'] as const) stats[k] += st[k]
    for (const e of ENTRY_POINTS) {
      stats.calls[e] += st.calls[e]
      stats.decoded[e] += st.decoded[e]
      stats.rejected[e] += st.rejected[e]
    }
    for (const [f, n] of Object.entries(st.families)) stats.families[f] = (stats.families[f] ?? 0) + n
    for (const [f, ms] of Object.entries(st.familyMs)) stats.familyMs[f] = (stats.familyMs[f] ?? 0) + ms
    if (st.slowestMs > stats.slowestMs) Object.assign(stats, { slowestMs: st.slowestMs, slowestCase: st.slowestCase, slowestFamily: st.slowestFamily })
  }
  const max = (f: (s: RunSummary) => number): number => Math.max(...shards.map(f))
  return {
    seed: shards[0]!.seed,
    from: Math.min(...shards.map((s) => s.from)),
    stride: 1,
    stats,
    findings: shards.flatMap((s) => s.findings),
    samples: shards.flatMap((s) => s.samples),
    heapGrowth: max((s) => s.heapGrowth),
    heapPeakGrowth: max((s) => s.heapPeakGrowth),
    arrayBuffersGrowth: max((s) => s.arrayBuffersGrowth),
    elapsedMs: max((s) => s.elapsedMs),
  }
}

export const mib = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MiB`

/** The summary table printed by the CLI and the test. */
export function formatSummary(s: Pick<RunSummary, 'seed' | 'from' | 'stride' | 'stats' | 'findings' | 'heapGrowth' | 'heapPeakGrowth' | 'arrayBuffersGrowth' | 'elapsedMs'>): string {
  const st = s.stats
  const rows: [string, string][] = [
    ['seed', String(s.seed)],
    ['cases (fuzz frames)', `${st.cases.toLocaleString('en')} (cases ${s.from}..${s.from + (st.cases - 1) * s.stride}${s.stride > 1 ? `, every ${s.stride}th` : ''})`],
    ['frames decoded', `${st.inputsDecoded.toLocaleString('en')} inputs accepted by some entry point, ${st.inputsRejected.toLocaleString('en')} refused by all`],
    ...ENTRY_POINTS.map((e): [string, string] => [`  ${e}`, `${st.calls[e].toLocaleString('en')} calls: ${st.decoded[e].toLocaleString('en')} decoded, ${st.rejected[e].toLocaleString('en')} DECODE_ERROR`]),
    ['streams', `${st.streams.toLocaleString('en')} (${st.streamsRejected.toLocaleString('en')} refused), ${st.streamFrames.toLocaleString('en')} frames reassembled`],
    ['slowest case', `${st.slowestMs.toFixed(2)} ms (case ${st.slowestCase}, ${st.slowestFamily})`],
    ['decoder time', `${(st.decodeMs / 1000).toFixed(1)} s in decoders (all jobs), ${(s.elapsedMs / 1000).toFixed(1)} s wall`],
    ['heap growth', `${mib(s.heapGrowth)} after warm-up (peak ${mib(s.heapPeakGrowth)}), ArrayBuffers ${mib(s.arrayBuffersGrowth)}`],
    ['findings', String(s.findings.length)],
  ]
  const width = Math.max(...rows.map(([k]) => k.length))
  return rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n')
}
