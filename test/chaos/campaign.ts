/**
 * A campaign: runs one after the other, and the summary of their figures (runs, faults by type,
 * operations checked, violations, the recovery-time distribution, the security probes).
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ChaosRun, RECOVERY, type RunResult } from './run.js'
import { runSchedule } from './schedule.js'

export interface CampaignOptions {
  runs: number
  /** Fault phase of each run, in ms. */
  faultMs: number
  seed: number
  /** Fixed cluster size; by default even seeds run 3 daemons and odd seeds 5. */
  nodes?: 3 | 5
  outDir: string
  keep?: boolean
  log?: (line: string) => void
  /** Called after each run. */
  onRun?: (r: RunResult, index: number) => void
}

export interface Distribution {
  n: number
  min: number
  median: number
  p90: number
  max: number
}

export interface CampaignSummary {
  runs: number
  passed: number
  failed: Array<{ seed: number; nodes: number; folder?: string; violations: string[] }>
  clusters: Record<string, number>
  faults: Record<string, number>
  operations: { recorded: number; checked: number; acknowledged: number; unknown: number; proxied: number }
  leaseSamples: { samples: number; passing: number }
  violations: number
  recovery: { boundMs: typeof RECOVERY; firstWriteMs: Distribution; caughtUpMs: Distribution }
  security: Record<string, number>
  durationMs: number
}

/** The seed of run `i` of a campaign seeded with `seed`. */
export const runSeed = (seed: number, i: number): number => (seed + i) >>> 0

export function distribution(xs: readonly number[]): Distribution {
  const s = [...xs].sort((a, b) => a - b)
  const at = (q: number): number => (s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.floor(q * s.length))]!)
  return { n: s.length, min: s[0] ?? NaN, median: at(0.5), p90: at(0.9), max: s[s.length - 1] ?? NaN }
}

export async function runCampaign(o: CampaignOptions): Promise<CampaignSummary> {
  mkdirSync(o.outDir, { recursive: true })
  const started = Date.now()
  const results: RunResult[] = []
  for (let i = 0; i < o.runs; i++) {
    const seed = runSeed(o.seed, i)
    const nodes = o.nodes ?? (seed % 2 === 0 ? 3 : 5)
    const run = new ChaosRun({ seed, nodes, faultMs: o.faultMs, outDir: o.outDir, ...(o.keep ? { keep: true } : {}), ...(o.log ? { log: o.log } : {}) })
    const r = await run.execute(runSchedule)
    results.push(r)
    o.onRun?.(r, i)
  }
  return summarize(results, Date.now() - started)
}

export function summarize(results: readonly RunResult[], durationMs: number): CampaignSummary {
  const add = (into: Record<string, number>, from: Record<string, number>): void => {
    for (const [k, v] of Object.entries(from)) into[k] = (into[k] ?? 0) + v
  }
  const faults: Record<string, number> = {}
  const security: Record<string, number> = {}
  const clusters: Record<string, number> = {}
  const operations = { recorded: 0, checked: 0, acknowledged: 0, unknown: 0, proxied: 0 }
  for (const r of results) {
    add(faults, r.faults)
    add(security, r.security)
    add(clusters, { [`${r.nodes} daemons`]: 1 })
    operations.recorded += r.operations.recorded
    operations.checked += r.operations.checked
    operations.acknowledged += r.operations.acknowledged
    operations.unknown += r.operations.unknown
    operations.proxied += r.operations.proxied
  }
  return {
    runs: results.length,
    passed: results.filter((r) => r.ok).length,
    failed: results.filter((r) => !r.ok).map((r) => ({ seed: r.seed, nodes: r.nodes, ...(r.folder ? { folder: r.folder } : {}), violations: r.violations })),
    clusters,
    faults,
    operations,
    leaseSamples: { samples: results.reduce((s, r) => s + r.leaseSamples.samples, 0), passing: results.reduce((s, r) => s + r.leaseSamples.passing, 0) },
    violations: results.reduce((s, r) => s + r.violations.length, 0),
    recovery: {
      boundMs: RECOVERY,
      firstWriteMs: distribution(results.flatMap((r) => (r.recovery ? [r.recovery.firstWriteMs] : []))),
      caughtUpMs: distribution(results.flatMap((r) => (r.recovery ? [r.recovery.caughtUpMs] : []))),
    },
    security,
    durationMs,
  }
}

const ms = (x: number): string => (Number.isNaN(x) ? '-' : `${(x / 1000).toFixed(2)} s`)

export function formatSummary(s: CampaignSummary): string {
  const lines = [
    `runs: ${s.runs} (${Object.entries(s.clusters).map(([k, v]) => `${v} of ${k}`).join(', ')}), passed ${s.passed}, failed ${s.failed.length}`,
    `faults injected: ${Object.values(s.faults).reduce((a, b) => a + b, 0)}`,
    ...Object.entries(s.faults)
      .sort((a, b) => b[1] - a[1])
      .map(([k, v]) => `  ${k.padEnd(16)} ${v}`),
    `operations checked: ${s.operations.checked} of ${s.operations.recorded} recorded (${s.operations.acknowledged} acknowledged, ${s.operations.unknown} writes of unknown outcome, ${s.operations.proxied} proxied)`,
    `leader-check samples: ${s.leaseSamples.samples} (${s.leaseSamples.passing} passing; never two nodes in overlapping windows)`,
    `violations: ${s.violations}`,
    `recovery after the faults stop (bounds ${ms(s.recovery.boundMs.firstWriteMs)} / ${ms(s.recovery.boundMs.caughtUpMs)}):`,
    ...(['firstWriteMs', 'caughtUpMs'] as const).map((k) => {
      const d = s.recovery[k]
      return `  ${k === 'firstWriteMs' ? 'first write' : 'caught up  '}  min ${ms(d.min)}  median ${ms(d.median)}  p90 ${ms(d.p90)}  max ${ms(d.max)}  (${d.n} runs)`
    }),
    `security: ${Object.entries(s.security).map(([k, v]) => `${k} ${v}`).join(', ')}`,
  ]
  for (const f of s.failed) lines.push(`FAILED seed ${f.seed} (${f.nodes} daemons), folder ${f.folder ?? '-'}:`, ...f.violations.slice(0, 5).map((v) => `  ${v.split('\n').slice(0, 8).join('\n  ')}`))
  return lines.join('\n')
}

export function writeSummary(outDir: string, s: CampaignSummary): string {
  const file = join(outDir, `summary-${new Date().toISOString().replace(/[:.]/g, '')}.json`)
  writeFileSync(file, JSON.stringify(s, null, 1))
  return file
}
