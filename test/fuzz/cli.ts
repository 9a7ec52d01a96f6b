/**
 * `npm run fuzz`: the codec fuzz of `npm test` (test/fuzz/engine.ts), for longer.
 *
 *   npm run fuzz -- [--cases N] [--minutes M] [--seed S] [--from F] [--jobs J] [--max-findings K] [--per-case-ms MS] [--json]
 *
 *   --cases N       cases to run (default 5,000,000; unlimited when only --minutes is given)
 *   --minutes M     stop after M minutes (whichever of the two comes first)
 *   --seed S        the seed (default: random, printed); replays exactly
 *   --from F        first case number (with --seed, --cases 1 and --jobs 1: replay one case)
 *   --jobs J        child processes, each running every J-th case (default: the number of cores)
 *   --max-findings  stop after this many findings (default 10)
 *   --per-case-ms   the bound on one case's decoder time (default 250)
 *   --json          print the summary as JSON as well
 *
 * Runs in child processes with a watchdog (runner.ts). Prints progress, a summary table and every
 * finding with its seed, case and bytes (and a shrunk reproduction); exits 1 on any finding.
 */
import { randomInt } from 'node:crypto'
import { availableParallelism } from 'node:os'
import { parseArgs } from 'node:util'
import { formatFinding, type Finding } from './engine.js'
import { formatSummary, mib } from './run.js'
import { runSharded, type ChildRunOptions } from './runner.js'

function num(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined
  const n = Number(v.replace(/[_,]/g, ''))
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} needs a non-negative number, got ${v}`)
  return n
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      cases: { type: 'string' },
      minutes: { type: 'string' },
      seed: { type: 'string' },
      from: { type: 'string' },
      jobs: { type: 'string' },
      'max-findings': { type: 'string' },
      'per-case-ms': { type: 'string' },
      json: { type: 'boolean' },
    },
  })
  const minutes = num(values.minutes, 'minutes')
  const cases = num(values.cases, 'cases') ?? (minutes !== undefined ? Number.MAX_SAFE_INTEGER : 5_000_000)
  const seed = num(values.seed, 'seed') ?? randomInt(2 ** 31)
  const from = num(values.from, 'from') ?? 0
  const maxFindings = num(values['max-findings'], 'max-findings') ?? 10
  const perCaseMs = num(values['per-case-ms'], 'per-case-ms')
  const jobs = Math.max(1, num(values.jobs, 'jobs') ?? availableParallelism())
  // Heap is compared from an early checkpoint to the end; long runs sample less often (each sample is two full GCs).
  const checkpointEvery = cases <= 200_000 ? Math.max(1, Math.ceil(cases / 20)) : 50_000

  const limit = minutes !== undefined ? `${minutes} minutes${values.cases !== undefined ? ` or ${cases.toLocaleString('en')} cases` : ''}` : `${cases.toLocaleString('en')} cases`
  console.log(`fuzz seed ${seed}, ${limit} from case ${from}, ${jobs} job${jobs === 1 ? '' : 's'} (replay: npm run fuzz -- --seed ${seed})`)
  const started = Date.now()
  let lastPrint = 0
  let heap = ''
  const findings: Finding[] = []
  const options: ChildRunOptions = {
    seed,
    from,
    cases,
    ...(minutes !== undefined ? { maxMs: minutes * 60_000 } : {}),
    checkpointEvery,
    maxFindings,
    ...(perCaseMs !== undefined ? { perCaseMs } : {}),
    onCheckpoint: (s) => {
      heap = mib(s.heapUsed)
    },
    onProgress: (_next, stats) => {
      if (Date.now() - lastPrint < 10_000) return
      lastPrint = Date.now()
      const secs = (Date.now() - started) / 1000
      console.log(`  ${secs.toFixed(0).padStart(5)} s  ${stats.cases.toLocaleString('en').padStart(11)} cases (${Math.round(stats.cases / secs).toLocaleString('en')}/s), slowest ${stats.slowestMs.toFixed(1)} ms, heap ${heap}, findings ${findings.length}`)
    },
    onFinding: (f) => {
      findings.push(f)
      console.log(`\nFINDING ${formatFinding(f)}\n`)
    },
  }
  const summary = await runSharded(options, jobs)
  console.log(`\n${formatSummary(summary)}`)
  if (values.json) console.log(JSON.stringify({ ...summary, samples: undefined }))
  if (summary.findings.length > 0) {
    console.log(`\n${summary.findings.length} finding(s), seed ${seed}:`)
    for (const f of summary.findings) console.log(`\n${formatFinding(f)}`)
    return 1
  }
  console.log(`\nno findings (seed ${seed})`)
  return 0
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
