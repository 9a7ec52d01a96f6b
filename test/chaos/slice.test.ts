/**
 * The bounded slice of the fault campaign that `npm test` runs: two short seeded runs, one of
 * 3 daemons and one of 5, each with 15 s of faults (the security probe included), through the
 * same code as `npm run chaos`. Every check of a run must pass; a failing run prints its seed and
 * keeps its folder (history, samples, logs) under ${TMPDIR:-/tmp}/holdfast-chaos-slice.
 *
 * Needs root (network namespaces, nftables): it fails, with the reason, on a machine that cannot
 * create namespaces, unless HOLDFAST_SKIP_NETNS=1 opts out.
 */
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { netnsTest, sweepStale } from '../netns/netns.js'
import { formatSummary, runCampaign } from './campaign.js'

/** Seeds 2 and 3: 3 and 5 daemons (an even seed runs 3). */
const SEED = 2
const FAULT_MS = 15_000

netnsTest(t, 'The fault campaign', 'two short seeded runs of the fault campaign pass every check', async (t) => {
  sweepStale()
  const summary = await runCampaign({
    runs: 2,
    faultMs: FAULT_MS,
    seed: SEED,
    outDir: join(tmpdir(), 'holdfast-chaos-slice'),
    onRun: (r) => {
      t.comment(`seed ${r.seed} (${r.nodes} daemons): ${r.ok ? 'ok' : `FAILED, folder ${r.folder}`}; faults ${JSON.stringify(r.faults)}; ${r.operations.checked} ops checked`)
      t.same(r.violations, [], `seed ${r.seed}: no violation (replay: npm run chaos -- --runs 1 --seed ${r.seed} --nodes ${r.nodes} --minutes ${FAULT_MS / 60_000})`)
      t.ok(r.recovery, `seed ${r.seed}: recovered after the faults`)
      t.ok(r.operations.checked > 100, `seed ${r.seed}: a real history was checked (${r.operations.checked} ops)`)
      t.ok((r.security['peerRefused'] ?? 0) >= 3 && (r.security['httpRefused'] ?? 0) > 0, `seed ${r.seed}: hostile peers and bad HTTP input were refused`)
    },
  })
  t.comment(formatSummary(summary))
  t.same(Object.keys(summary.clusters).sort(), ['3 daemons', '5 daemons'])
  t.equal(summary.passed, 2)
})
