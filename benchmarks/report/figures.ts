/** The run's figures as SVG files: throughput against writers, and the latency distributions. */
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { BenchResult } from '../result.js'
import { SYSTEM_LABEL, WRITE_SYSTEMS } from '../sections/writes.js'
import { lineChart, type Series } from './svg.js'

const NINES_TICKS = [
  { value: 0, label: 'p0' },
  { value: 1, label: 'p90' },
  { value: 2, label: 'p99' },
  { value: 3, label: 'p99.9' },
  { value: 4, label: 'p99.99' },
]

/** Writes every figure the result has data for into `dir`; returns the file names. */
export async function writeFigures(r: BenchResult, dir: string): Promise<string[]> {
  const files: Array<[string, string]> = []
  const sub = `${r.machine.cpuModel}, ${r.machine.cores} cores; ${r.date.slice(0, 10)}${r.quick ? '; --quick' : ''}`
  if (r.writes && r.writes.rows.length > 0) {
    const rows = r.writes.rows
    const series: Series[] = WRITE_SYSTEMS.filter((s) => rows.some((w) => w.systems[s])).map((s) => ({
      name: SYSTEM_LABEL[s],
      points: rows.flatMap((w) => (w.systems[s] ? [[w.concurrency, w.systems[s].writesPerSec] as const] : [])),
    }))
    files.push([
      'throughput.svg',
      lineChart({
        title: `Durable writes/s against concurrent writers (${r.writes.valueSize}-byte values)`,
        subtitle: sub,
        x: { label: 'concurrent writers', scale: 'log', ticks: rows.map((w) => ({ value: w.concurrency, label: String(w.concurrency) })) },
        y: { label: 'writes/s', scale: 'log' },
        series,
      }),
    ])
    for (const w of rows) {
      files.push([
        `latency-${w.concurrency}.svg`,
        lineChart({
          title: `Write latency distribution, ${w.concurrency} writer${w.concurrency === 1 ? '' : 's'}`,
          subtitle: sub,
          x: { label: 'percentile', scale: 'linear', ticks: NINES_TICKS.filter((t) => t.value <= Math.max(...WRITE_SYSTEMS.map((s) => w.systems[s]?.curve.at(-1)?.[0] ?? 0)) + 0.5) },
          y: { label: 'latency, ms', scale: 'log' },
          series: WRITE_SYSTEMS.filter((s) => w.systems[s]).map((s) => ({ name: SYSTEM_LABEL[s], points: w.systems[s]!.curve })),
        }),
      ])
    }
  }
  if (r.failover && r.failover.length > 0) {
    const series: Series[] = []
    for (const s of r.failover) {
      series.push({ name: `${s.system.split(',')[0]}${s.system.includes('tick 50') ? ' (tick 50)' : ''}: write`, points: s.reps.flatMap((x, i) => (x.writeMs === null ? [] : [[i + 1, x.writeMs] as const])) })
      if (s.leaderCheckMedianMs !== undefined) series.push({ name: `${s.system.split(',')[0]}${s.system.includes('tick 50') ? ' (tick 50)' : ''}: leader-check`, points: s.reps.flatMap((x, i) => (x.leaderCheckMs === undefined || x.leaderCheckMs === null ? [] : [[i + 1, x.leaderCheckMs] as const])) })
    }
    files.push([
      'failover.svg',
      lineChart({
        title: 'Failover: SIGKILL of the leader to the next acknowledged write',
        subtitle: sub,
        x: { label: 'repetition', scale: 'linear', include: 0 },
        y: { label: 'ms after the kill', scale: 'linear', include: 0 },
        series,
        lines: false,
      }),
    ])
  }
  for (const [name, svg] of files) await writeFile(join(dir, name), svg)
  return files.map(([name]) => name)
}
