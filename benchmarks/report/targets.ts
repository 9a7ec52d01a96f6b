/**
 * The issue's targets, checked against a run. They are targets, not assertions: the output says
 * which are met and, for the others, by what factor holdfast falls short.
 */
import type { BenchResult, TargetResult } from '../result.js'

const f2 = (v: number): string => (v >= 10 ? v.toFixed(1) : v.toFixed(2))

/** `value` against a lower bound (`atLeast`) or an upper bound. */
function check(name: string, goal: string, measured: string, value: number | undefined | null, bound: number, atLeast: boolean): TargetResult {
  if (value === undefined || value === null || !Number.isFinite(value)) return { name, goal, measured: measured || 'not measured', met: null, shortBy: null }
  const met = atLeast ? value >= bound : value <= bound
  return { name, goal, measured, met, shortBy: met ? null : Math.round((atLeast ? bound / value : value / bound) * 100) / 100 }
}

export function checkTargets(r: BenchResult): TargetResult[] {
  const out: TargetResult[] = []
  const row = (c: number) => r.writes?.rows.find((w) => w.concurrency === c)
  const r64 = row(64)
  for (const s of r.writes ? (['embedded', 'http'] as const) : []) {
    const v = r64?.vsEtcd?.[s]
    out.push(check(`64 writers, ${s}: throughput vs etcd`, '>= 10x', v ? `${f2(v.throughput)}x` : '', v?.throughput, 10, true))
    out.push(check(`64 writers, ${s}: p99 vs etcd`, '<= 0.33x', v ? `${f2(v.p99)}x` : '', v?.p99, 1 / 3, false))
  }
  const fl = r.floor
  if (fl && r.writes) out.push(check('1 writer, embedded: p50 vs lmdb-js put + round trip', '<= 1.5x', fl?.embeddedVsLmdbRtt ? `${f2(fl.embeddedVsLmdbRtt)}x (${f2(fl.embeddedP50Ms!)} vs ${f2(fl.lmdbRttMs!)} ms)` : '', fl?.embeddedVsLmdbRtt, 1.5, false))
  const r256 = row(256)
  const v256 = r256?.vsRaw.embedded.throughput
  if (r.writes) out.push(check('256 writers, embedded: throughput vs raw lmdb-js', '>= 0.1x', v256 !== undefined ? `${f2(v256)}x` : '', v256, 0.1, true))
  const etcd = r.failover?.find((s) => s.system.startsWith('etcd'))
  for (const s of r.failover ?? []) {
    if (s === etcd) continue
    // Timed-out repetitions are not in the medians: the measured text says so.
    const of = (f: NonNullable<typeof s>): string => (f.timedOut > 0 ? `, ${f.timedOut} of ${f.reps.length} reps timed out` : '')
    const med = s.writeMedianMs
    out.push(check(`failover, ${s.system}: median`, '< 500 ms', med === null ? `not measured${of(s)}` : `${med.toFixed(0)} ms${of(s)}`, med, 500, false))
    const em = etcd?.writeMedianMs
    const ratio = etcd && med !== null && em !== null && em !== undefined ? med / em : undefined
    const text = ratio !== undefined ? `${f2(ratio)}x (etcd ${em!.toFixed(0)} ms${of(etcd!)})` : etcd ? `not measured${of(s)}${etcd.timedOut > 0 ? `; etcd${of(etcd)}` : ''}` : ''
    out.push(check(`failover, ${s.system}: median vs etcd`, '<= 0.33x', text, ratio, 1 / 3, false))
  }
  for (const x of r.restore ?? []) {
    out.push(check(`restore ${(x.stateBytes / 1e6).toFixed(0)} MB: speed vs cp+sync`, '>= 0.5x', `${f2(x.speedVsCp)}x`, x.speedVsCp, 0.5, true))
  }
  return out
}
