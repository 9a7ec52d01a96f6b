/**
 * Runs many seeds across worker threads and aggregates their summaries. Seeds go out in small
 * batches to whichever worker is idle; the aggregate does not depend on which worker ran what.
 */
import { Worker } from 'node:worker_threads'
import { FAULT_TYPES, type FaultType } from './faults.js'
import { LIVENESS_ROUNDS, runSeed, type RunOptions, type RunSummary } from './run.js'
import type { WorkerReply, WorkerRequest } from './worker.js'

export interface Aggregate {
  from: number
  seedsRun: number
  faults: Record<FaultType, number>
  clusterSizes: Record<string, number>
  elections: number
  commits: number
  applied: number
  events: number
  snapshotsInstalled: number
  crashes: number
  clientOps: number
  clientOpsOk: number
  clientOpsUnknown: number
  linearizabilityInconclusive: number
  maxLivenessTicks: number
  maxLivenessRounds: number
  /** The seed that took longest from heal to a new commit, in rounds. */
  slowestLivenessSeed: number
  violationsByKind: Record<string, number>
  failing: { seed: number; kind: string; message: string }[]
}

export function emptyAggregate(from: number): Aggregate {
  return {
    from,
    seedsRun: 0,
    faults: Object.fromEntries(FAULT_TYPES.map((t) => [t, 0])) as Record<FaultType, number>,
    clusterSizes: {},
    elections: 0,
    commits: 0,
    applied: 0,
    events: 0,
    snapshotsInstalled: 0,
    crashes: 0,
    clientOps: 0,
    clientOpsOk: 0,
    clientOpsUnknown: 0,
    linearizabilityInconclusive: 0,
    maxLivenessTicks: 0,
    maxLivenessRounds: 0,
    slowestLivenessSeed: -1,
    violationsByKind: {},
    failing: [],
  }
}

/** Adds one run's summary to the aggregate. */
export function addSummary(agg: Aggregate, r: RunSummary): void {
  agg.seedsRun++
  for (const t of FAULT_TYPES) agg.faults[t] += r.faults[t]
  const size = `${r.voters}v${r.learners > 0 ? `+${r.learners}l` : ''}`
  agg.clusterSizes[size] = (agg.clusterSizes[size] ?? 0) + 1
  agg.elections += r.elections
  agg.commits += r.commits
  agg.applied += r.applied
  agg.events += r.events
  agg.snapshotsInstalled += r.snapshotsInstalled
  agg.crashes += r.crashes
  agg.clientOps += r.clientOps
  agg.clientOpsOk += r.clientOpsOk
  agg.clientOpsUnknown += r.clientOpsUnknown
  if (r.linearizability === 'timeout') agg.linearizabilityInconclusive++
  agg.maxLivenessTicks = Math.max(agg.maxLivenessTicks, r.livenessTicks)
  if (r.livenessRounds > agg.maxLivenessRounds) {
    agg.maxLivenessRounds = r.livenessRounds
    agg.slowestLivenessSeed = r.seed
  }
  if (r.violation) {
    agg.violationsByKind[r.violation.kind] = (agg.violationsByKind[r.violation.kind] ?? 0) + 1
    agg.failing.push({ seed: r.seed, ...r.violation })
  }
}

export interface RunSeedsOptions {
  from: number
  count: number
  /** Worker threads; 0 runs in this thread. */
  jobs: number
  batch?: number
  runOptions?: RunOptions
  onProgress?: (done: number, failing: number) => void
}

/** Runs seeds from..from+count-1 and aggregates them; failing seeds come out sorted. */
export async function runSeeds(o: RunSeedsOptions): Promise<Aggregate> {
  const agg = emptyAggregate(o.from)
  const runOptions = o.runOptions ?? {}
  const end = o.from + o.count
  if (o.jobs === 0) {
    for (let s = o.from; s < end; s++) {
      addSummary(agg, runSeed(s, runOptions))
      o.onProgress?.(agg.seedsRun, agg.failing.length)
    }
    return agg
  }
  const batch = o.batch ?? 8
  let next = o.from
  const boot = new URL('./worker-boot.mjs', import.meta.url)
  const workers = Array.from({ length: Math.max(1, Math.min(o.jobs, o.count)) }, () => new Worker(boot))
  try {
    await Promise.all(
      workers.map(
        (w) =>
          new Promise<void>((resolve, reject) => {
            const feed = (): void => {
              if (next >= end) return resolve()
              const seeds: number[] = []
              while (seeds.length < batch && next < end) seeds.push(next++)
              w.postMessage({ seeds, options: runOptions } satisfies WorkerRequest)
            }
            w.on('message', (reply: WorkerReply) => {
              for (const r of reply.summaries) addSummary(agg, r)
              o.onProgress?.(agg.seedsRun, agg.failing.length)
              feed()
            })
            w.on('error', reject)
            w.on('exit', (code) => {
              if (next < end || code !== 0) reject(new Error(`simulator worker exited with code ${code}`))
            })
            feed()
          }),
      ),
    )
  } finally {
    await Promise.all(workers.map((w) => w.terminate()))
  }
  agg.failing.sort((a, b) => a.seed - b.seed)
  return agg
}

/** A human-readable summary. */
export function formatAggregate(a: Aggregate): string {
  const lines = [
    `seeds run: ${a.seedsRun} (from ${a.from})`,
    `cluster sizes: ${Object.entries(a.clusterSizes)
      .sort()
      .map(([k, v]) => `${k}=${v}`)
      .join(' ')}`,
    `faults injected: ${FAULT_TYPES.map((t) => `${t}=${a.faults[t]}`).join(' ')}`,
    `elections: ${a.elections}  commits (sum of final commit index): ${a.commits}  entries applied: ${a.applied}`,
    `snapshots installed: ${a.snapshotsInstalled}  crashes: ${a.crashes}  events: ${a.events}`,
    `client ops checked: ${a.clientOps} (${a.clientOpsOk} ok, ${a.clientOpsUnknown} unknown outcome)  linearizability inconclusive: ${a.linearizabilityInconclusive}`,
    `liveness: heal to a new commit took at most ${a.maxLivenessTicks} ticks, ${a.maxLivenessRounds} election rounds (seed ${a.slowestLivenessSeed}; bound ${LIVENESS_ROUNDS})`,
    `violations: ${a.failing.length}${a.failing.length > 0 ? ` (${Object.entries(a.violationsByKind).map(([k, v]) => `${k}=${v}`).join(' ')})` : ''}`,
  ]
  if (a.failing.length > 0) {
    const byDiagnosis = new Map<string, number>()
    for (const f of a.failing) {
      const tag = /\[([a-z-]+)[:\](]/.exec(f.message)?.[1]
      const key = tag === undefined ? f.kind : `${f.kind}[${tag}]`
      byDiagnosis.set(key, (byDiagnosis.get(key) ?? 0) + 1)
    }
    lines.push(`by diagnosis: ${[...byDiagnosis].map(([k, v]) => `${k}=${v}`).join(' ')}`)
    lines.push(`failing seeds: ${a.failing.map((f) => f.seed).join(' ')}`)
    for (const f of a.failing.slice(0, 20)) lines.push(`  seed ${f.seed}: ${f.message.split('\n')[0]!.slice(0, 300)}`)
  }
  return lines.join('\n')
}
