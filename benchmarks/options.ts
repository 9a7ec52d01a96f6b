/**
 * The command line of `npm run bench`: the full run's settings, the --quick preset, and
 * overrides. See USAGE.
 */
import { tmpdir } from 'node:os'
import { parseArgs } from 'node:util'
import { DEFAULT_TIMING, FAST_TIMING, LAN_TIMING, type HoldfastTiming } from './sections/failover.js'

export const SECTIONS = ['writes', 'floor', 'failover', 'restore', 'scale'] as const
export type Section = (typeof SECTIONS)[number]

export const USAGE = `usage: npm run bench -- [options]

Measures holdfast against etcd and against the hardware, side by side in one run, and writes a
JSON file and SVG plots. The full run takes about 15 minutes on 2 cores; --quick about 2.

  --quick                 short intervals and small states (the CI smoke run)
  --only LIST             sections to run: ${SECTIONS.join(',')} (default: all)
  --concurrency LIST      writer counts (default 1,16,64,256)
  --duration MS           measured time per system and writer count (default 10000; quick 1200)
  --slices N              turns per writer count: the systems alternate N times (default 5; quick 2)
  --warmup MS             unmeasured writes per system before each writer count (default 1000; quick 300)
  --value-size BYTES      value size of the write rows (default 256)
  --failover-reps N       SIGKILLs of the leader per system (default 10; quick 2)
  --failover-timings LIST holdfast timings: default (tick 100 ms), fast (tick 50 ms), lan (tick 25 ms)
                          (default all three)
  --failover-timeout MS   wait for the next write after a kill before the repetition is recorded as
                          timed out (default 60000)
  --restore-sizes LIST    state sizes to restore, e.g. 100MB,1GB (default; quick 4MB)
  --scale-sizes LIST      cluster sizes to form (default 3,5,7)
  --rss-keys N            keys held when RSS is measured (default 1000000; quick 50000)
  --no-etcd               leave etcd out (no installation, no etcd rows)
  --dir PATH              where the data directories go: the disk measured (default ${tmpdir()})
  --out-dir PATH          where result.json and the SVGs go (default <tmpdir>/holdfast-bench-<time>)
  --keep                  keep the data directories
  --help                  this text

Exit code: 0; 1 when a section (or a failover system) failed (the others still run and are
reported); 2 on a usage error; 3 when failover repetitions timed out (without --quick; with
--quick that is 0). Timed-out repetitions are listed under the failover table and in the JSON.

HOLDFAST_BENCH_NODE_ARGS="--cpu-prof --cpu-prof-dir=DIR" passes node flags to every holdfast
process (profiles are written when a process exits cleanly, e.g. the failover restarts do not).`

export interface BenchOptions {
  readonly quick: boolean
  readonly sections: ReadonlySet<Section>
  readonly concurrency: readonly number[]
  readonly durationMs: number
  readonly slices: number
  readonly warmupMs: number
  readonly valueSize: number
  readonly failoverReps: number
  readonly failoverSettleMs: number
  readonly failoverWriters: number
  readonly failoverTimings: readonly HoldfastTiming[]
  readonly failoverTimeoutMs: number
  readonly restoreSizes: readonly number[]
  readonly scaleSizes: readonly number[]
  readonly rssKeys: number
  readonly etcd: boolean
  readonly dir: string
  readonly outDir: string | undefined
  readonly keep: boolean
}

export class UsageError extends Error {}

function positiveInt(name: string, s: string): number {
  const n = Number(s)
  if (!Number.isSafeInteger(n) || n < 1) throw new UsageError(`--${name}: expected a positive integer, got "${s}"`)
  return n
}

function list<T>(name: string, s: string, item: (name: string, s: string) => T): T[] {
  const parts = s.split(',').map((p) => p.trim()).filter((p) => p !== '')
  if (parts.length === 0) throw new UsageError(`--${name}: expected a comma-separated list`)
  return parts.map((p) => item(name, p))
}

/** "100MB" → 100e6, "1GB" → 1e9, "512KiB" → 524288 (decimal units by default, binary with an i). */
export function parseSize(name: string, s: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|KiB|MiB|GiB)?$/i.exec(s)
  if (!m) throw new UsageError(`--${name}: expected a size such as 100MB or 1GB, got "${s}"`)
  const unit = (m[2] ?? 'B').toLowerCase()
  const mult: Record<string, number> = { b: 1, kb: 1e3, mb: 1e6, gb: 1e9, kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30 }
  const n = Math.round(Number(m[1]) * mult[unit]!)
  if (n < 1) throw new UsageError(`--${name}: "${s}" is empty`)
  return n
}

export function parseOptions(argv: readonly string[]): BenchOptions | 'help' {
  let values
  try {
    values = parseArgs({
      args: [...argv],
      options: {
        quick: { type: 'boolean', default: false },
        only: { type: 'string' },
        concurrency: { type: 'string', default: '1,16,64,256' },
        duration: { type: 'string' },
        slices: { type: 'string' },
        warmup: { type: 'string' },
        'value-size': { type: 'string', default: '256' },
        'failover-reps': { type: 'string' },
        'failover-timings': { type: 'string', default: 'default,fast,lan' },
        'failover-timeout': { type: 'string', default: '60000' },
        'restore-sizes': { type: 'string' },
        'scale-sizes': { type: 'string', default: '3,5,7' },
        'rss-keys': { type: 'string' },
        'no-etcd': { type: 'boolean', default: false },
        dir: { type: 'string' },
        'out-dir': { type: 'string' },
        keep: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
    }).values
  } catch (err) {
    throw new UsageError((err as Error).message)
  }
  if (values.help) return 'help'
  const q = values.quick
  const sections = new Set<Section>(
    values.only === undefined
      ? SECTIONS
      : list('only', values.only, (n, s) => {
          if (!(SECTIONS as readonly string[]).includes(s)) throw new UsageError(`--${n}: unknown section "${s}" (${SECTIONS.join(', ')})`)
          return s as Section
        }),
  )
  const timings = list('failover-timings', values['failover-timings'], (n, s) => {
    if (s === 'default') return DEFAULT_TIMING
    if (s === 'fast') return FAST_TIMING
    if (s === 'lan') return LAN_TIMING
    throw new UsageError(`--${n}: expected default, fast or lan, got "${s}"`)
  })
  const scaleSizes = list('scale-sizes', values['scale-sizes'], positiveInt)
  if (scaleSizes.some((n) => n > 15)) throw new UsageError('--scale-sizes: at most 15 nodes (the daemon promotes up to 15 voters)')
  const valueSize = positiveInt('value-size', values['value-size'])
  if (valueSize < 2) throw new UsageError('--value-size: at least 2 bytes (a JSON string over HTTP)')
  return {
    quick: q,
    sections,
    concurrency: list('concurrency', values.concurrency, positiveInt),
    durationMs: values.duration !== undefined ? positiveInt('duration', values.duration) : q ? 1200 : 10_000,
    slices: values.slices !== undefined ? positiveInt('slices', values.slices) : q ? 2 : 5,
    warmupMs: values.warmup !== undefined ? positiveInt('warmup', values.warmup) : q ? 300 : 1000,
    valueSize,
    failoverReps: values['failover-reps'] !== undefined ? positiveInt('failover-reps', values['failover-reps']) : q ? 2 : 10,
    failoverSettleMs: q ? 500 : 1000,
    failoverWriters: 16,
    failoverTimings: timings,
    failoverTimeoutMs: positiveInt('failover-timeout', values['failover-timeout']),
    restoreSizes: list('restore-sizes', values['restore-sizes'] ?? (q ? '4MB' : '100MB,1GB'), parseSize).sort((a, b) => a - b),
    scaleSizes,
    rssKeys: values['rss-keys'] !== undefined ? positiveInt('rss-keys', values['rss-keys']) : q ? 50_000 : 1_000_000,
    etcd: !values['no-etcd'],
    dir: values.dir ?? tmpdir(),
    outDir: values['out-dir'],
    keep: values.keep,
  }
}
