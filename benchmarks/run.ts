/**
 * `npm run bench [-- options]`: single-node durable puts through holdfast versus raw lmdb-js, in
 * one run, printed as a table and written as JSON.
 *
 *   --quick              short intervals (about 15 s in all; the default run takes about 70 s)
 *   --duration <ms>      measured time per system and row (default 10000; quick 1500)
 *   --slices <n>         turns per row: the systems alternate in n intervals (default 5; quick 3)
 *   --warmup <ms>        unmeasured writes per system before each row (default 1000; quick 300)
 *   --concurrency <list> writer counts, comma-separated (default 1,16,64)
 *   --value-size <bytes> value size (default 256)
 *   --dir <path>         where the data directories go: the disk measured (default os.tmpdir())
 *   --out <file>         the JSON result (default <os.tmpdir()>/holdfast-bench-<timestamp>.json)
 */
import { writeFile } from 'node:fs/promises'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { benchPuts, type Measurement, type Row } from './put.js'

const USAGE = `usage: npm run bench -- [--quick] [--duration ms] [--slices n] [--warmup ms] [--concurrency 1,16,64] [--value-size 256] [--dir path] [--out file]`

function positiveInt(name: string, s: string): number {
  const n = Number(s)
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got '${s}'\n${USAGE}`)
  return n
}

function pad(s: string, n: number, right = false): string {
  return right ? s.padEnd(n) : s.padStart(n)
}

/** The comparison as a fixed-width table: one line per writer count. */
export function formatTable(rows: readonly Row[]): string {
  const head = ['writers', 'raw w/s', 'raw p50', 'raw p99', 'holdfast w/s', 'hf p50', 'hf p99', 'w/s ratio', 'p50 ratio']
  const widths = [7, 10, 8, 8, 12, 8, 8, 9, 9]
  const ms = (v: number): string => `${v.toFixed(2)}ms`
  const line = (cells: string[]): string => cells.map((c, i) => pad(c, widths[i]!)).join('  ')
  const out = [line(head), line(widths.map((w) => '-'.repeat(w)))]
  for (const r of rows) {
    out.push(
      line([
        String(r.concurrency),
        r.raw.writesPerSec.toFixed(0),
        ms(r.raw.p50Ms),
        ms(r.raw.p99Ms),
        r.holdfast.writesPerSec.toFixed(0),
        ms(r.holdfast.p50Ms),
        ms(r.holdfast.p99Ms),
        r.throughputRatio.toFixed(2),
        r.p50Ratio.toFixed(2),
      ]),
    )
  }
  return out.join('\n')
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      slices: { type: 'string' },
      concurrency: { type: 'string', default: '1,16,64' },
      'value-size': { type: 'string', default: '256' },
      dir: { type: 'string' },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  })
  if (values.help) {
    process.stdout.write(`${USAGE}\n`)
    return
  }
  const options = {
    dir: values.dir ?? tmpdir(),
    concurrency: values.concurrency.split(',').map((c) => positiveInt('concurrency', c.trim())),
    valueSize: positiveInt('value-size', values['value-size']),
    durationMs: values.duration !== undefined ? positiveInt('duration', values.duration) : values.quick ? 1500 : 10_000,
    slices: values.slices !== undefined ? positiveInt('slices', values.slices) : values.quick ? 3 : 5,
    warmupMs: values.warmup !== undefined ? positiveInt('warmup', values.warmup) : values.quick ? 300 : 1000,
  }
  const started = new Date()
  process.stdout.write(
    `durable single-node puts: holdfast vs raw lmdb-js; ${options.valueSize}-byte values, ${options.durationMs} ms per system and row in ${options.slices} alternating slices, after ${options.warmupMs} ms warm-up; data under ${options.dir}\n`,
  )
  const rows = await benchPuts({
    ...options,
    onMeasurement: (m: Measurement) =>
      process.stderr.write(`  ${m.system} x${m.concurrency}: ${m.writes} writes in ${m.seconds.toFixed(2)} s, ${m.writesPerSec.toFixed(0)} w/s\n`),
  })
  process.stdout.write(`\n${formatTable(rows)}\n\n`)
  const result = {
    benchmark: 'durable single-node puts, holdfast vs raw lmdb-js',
    date: started.toISOString(),
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    cpus: cpus().length,
    options,
    rows,
  }
  const json = JSON.stringify(result, null, 2)
  const out = values.out ?? join(tmpdir(), `holdfast-bench-${started.toISOString().replace(/[:.]/g, '-')}.json`)
  await writeFile(out, json + '\n')
  process.stdout.write(`${json}\n\nwritten to ${out}\n`)
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`)
  process.exitCode = 1
})
