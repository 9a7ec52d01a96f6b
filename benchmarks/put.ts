/**
 * Durable single-node puts: holdfast versus raw lmdb-js, on the same disk, with the same value
 * size, key scheme and durability.
 *
 * - holdfast: a single-voter node; `await node.put(key, value)` resolves once the entry is durable
 *   in the log (fdatasync) and applied to the state machine.
 * - raw lmdb-js: an environment opened as holdfast opens its own (overlappingSync on Linux);
 *   each write awaits its put and the `flushed` of the batch that carries it (the fdatasync that
 *   covers it). `flushed` names the latest batch when its `then` is called, so it is called in the
 *   same tick as the put; awaiting it after the put resolved could wait for a later batch.
 *
 * Each writer runs its writes back to back, so `concurrency` writes are in flight; both systems
 * may group concurrent writes into one commit and one fsync (group commit).
 */
import { randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { open as openLmdb, type Database, type RootDatabase } from 'lmdb'
import { createNode, type HoldfastNode } from '../src/node.js'
import { MemoryNetwork } from '../src/transport/memory.js'

/** The systems compared. */
export type System = 'raw' | 'holdfast'

/** One measured run of one system at one concurrency. */
export interface Measurement {
  readonly system: System
  readonly concurrency: number
  /** Writes acknowledged (durable) during the measured intervals. */
  readonly writes: number
  readonly seconds: number
  readonly writesPerSec: number
  /** Latency of one write, from the call to its acknowledgement, in ms. */
  readonly p50Ms: number
  readonly p99Ms: number
  readonly maxMs: number
}

/** What a benchmark run measures. */
export interface PutBenchOptions {
  /** Parent directory of the data directories: the disk measured. */
  readonly dir: string
  /** Writer counts, one row each. */
  readonly concurrency: readonly number[]
  /** Bytes per value (random, incompressible). */
  readonly valueSize: number
  /** Measured time per system and row, in ms, split into `slices` turns. */
  readonly durationMs: number
  /** Turns per row: the systems alternate, `durationMs / slices` each. */
  readonly slices: number
  /** Unmeasured writes per system and row before the interval (JIT, page cache, tree depth). */
  readonly warmupMs: number
  /** Called after each measurement, for progress output. */
  readonly onMeasurement?: (m: Measurement) => void
}

/** A function that durably writes one key. */
type Writer = (key: string, value: Uint8Array) => Promise<void>

/** A system under test, opened once per run. */
interface Target {
  readonly write: Writer
  close(): Promise<void>
}

async function openRaw(dir: string): Promise<Target> {
  await mkdir(dir, { recursive: true })
  // The options holdfast's LmdbStorage uses for its environment.
  const root: RootDatabase = openLmdb(join(dir, 'raw.mdb'), { noSubdir: true, maxDbs: 64, overlappingSync: process.platform !== 'win32' })
  const db: Database<Uint8Array, string> = root.openDB<Uint8Array, string>('bench', { encoding: 'binary' })
  return {
    write: async (key, value) => {
      const committed = db.put(key, value)
      // Called now: names the flush of the batch this put joined (see the module comment).
      const durable = new Promise<void>((resolve, reject) => {
        root.flushed.then(() => resolve(), reject)
      })
      await Promise.all([committed, durable])
    },
    close: () => root.close(),
  }
}

async function openHoldfast(dir: string): Promise<Target> {
  const id = 'bench'
  const node: HoldfastNode = await createNode({
    id,
    dataDir: dir,
    transport: new MemoryNetwork().createTransport(id),
    bootstrap: { voters: [id], learners: [] },
  })
  // A fresh single node elects itself after one election timeout (1-2 s with the defaults).
  await new Promise<void>((resolve, reject) => {
    const deadline = Date.now() + 30_000
    const poll = (): void => {
      if (node.status().role === 'leader') resolve()
      else if (Date.now() > deadline) reject(new Error('the benchmark node did not become leader'))
      else setTimeout(poll, 10)
    }
    poll()
  })
  return {
    write: async (key, value) => {
      await node.put(key, value)
    },
    close: () => node.close(),
  }
}

/** Sorted-sample percentile (nearest rank). */
function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!
}

/**
 * Runs `concurrency` writers for `ms`, each writing fresh keys `<prefix>.<writer>.<i>` back to
 * back; returns the writes and their latencies. Writes started before the deadline are awaited and
 * counted; the interval ends when the last one is acknowledged.
 */
async function drive(write: Writer, prefix: string, concurrency: number, value: Uint8Array, ms: number): Promise<{ latencies: Float64Array; seconds: number }> {
  let latencies = new Float64Array(1 << 16)
  let n = 0
  const start = performance.now()
  const deadline = start + ms
  const writer = async (w: number): Promise<void> => {
    for (let i = 0; performance.now() < deadline; i++) {
      const t0 = performance.now()
      await write(`${prefix}.${w}.${i}`, value)
      if (n === latencies.length) {
        const grown = new Float64Array(latencies.length * 2)
        grown.set(latencies)
        latencies = grown
      }
      latencies[n++] = performance.now() - t0
    }
  }
  await Promise.all(Array.from({ length: concurrency }, (_, w) => writer(w)))
  return { latencies: latencies.slice(0, n), seconds: (performance.now() - start) / 1000 }
}

/** Latencies and elapsed time of several drive() runs, merged. */
interface Samples {
  parts: Float64Array[]
  seconds: number
}

function summarize(system: System, concurrency: number, samples: Samples): Measurement {
  const latencies = new Float64Array(samples.parts.reduce((n, p) => n + p.length, 0))
  let at = 0
  for (const p of samples.parts) {
    latencies.set(p, at)
    at += p.length
  }
  latencies.sort()
  return {
    system,
    concurrency,
    writes: latencies.length,
    seconds: samples.seconds,
    writesPerSec: latencies.length / samples.seconds,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    maxMs: percentile(latencies, 100),
  }
}

/** One row of the comparison: both systems at one concurrency. */
export interface Row {
  readonly concurrency: number
  readonly raw: Measurement
  readonly holdfast: Measurement
  /** holdfast writes/s divided by raw writes/s. */
  readonly throughputRatio: number
  /** holdfast p50 latency divided by raw p50 latency. */
  readonly p50Ratio: number
}

/**
 * Measures every concurrency of `options` on both systems. Each system gets its own fresh data
 * directory under options.dir for the whole run, removed at the end. Within a row both systems
 * warm up, then take turns in `slices` short intervals (raw first), so a disk whose speed drifts
 * (other work on the machine) weighs on both alike.
 */
export async function benchPuts(options: PutBenchOptions): Promise<Row[]> {
  const value = randomBytes(options.valueSize)
  const base = await mkdtemp(join(options.dir, 'holdfast-bench-'))
  const targets: Target[] = []
  try {
    const raw = await openRaw(join(base, 'raw'))
    targets.push(raw)
    const hf = await openHoldfast(join(base, 'holdfast'))
    targets.push(hf)
    const systems = [
      ['raw', raw],
      ['holdfast', hf],
    ] as const
    const rows: Row[] = []
    for (const c of options.concurrency) {
      const samples = { raw: { parts: [], seconds: 0 } as Samples, holdfast: { parts: [], seconds: 0 } as Samples }
      for (const [, target] of systems) await drive(target.write, `warm-c${c}`, c, value, options.warmupMs)
      for (let slice = 0; slice < options.slices; slice++) {
        for (const [system, target] of systems) {
          const { latencies, seconds } = await drive(target.write, `c${c}-s${slice}`, c, value, options.durationMs / options.slices)
          samples[system].parts.push(latencies)
          samples[system].seconds += seconds
        }
      }
      const r = summarize('raw', c, samples.raw)
      const h = summarize('holdfast', c, samples.holdfast)
      options.onMeasurement?.(r)
      options.onMeasurement?.(h)
      rows.push({ concurrency: c, raw: r, holdfast: h, throughputRatio: h.writesPerSec / r.writesPerSec, p50Ratio: h.p50Ms / r.p50Ms })
    }
    return rows
  } finally {
    for (const t of targets) await t.close()
    await rm(base, { recursive: true, force: true })
  }
}
