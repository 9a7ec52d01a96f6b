/**
 * A fuzz run in its own process, started by runner.ts as `node --expose-gc --import tsx child.ts`:
 * a clean heap to measure, and a parent that can kill it if a decoder never returns. Reports one
 * JSON object per line on stdout: start, progress, checkpoint, finding, summary.
 *
 *   --seed S --cases N [--from F] [--stride J] [--max-ms MS] [--checkpoint-every N] [--warmup N]
 *   [--progress-every N] [--max-findings K] [--max-heap-growth BYTES] [--per-case-ms MS]
 *   [--fault NAME]   (a broken codec from faults.ts, for the engine's own tests)
 */
import { writeSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { runFuzz, type RunOptions } from './run.js'
import { FAULTS, isFaultName } from './faults.js'

/** One line per message. Synchronous, so a parent sees progress even if the loop then never yields. */
function emit(message: object): void {
  writeSync(1, `${JSON.stringify(message)}\n`)
}

const { values } = parseArgs({
  options: {
    seed: { type: 'string' },
    cases: { type: 'string' },
    from: { type: 'string' },
    stride: { type: 'string' },
    'max-ms': { type: 'string' },
    'checkpoint-every': { type: 'string' },
    warmup: { type: 'string' },
    'progress-every': { type: 'string' },
    'max-findings': { type: 'string' },
    'max-heap-growth': { type: 'string' },
    'per-case-ms': { type: 'string' },
    fault: { type: 'string' },
  },
})

function num(name: keyof typeof values): number | undefined {
  const v = values[name]
  if (v === undefined) return undefined
  const n = Number(v)
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} needs a non-negative number, got ${v}`)
  return n
}

const fault = values.fault
if (fault !== undefined && !isFaultName(fault)) throw new Error(`unknown fault ${fault}`)
const options: { -readonly [K in keyof RunOptions]: RunOptions[K] } = {
  seed: num('seed') ?? 0,
  cases: num('cases') ?? 0,
  onProgress: (next, stats) => emit({ t: 'progress', next, stats }),
  onCheckpoint: (sample) => emit({ t: 'checkpoint', sample }),
  onFinding: (finding) => emit({ t: 'finding', finding }),
}
for (const [key, flag] of [
  ['from', 'from'],
  ['stride', 'stride'],
  ['maxMs', 'max-ms'],
  ['checkpointEvery', 'checkpoint-every'],
  ['warmup', 'warmup'],
  ['progressEvery', 'progress-every'],
  ['maxFindings', 'max-findings'],
  ['maxHeapGrowth', 'max-heap-growth'],
  ['perCaseMs', 'per-case-ms'],
] as const) {
  const v = num(flag)
  if (v !== undefined) options[key] = v
}
if (fault !== undefined) options.codec = FAULTS[fault]()

emit({ t: 'start', pid: process.pid })
const summary = runFuzz(options)
emit({ t: 'summary', summary })
