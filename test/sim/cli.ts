/**
 * The simulator's command line (`npm run sim -- ...`):
 *
 *   --seed N [--trace [LINES]] [--grep RE]  replay one seed exactly; print its summary and, on a
 *                                            violation or with --trace, the last LINES trace lines
 *                                            (all with --trace 0), optionally filtered by RE
 *   --seeds N [--from S] [--jobs J]         run seeds S..S+N-1 across J worker threads; print a
 *                                            summary and the failing seeds
 *   --json                                  print the aggregate summary as JSON as well
 *
 * Exit code 1 on any violation.
 */
import { availableParallelism } from 'node:os'
import { formatAggregate, runSeeds } from './pool.js'
import { runSeed } from './run.js'

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`)
  if (i < 0) return undefined
  const v = process.argv[i + 1]
  return v === undefined || v.startsWith('--') ? '' : v
}

function num(name: string, dflt: number): number {
  const v = arg(name)
  if (v === undefined || v === '') return dflt
  const n = Number(v)
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`--${name} needs a non-negative integer, got ${v}`)
  return n
}

async function main(): Promise<number> {
  if (arg('seed') !== undefined) {
    const seed = num('seed', 0)
    const wantTrace = arg('trace') !== undefined
    const r = runSeed(seed, { trace: true })
    const { trace = [], ...summary } = r
    const grep = arg('grep')
    const re = grep ? new RegExp(grep) : undefined
    if (wantTrace || r.violation) {
      const lines = re ? trace.filter((l) => re.test(l)) : trace
      const limit = num('trace', 200)
      const shown = limit === 0 ? lines : lines.slice(-limit)
      if (shown.length < lines.length) console.log(`... ${lines.length - shown.length} earlier trace lines`)
      for (const l of shown) console.log(l)
    }
    console.log(JSON.stringify(summary, null, 2))
    if (r.violation) {
      console.log(`\nVIOLATION seed ${seed}: ${r.violation.message}\nreplay: npm run sim -- --seed ${seed}`)
      return 1
    }
    return 0
  }
  const count = num('seeds', 100)
  const from = num('from', 1)
  const jobs = num('jobs', availableParallelism())
  const agg = await runSeeds({
    from,
    count,
    jobs,
    onProgress: (done, bad) => {
      if (process.stderr.isTTY && done % 100 === 0) process.stderr.write(`\r${done}/${count} seeds, ${bad} failing`)
    },
  })
  if (process.stderr.isTTY) process.stderr.write('\n')
  console.log(formatAggregate(agg))
  if (arg('json') !== undefined) console.log(JSON.stringify(agg))
  return agg.failing.length > 0 ? 1 : 0
}

// exitCode, not exit(): exit() would cut off output still queued for a pipe.
main().then(
  (code) => {
    process.exitCode = code
  },
  (err: unknown) => {
    console.error(err)
    process.exitCode = 2
  },
)
