/**
 * The simulator as a test: many seeds across worker threads with every invariant checked, plus
 * proof that runs are deterministic and that the checkers catch deliberate breakage.
 *
 * SIM_SEEDS and SIM_FROM (environment) change the seed range; a failure names the seed and the
 * command that replays it.
 */
import { availableParallelism } from 'node:os'
import t from 'tap'
import { FAULT_TYPES } from './faults.js'
import { Prng } from './prng.js'
import { EventQueue } from './queue.js'
import { formatAggregate, runSeeds } from './pool.js'
import { runSeed, type RunSummary } from './run.js'

const SEEDS = Number(process.env.SIM_SEEDS ?? 2000)
const FROM = Number(process.env.SIM_FROM ?? 1)

/**
 * Open core bugs (see FINDINGS.md). A violation of this kind whose message carries this diagnosis tag
 * (e.g. '[replication-window-stall') is reported as a TODO listing its seeds instead of failing the
 * suite, while the lead fixes the core; `npm run sim` still exits 1 on it. Delete the entry with the
 * fix. Safety violations should never be listed here for long. None open now (#1-#3 are fixed).
 */
const KNOWN_OPEN: readonly { kind: string; tag: string; finding: string }[] = []

function withoutTrace(r: RunSummary): Omit<RunSummary, 'trace'> {
  const { trace: _trace, ...rest } = r
  return rest
}

t.test(`${SEEDS} seeds hold every invariant`, async (t) => {
  const agg = await runSeeds({ from: FROM, count: SEEDS, jobs: availableParallelism() })
  t.comment(formatAggregate(agg))
  t.equal(agg.seedsRun, SEEDS, 'every seed ran')
  for (const type of FAULT_TYPES) t.ok(agg.faults[type] >= SEEDS / 100, `fault ${type} injected (${agg.faults[type]} times)`)
  t.ok(agg.commits >= SEEDS * 50, `many commits (${agg.commits})`)
  t.ok(agg.clientOpsOk >= SEEDS * 50, `many client ops checked (${agg.clientOps})`)
  t.ok(agg.elections >= SEEDS, `elections happened (${agg.elections})`)
  t.ok(agg.snapshotsInstalled >= SEEDS / 10, `snapshots installed (${agg.snapshotsInstalled})`)

  const known = new Map<string, number[]>()
  const unexplained = agg.failing.filter((f) => {
    const k = KNOWN_OPEN.find((x) => f.kind === x.kind && f.message.includes(x.tag))
    if (k === undefined) return true
    known.set(k.finding, [...(known.get(k.finding) ?? []), f.seed])
    return false
  })
  for (const [finding, seeds] of known) {
    t.fail(`${seeds.length} seeds hit an open core bug: ${seeds.join(' ')}`, { todo: finding })
  }
  for (const f of unexplained) t.fail(`seed ${f.seed}: ${f.message}\n  replay: npm run sim -- --seed ${f.seed}`)
  t.equal(unexplained.length, 0, 'no violations')
})

t.test('a seed replays byte-identically', async (t) => {
  const seed = 7
  const a = runSeed(seed, { trace: true })
  const b = runSeed(seed, { trace: true })
  t.ok(a.trace!.length > 10_000, `the trace is substantial (${a.trace!.length} lines)`)
  t.ok(Object.values(a.faults).reduce((x, y) => x + y, 0) > 3, 'faults were injected')
  t.equal(b.trace!.join('\n'), a.trace!.join('\n'), 'identical traces')
  t.same(withoutTrace(b), withoutTrace(a), 'identical summaries')
  t.same(runSeed(seed), withoutTrace(a), 'tracing does not change the run')
  const pooled = await runSeeds({ from: seed, count: 1, jobs: 1 })
  const inline = await runSeeds({ from: seed, count: 1, jobs: 0 })
  t.same(pooled, inline, 'a worker thread runs it the same way')
})

t.test('the checkers catch deliberate breakage, with the seed', async (t) => {
  const seed = 11
  const ghost = await runSeeds({ from: seed, count: 1, jobs: 0, runOptions: { sabotage: 'secondLeader' } })
  t.equal(ghost.failing[0]?.kind, 'election-safety', 'a fake second leader breaks Election Safety')
  t.equal(ghost.failing[0]?.seed, seed)
  t.match(formatAggregate(ghost), new RegExp(`failing seeds: ${seed}\\b`), 'the summary names the failing seed')

  const corrupt = runSeed(seed, { sabotage: 'corruptApply', scenario: { voters: 3, learners: 0 } })
  t.equal(corrupt.violation?.kind, 'state-machine-safety', 'a node applying a different entry breaks State Machine Safety')
  t.equal(corrupt.seed, seed)

  const stale = runSeed(seed, { sabotage: 'staleRead' })
  t.equal(stale.violation?.kind, 'linearizability', 'reads served locally without ReadIndex are caught as non-linearizable')
})

t.test('building blocks', async (t) => {
  const q = new EventQueue()
  const order: string[] = []
  q.push(2, () => order.push('c'))
  q.push(1, () => order.push('a'))
  q.push(2, () => order.push('d'))
  q.push(1, () => order.push('b'))
  for (let e = q.pop(); e !== undefined; e = q.pop()) e.run()
  t.same(order, ['a', 'b', 'c', 'd'], 'events run by time, then in scheduling order')

  const x = new Prng(5)
  const y = new Prng(5)
  const xs = Array.from({ length: 50 }, () => x.u32())
  t.same(Array.from({ length: 50 }, () => y.u32()), xs, 'a seed gives the same stream')
  t.not(new Prng(6).u32(), new Prng(5).u32(), 'different seeds differ')
  const f = new Prng(9)
  t.ok(Array.from({ length: 1000 }, () => f.next()).every((v) => v >= 0 && v < 1), 'next() is in [0, 1)')
})
