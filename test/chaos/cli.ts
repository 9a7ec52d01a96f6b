/**
 * `npm run chaos -- --runs N --minutes M [--seed S] [--nodes 3|5] [--out DIR] [--keep] [--verbose]`
 *
 * Runs N seeded runs of the real-process fault campaign, each with M minutes (fractions allowed:
 * 0.4 is 24 s) of faults, prints a line per run and the summary, and writes the summary as JSON
 * into DIR (default /tmp/holdfast-chaos). A failing run prints its seed and keeps its folder;
 * replay it with `--runs 1 --seed SEED` (and its --nodes). Exit code 0 when every run passed.
 * Needs root (network namespaces, nftables); installs its tools when missing.
 */
import { parseArgs } from 'node:util'
import { netnsUnavailable, sweepStale } from '../netns/netns.js'
import { formatSummary, runCampaign, writeSummary } from './campaign.js'

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '10' },
    minutes: { type: 'string', default: '0.4' },
    seed: { type: 'string' },
    nodes: { type: 'string' },
    out: { type: 'string', default: '/tmp/holdfast-chaos' },
    keep: { type: 'boolean', default: false },
    verbose: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
})

if (values.help) {
  process.stdout.write('usage: npm run chaos -- --runs N --minutes M [--seed S] [--nodes 3|5] [--out DIR] [--keep] [--verbose]\n')
  process.exit(0)
}
const runs = Number(values.runs)
const minutes = Number(values.minutes)
const seed = values.seed === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(values.seed)
const nodes = values.nodes === undefined ? undefined : Number(values.nodes)
if (!Number.isInteger(runs) || runs < 1 || !(minutes > 0) || !Number.isInteger(seed) || (nodes !== undefined && nodes !== 3 && nodes !== 5)) {
  process.stderr.write('chaos: --runs must be a positive integer, --minutes positive, --seed an integer, --nodes 3 or 5\n')
  process.exit(2)
}
const unavailable = netnsUnavailable()
if (unavailable !== undefined) {
  process.stderr.write(`chaos: network namespaces are unavailable here: ${unavailable}\n`)
  process.exit(1)
}
sweepStale()
process.stdout.write(`chaos: ${runs} run(s) of ${minutes} min of faults, seed ${seed}${nodes ? `, ${nodes} daemons` : ', 3 and 5 daemons'}, folders under ${values.out}\n`)
const summary = await runCampaign({
  runs,
  faultMs: minutes * 60_000,
  seed,
  ...(nodes !== undefined ? { nodes: nodes as 3 | 5 } : {}),
  outDir: values.out!,
  keep: values.keep!,
  ...(values.verbose ? { log: (l: string) => process.stdout.write(`  ${l}\n`) } : {}),
  onRun: (r, i) => {
    const faults = Object.entries(r.faults).map(([k, v]) => `${k}×${v}`).join(' ')
    const rec = r.recovery ? `recovery ${(r.recovery.firstWriteMs / 1000).toFixed(1)}/${(r.recovery.caughtUpMs / 1000).toFixed(1)} s` : 'no recovery'
    process.stdout.write(`run ${i + 1}/${runs} seed ${r.seed} (${r.nodes} daemons): ${r.ok ? 'ok' : 'FAILED'}, ${r.operations.checked} ops checked, ${rec}, ${(r.durationMs / 1000).toFixed(0)} s; ${faults}\n`)
    if (!r.ok) {
      process.stdout.write(`  seed ${r.seed} failed; folder ${r.folder}; replay: npm run chaos -- --runs 1 --seed ${r.seed} --nodes ${r.nodes} --minutes ${minutes}\n`)
      for (const v of r.violations.slice(0, 5)) process.stdout.write(`  ${v.split('\n').slice(0, 12).join('\n  ')}\n`)
    }
  },
})
process.stdout.write('\n' + formatSummary(summary) + '\n')
process.stdout.write(`summary: ${writeSummary(values.out!, summary)}\n`)
process.exitCode = summary.failed.length === 0 ? 0 : 1
