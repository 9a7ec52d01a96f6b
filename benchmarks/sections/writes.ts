/**
 * Write throughput and latency, side by side: durable writes of `valueSize`-byte values at each
 * writer count, on
 *
 * - raw: lmdb-js durable puts in the benchmark's process (the hardware floor; no replication);
 * - embedded: node.put() inside the leader's process of a 3-node holdfast cluster;
 * - http: PUT /v1/kv/{key} to the same leader over HTTP from the benchmark's process;
 * - etcd: puts through the etcd3 client to the leader of a 3-member etcd cluster.
 *
 * Within a row every system warms up, then the systems take turns in `slices` short intervals, so
 * a machine whose speed drifts (other work on it) weighs on all of them alike.
 */
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import type { Etcd3 } from 'etcd3'
import type { EtcdCluster } from '../etcd.js'
import type { Member } from '../holdfast-cluster.js'
import { HttpClient, putKv } from '../http-client.js'
import { drive, randomText, type DriveResult } from '../load.js'
import { openRawLmdb } from '../raw-lmdb.js'
import { progress } from '../report/progress.js'
import { emptySamples, summarize, type LatencySummary, type Samples } from '../stats.js'

export const WRITE_SYSTEMS = ['raw', 'embedded', 'http', 'etcd'] as const
export type WriteSystem = (typeof WRITE_SYSTEMS)[number]

/** Human names of the systems, for tables and plots. */
export const SYSTEM_LABEL: Record<WriteSystem, string> = {
  raw: 'raw lmdb-js',
  embedded: 'holdfast embedded',
  http: 'holdfast HTTP',
  etcd: 'etcd',
}

export interface WritesOptions {
  readonly concurrency: readonly number[]
  readonly valueSize: number
  /** Measured ms per system and row, split into `slices` turns. */
  readonly durationMs: number
  readonly slices: number
  /** Unmeasured ms per system before each row. */
  readonly warmupMs: number
  /** Where the raw environment goes: the disk holdfast's data directories are on. */
  readonly dir: string
  /** The embedded member that leads the holdfast cluster. */
  readonly leader: Member
  readonly etcd: EtcdCluster | undefined
}

/** One writer count: every system's summary, and holdfast's ratios against etcd and raw. */
export interface WriteRow {
  readonly concurrency: number
  readonly systems: Partial<Record<WriteSystem, LatencySummary>>
  /** holdfast / etcd: writes/s and p99 (throughput > 1 and p99 < 1 favour holdfast). */
  readonly vsEtcd?: { readonly embedded: Ratio; readonly http: Ratio }
  /** holdfast / raw lmdb-js. */
  readonly vsRaw: { readonly embedded: Ratio; readonly http: Ratio }
}

export interface Ratio {
  readonly throughput: number
  readonly p50: number
  readonly p99: number
}

function ratio(a: LatencySummary | undefined, b: LatencySummary | undefined): Ratio {
  const r = (x: number | undefined, y: number | undefined): number => (x !== undefined && y ? Math.round((x / y) * 1000) / 1000 : NaN)
  return { throughput: r(a?.writesPerSec, b?.writesPerSec), p50: r(a?.p50Ms, b?.p50Ms), p99: r(a?.p99Ms, b?.p99Ms) }
}

type Runner = (prefix: string, concurrency: number, ms: number) => Promise<DriveResult>

/** The rows, and how many keys the holdfast rows wrote (warm-up included): the state they leave. */
export interface WritesResult {
  readonly rows: WriteRow[]
  readonly holdfastKeys: number
}

export async function runWrites(o: WritesOptions): Promise<WritesResult> {
  const bytes = new Uint8Array(randomBytes(o.valueSize))
  // The HTTP API takes JSON: a string whose JSON form is valueSize bytes.
  const jsonBody = Buffer.from(JSON.stringify(randomText(Math.max(0, o.valueSize - 2))))
  const raw = await openRawLmdb(join(o.dir, 'raw-lmdb'))
  let etcdClient: Etcd3 | undefined
  const runners: Partial<Record<WriteSystem, Runner>> = {
    raw: (prefix, c, ms) => drive((key) => raw.put(key, bytes), prefix, c, ms),
    embedded: async (prefix, c, ms) => o.leader.request({ op: 'load', prefix, concurrency: c, ms, valueSize: o.valueSize }),
    http: async (prefix, c, ms) => {
      const client = new HttpClient(c)
      try {
        return await drive((key) => putKv(client, o.leader.url, key, jsonBody), prefix, c, ms)
      } finally {
        client.close()
      }
    },
  }
  if (o.etcd) {
    const etcdLeader = await o.etcd.leader()
    const client = o.etcd.client(etcdLeader)
    etcdClient = client
    const value = Buffer.from(bytes)
    runners.etcd = (prefix, c, ms) =>
      drive(
        async (key) => {
          await client.put(key).value(value)
        },
        prefix,
        c,
        ms,
      )
  }
  const systems = WRITE_SYSTEMS.filter((s) => runners[s] !== undefined)
  const rows: WriteRow[] = []
  let holdfastKeys = 0
  const run = async (s: WriteSystem, prefix: string, c: number, ms: number): Promise<DriveResult> => {
    const r = await runners[s]!(prefix, c, ms)
    if (s === 'embedded' || s === 'http') holdfastKeys += r.latencies.length
    return r
  }
  try {
    for (const c of o.concurrency) {
      progress('writes', `${c} writer${c === 1 ? '' : 's'}: ${o.warmupMs} ms warm-up, then ${o.slices} turns of ${Math.round(o.durationMs / o.slices)} ms per system`)
      const samples: Partial<Record<WriteSystem, Samples>> = {}
      for (const s of systems) {
        samples[s] = emptySamples()
        await run(s, `${s}/warm-c${c}`, c, o.warmupMs)
      }
      for (let slice = 0; slice < o.slices; slice++) {
        for (const s of systems) {
          const r = await run(s, `${s}/c${c}-s${slice}`, c, o.durationMs / o.slices)
          const into = samples[s]!
          into.parts.push(r.latencies)
          into.seconds += r.seconds
          into.errors += r.errors
          if (r.errors > 0) progress('writes', `${s} x${c}: ${r.errors} failed writes (${r.firstError ?? ''})`)
        }
      }
      const out: Partial<Record<WriteSystem, LatencySummary>> = {}
      for (const s of systems) {
        const m = summarize(samples[s]!)
        out[s] = m
        progress('writes', `${SYSTEM_LABEL[s].padEnd(17)} x${String(c).padEnd(3)} ${String(m.writesPerSec).padStart(7)} w/s  p50 ${m.p50Ms.toFixed(2)} ms  p99 ${m.p99Ms.toFixed(2)} ms  p99.9 ${m.p999Ms.toFixed(2)} ms`)
      }
      rows.push({
        concurrency: c,
        systems: out,
        ...(out.etcd ? { vsEtcd: { embedded: ratio(out.embedded, out.etcd), http: ratio(out.http, out.etcd) } } : {}),
        vsRaw: { embedded: ratio(out.embedded, out.raw), http: ratio(out.http, out.raw) },
      })
    }
  } finally {
    etcdClient?.close()
    await raw.close()
  }
  return { rows, holdfastKeys }
}
