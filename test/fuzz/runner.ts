/**
 * Runs the fuzz engine in a child process (child.ts) and watches it: the test and `npm run fuzz`
 * both use this. The child gets `--expose-gc`, so its heap checkpoints are exact, and a heap of its
 * own, so nothing else pollutes the measurement.
 *
 * A decoder that never returns cannot be caught from inside its own thread. So the child reports
 * progress every `progressEvery` cases; when it goes quiet for `stallMs`, the runner kills it and
 * runs that window again, one progress line per case, to name the case that hangs. A child that
 * dies (a native crash, an out-of-memory abort) is pinpointed the same way. Cases are pure
 * functions of (seed, case number), so the runner rebuilds the culprit's bytes itself.
 */
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { createInterface } from 'node:readline'
import { makeCase } from './cases.js'
import { emptyStats, type Finding, type FuzzStats } from './engine.js'
import { mergeSummaries, type HeapSample, type RunSummary } from './run.js'
import type { FaultName } from './faults.js'
import { toHex } from './wire.js'

const CHILD = fileURLToPath(new URL('./child.ts', import.meta.url))
const REPO = fileURLToPath(new URL('../../', import.meta.url))

export interface ChildRunOptions {
  readonly seed: number
  readonly from?: number
  /** Run cases from, from + stride, ... @default 1 */
  readonly stride?: number
  readonly cases: number
  readonly maxMs?: number
  readonly checkpointEvery?: number
  readonly warmup?: number
  /** @default 1000 */
  readonly progressEvery?: number
  readonly maxFindings?: number
  readonly maxHeapGrowth?: number
  readonly perCaseMs?: number
  /** A broken codec from faults.ts (the engine's own tests). */
  readonly fault?: FaultName
  /** Silence after which the child is deemed hung. @default 30000 */
  readonly stallMs?: number
  /** Time allowed for the child to start (tsx compiles the sources). @default 60000 */
  readonly startupMs?: number
  readonly onProgress?: (nextCase: number, stats: FuzzStats) => void
  readonly onCheckpoint?: (sample: HeapSample) => void
  readonly onFinding?: (finding: Finding) => void
}

interface Attempt {
  readonly outcome: 'done' | 'stalled' | 'died'
  readonly summary?: RunSummary
  readonly findings: Finding[]
  readonly samples: HeapSample[]
  /** The first case not known to have completed. */
  readonly next: number
  readonly stats?: FuzzStats
  readonly exit: string
  readonly stderr: string
}

function attempt(o: ChildRunOptions): Promise<Attempt> {
  const args = [CHILD, '--seed', String(o.seed), '--cases', String(o.cases), '--from', String(o.from ?? 0), '--stride', String(o.stride ?? 1), '--progress-every', String(o.progressEvery ?? 1000)]
  const optional: [string, number | string | undefined][] = [
    ['--max-ms', o.maxMs],
    ['--checkpoint-every', o.checkpointEvery],
    ['--warmup', o.warmup],
    ['--max-findings', o.maxFindings],
    ['--max-heap-growth', o.maxHeapGrowth],
    ['--per-case-ms', o.perCaseMs],
    ['--fault', o.fault],
  ]
  for (const [flag, v] of optional) if (v !== undefined) args.push(flag, String(v))
  const child = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', ...args], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] })
  const findings: Finding[] = []
  const samples: HeapSample[] = []
  let next = o.from ?? 0
  let stats: FuzzStats | undefined
  let summary: RunSummary | undefined
  let stderr = ''
  let stalled = false
  let started = false
  child.stderr.setEncoding('utf8')
  child.stderr.on('data', (d: string) => {
    stderr = (stderr + d).slice(-8192)
  })
  let timer: NodeJS.Timeout
  const arm = (): void => {
    clearTimeout(timer)
    timer = setTimeout(
      () => {
        stalled = true
        child.kill('SIGKILL')
      },
      started ? (o.stallMs ?? 30_000) : (o.startupMs ?? 60_000),
    )
  }
  arm()
  createInterface({ input: child.stdout }).on('line', (line) => {
    let m: { t: string; [k: string]: unknown }
    try {
      m = JSON.parse(line) as typeof m
    } catch {
      return
    }
    started = true
    arm()
    switch (m.t) {
      case 'progress':
        next = m.next as number
        stats = m.stats as FuzzStats
        o.onProgress?.(next, stats)
        break
      case 'checkpoint':
        samples.push(m.sample as HeapSample)
        o.onCheckpoint?.(m.sample as HeapSample)
        break
      case 'finding':
        findings.push(m.finding as Finding)
        o.onFinding?.(m.finding as Finding)
        break
      case 'summary':
        summary = m.summary as RunSummary
        break
    }
  })
  return new Promise((resolve, reject) => {
    child.on('error', (err) => {
      clearTimeout(timer)
      reject(err)
    })
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      const outcome = stalled ? 'stalled' : summary !== undefined && code === 0 ? 'done' : 'died'
      resolve({ outcome, ...(summary ? { summary } : {}), findings, samples, next, ...(stats ? { stats } : {}), exit: signal !== null ? `signal ${signal}` : `code ${code}`, stderr })
    })
  })
}

/** Runs the fuzz in a child; a hang or a crash becomes a finding naming its case. */
export async function runInChild(o: ChildRunOptions): Promise<RunSummary> {
  const first = await attempt(o)
  if (first.outcome === 'done') return first.summary!
  const every = o.progressEvery ?? 1000
  const from = o.from ?? 0
  const stride = o.stride ?? 1
  const done = (first.next - from) / stride
  // Again, from the last progress report, reporting every case: the last report names the culprit.
  const again = await attempt({ seed: o.seed, from: first.next, stride, cases: Math.min(every, o.cases - done), progressEvery: 1, checkpointEvery: 1e9, ...pick(o, ['fault', 'stallMs', 'startupMs', 'perCaseMs']) })
  const recurred = again.outcome === first.outcome
  const caseNo = recurred ? again.next : first.next
  const c = makeCase(o.seed, caseNo)
  const what = first.outcome === 'stalled' ? `no progress for ${o.stallMs ?? 30_000} ms: killed` : `the process died (${first.exit})${first.stderr ? `: ${first.stderr.trim().split('\n').slice(-3).join(' | ')}` : ''}`
  const finding: Finding = {
    check: first.outcome === 'stalled' ? 'hang' : 'crash',
    seed: o.seed,
    caseNo,
    family: c.family,
    site: recurred ? `case ${caseNo}, run alone` : `somewhere in cases ${first.next}..${first.next + (every - 1) * stride} (it did not recur when they ran again)`,
    message: what,
    hex: toHex(c.input),
    limits: c.limits,
  }
  o.onFinding?.(finding)
  const elapsed = first.samples.at(-1)?.elapsedMs ?? 0
  return {
    seed: o.seed,
    from,
    stride,
    stats: first.stats ?? emptyStats(),
    findings: [...first.findings, finding],
    samples: first.samples,
    heapGrowth: 0,
    heapPeakGrowth: 0,
    arrayBuffersGrowth: 0,
    elapsedMs: elapsed,
  }
}

/**
 * The same run split across `jobs` children (cases interleaved: child k runs from + k, stride
 * jobs), merged into one summary: the wall time divides by the cores available.
 */
export async function runSharded(o: ChildRunOptions, jobs: number): Promise<RunSummary> {
  const from = o.from ?? 0
  const n = Math.max(1, Math.min(jobs, o.cases))
  const shards = Array.from({ length: n }, (_, k) => {
    const cases = Math.floor(o.cases / n) + (k < o.cases % n ? 1 : 0)
    const progress = o.onProgress
    return runInChild({
      ...o,
      from: from + k,
      stride: n,
      cases,
      // Progress is reported per shard; the caller sees the shards' sum.
      ...(progress ? { onProgress: (_next: number, stats: FuzzStats) => progress(from + k, mergeProgress(k, stats)) } : {}),
    })
  })
  const latest: FuzzStats[] = []
  function mergeProgress(k: number, stats: FuzzStats): FuzzStats {
    latest[k] = stats
    return mergeSummaries(latest.filter(Boolean).map((st) => ({ ...EMPTY_SUMMARY, stats: st }))).stats
  }
  return mergeSummaries(await Promise.all(shards))
}

const EMPTY_SUMMARY: RunSummary = { seed: 0, from: 0, stride: 1, stats: emptyStats(), findings: [], samples: [], heapGrowth: 0, heapPeakGrowth: 0, arrayBuffersGrowth: 0, elapsedMs: 0 }

function pick<T extends object, K extends keyof T>(o: T, keys: K[]): Partial<Pick<T, K>> {
  const out: Partial<Pick<T, K>> = {}
  for (const k of keys) if (o[k] !== undefined) out[k] = o[k]
  return out
}
