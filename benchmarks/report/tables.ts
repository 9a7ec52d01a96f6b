/** The terminal tables: one per section, fixed width, right-aligned numbers. */
import type { BenchResult, TargetResult } from '../result.js'
import { timeoutText } from '../sections/failover.js'
import { SYSTEM_LABEL, WRITE_SYSTEMS } from '../sections/writes.js'

/** A fixed-width table: the first column left-aligned, the others right-aligned. */
export function table(head: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const line = (cells: readonly string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ').trimEnd()
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n')
}

const ms = (v: number | null | undefined): string => (v === null || v === undefined || !Number.isFinite(v) ? '-' : v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2))
const x = (v: number | null | undefined): string => (v === null || v === undefined || !Number.isFinite(v) ? '-' : `${v >= 10 ? v.toFixed(1) : v.toFixed(2)}x`)
const sec = (v: number): string => (v / 1000).toFixed(2)
const mb = (v: number): string => (v / 1e6).toFixed(v >= 1e8 ? 0 : 1)
const mib = (v: number | null): string => (v === null ? '-' : (v / 2 ** 20).toFixed(0))

export function writesTable(r: NonNullable<BenchResult['writes']>): string {
  const rows: string[][] = []
  for (const row of r.rows) {
    for (const s of WRITE_SYSTEMS) {
      const m = row.systems[s]
      if (!m) continue
      const vsEtcd = s === 'embedded' || s === 'http' ? row.vsEtcd?.[s] : undefined
      rows.push([
        `${row.concurrency}`,
        SYSTEM_LABEL[s],
        `${m.writesPerSec}`,
        ms(m.p50Ms),
        ms(m.p99Ms),
        ms(m.p999Ms),
        x(vsEtcd?.throughput),
        x(vsEtcd?.p99),
        m.errors > 0 ? `${m.errors}` : '',
      ])
    }
  }
  return `Durable writes, ${r.valueSize}-byte values, 3 replicas on one machine (raw lmdb-js: one process, no replication)\n` +
    table(['writers', 'system', 'writes/s', 'p50 ms', 'p99 ms', 'p99.9 ms', 'w/s / etcd', 'p99 / etcd', 'errors'], rows)
}

export function floorTable(f: NonNullable<BenchResult['floor']>): string {
  return 'Hardware floor (one writer)\n' + table(
    ['figure', 'p50 ms', 'p99 ms'],
    [
      ['fdatasync of a 4 KiB page on the data disk', ms(f.fdatasync.p50Ms), ms(f.fdatasync.p99Ms)],
      ['loopback round trip between two processes', ms(f.loopbackRtt.p50Ms), ms(f.loopbackRtt.p99Ms)],
      ['raw lmdb-js durable put', ms(f.lmdbPutP50Ms), ''],
      ['floor: fdatasync + round trip', ms(f.fsyncRttMs), ''],
      ['floor: lmdb-js durable put + round trip', ms(f.lmdbRttMs), ''],
      ['holdfast embedded put (3 replicas)', ms(f.embeddedP50Ms), ''],
      ['  ratio to fdatasync + round trip', x(f.embeddedVsFsyncRtt), ''],
      ['  ratio to lmdb-js put + round trip', x(f.embeddedVsLmdbRtt), ''],
    ],
  )
}

export function failoverTable(series: NonNullable<BenchResult['failover']>): string {
  const etcd = series.find((s) => s.system.startsWith('etcd'))
  const ratio = (s: (typeof series)[number]): string =>
    etcd && s !== etcd && s.writeMedianMs !== null && etcd.writeMedianMs !== null ? x(s.writeMedianMs / etcd.writeMedianMs) : ''
  const text = 'Failover: SIGKILL of the leader under load (16 HTTP writers over every member)\n' + table(
    ['system', 'reps', 'timed out', 'write median ms', 'write max ms', 'leader-check median ms', 'leader-check max ms', 'median / etcd'],
    series.map((s) => [
      s.system,
      `${s.reps.length}`,
      s.timedOut > 0 ? `${s.timedOut}` : '',
      ms(s.writeMedianMs),
      ms(s.writeMaxMs),
      ms(s.leaderCheckMedianMs),
      ms(s.leaderCheckMaxMs),
      ratio(s),
    ]),
  )
  // Timed-out repetitions are left out of the medians and maxima, so each is listed; a failed system too.
  const notes = series.flatMap((s) => [
    ...s.reps.flatMap((r, i) => (r.timedOut ? [`  ${s.system}, rep ${i + 1}/${s.reps.length}: ${timeoutText(r.timedOut)}`] : [])),
    ...(s.error !== undefined ? [`  ${s.system}: FAILED after ${s.reps.length} repetition${s.reps.length === 1 ? '' : 's'}: ${s.error.split('\n')[0]}`] : []),
  ])
  return notes.length > 0 ? `${text}\n${notes.join('\n')}` : text
}

export function restoreTable(rs: NonNullable<BenchResult['restore']>): string {
  return 'Restore: a wiped node rejoins and catches up, against cp of its LMDB file on the same disk\n' + table(
    ['state MB', 'keys', 'file MB', 'restore s', 'from HTTP up s', 'snapshot MB', 'cp s', 'cp+sync s', 'speed / cp+sync'],
    rs.map((r) => [mb(r.stateBytes), `${r.keys}`, mb(r.restoredFileBytes), sec(r.restoreMs), sec(r.restoreFromUpMs), r.snapshotBytes === null ? 'none' : mb(r.snapshotBytes), sec(r.cpMs), sec(r.cpSyncMs), x(r.speedVsCp)]),
  )
}

export function scaleTables(s: NonNullable<BenchResult['scale']>): string {
  const out: string[] = []
  if (s.formation) {
    out.push(
      'Formation over hyperswarm (all processes spawned at once) and membership convergence\n' +
        table(
          ['nodes', 'all up s', 'formed s', 'formed after all up s', 'every member listed everywhere s', 'a joining node listed everywhere s'],
          s.formation.map((f) => [`${f.nodes}`, sec(f.upMs), sec(f.formedMs), sec(f.formedMs - f.upMs), sec(f.convergedMs), sec(f.joinConvergedMs)]),
        ),
    )
  }
  if (s.rss) {
    out.push(
      `Memory of the nodes holding ${s.rss.keys} keys (${s.rss.valueSize}-byte values)\n` +
        table(
          ['process', 'role', 'RSS MiB before', 'RSS MiB', 'anonymous MiB', 'file-backed MiB', 'LMDB file MiB'],
          s.rss.members.map((m) => [m.kind, m.role, mib(m.rssBeforeBytes), mib(m.rssBytes), mib(m.anonBytes), mib(m.fileBytes), mib(m.lmdbFileBytes)]),
        ),
    )
  }
  out.push(s.note)
  return out.join('\n\n')
}

export function targetsTable(ts: readonly TargetResult[]): string {
  if (ts.length === 0) return 'Targets: none of the sections run has one'
  return 'Targets (not assertions)\n' + table(
    ['target', 'goal', 'measured', 'result'],
    ts.map((t) => [t.name, t.goal, t.measured, t.met === null ? 'not measured' : t.met ? 'met' : `SHORT by ${x(t.shortBy)}`]),
  )
}
