/**
 * `npm run bench [-- options]`: holdfast against etcd and against the hardware, side by side in
 * one run (see options.ts for the command line, and the README's Performance section). Progress
 * goes to stderr while it runs; each section's table goes to stdout when the section ends, then
 * the targets; result.json and one SVG per figure go to --out-dir.
 *
 * Every figure is measured in the same run and reported as a ratio, because absolute times on a
 * shared machine drift. A section that fails is reported and the run goes on to the next one,
 * then exits 1; a failover repetition that times out is a result (shown in the table and the
 * JSON), not a failure: the run exits 0 with --quick, 3 without (see USAGE). Every process it starts is killed and every data directory removed at
 * the end, also on failure or Ctrl-C.
 */
import { spawnSync } from 'node:child_process'
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises'
import { cpus, release, tmpdir, totalmem } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ensureEtcd, EtcdCluster } from './etcd.js'
import { Dht, HoldfastCluster, type Member } from './holdfast-cluster.js'
import { parseOptions, USAGE, UsageError, type BenchOptions, type Section } from './options.js'
import { removeAtExit, rss } from './procs.js'
import { writeFigures } from './report/figures.js'
import { elapsedSeconds, progress } from './report/progress.js'
import { failoverTable, floorTable, restoreTable, scaleTables, targetsTable, writesTable } from './report/tables.js'
import { checkTargets } from './report/targets.js'
import type { BenchResult, FloorSummary, Machine } from './result.js'
import { runFailover, timeoutText } from './sections/failover.js'
import { measureFdatasync, measureLoopbackRtt } from './sections/floor.js'
import { runRestore } from './sections/restore.js'
import { runFormation, runRss } from './sections/scale.js'
import { runWrites } from './sections/writes.js'
import { round3 } from './stats.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))

function sh(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', cwd: ROOT })
  return r.status === 0 ? r.stdout.trim() : ''
}

function machine(dir: string, etcdVersion: string | null): Machine {
  const commit = sh('git', ['rev-parse', '--short', 'HEAD'])
  const dirty = sh('git', ['status', '--porcelain', '--untracked-files=no', '--', 'src', 'benchmarks', 'package.json']) !== ''
  return {
    cpuModel: cpus()[0]?.model.replace(/\s+/g, ' ').trim() ?? 'unknown',
    cores: cpus().length,
    memoryBytes: totalmem(),
    os: `${process.platform} ${release()} ${process.arch}`,
    node: process.version,
    etcd: etcdVersion,
    disk: sh('findmnt', ['-no', 'SOURCE,FSTYPE', '-T', dir]).replace(/\s+/g, ' ') || 'unknown',
    commit: commit ? `${commit}${dirty ? '+dirty' : ''}` : 'unknown',
  }
}

function print(text: string): void {
  process.stdout.write(`\n${text}\n`)
}

/** The 3-node cluster of the write rows and the RSS figure: an embedded leader and two daemons. */
async function writeCluster(dir: string, dht: Dht): Promise<{ cluster: HoldfastCluster; leader: Member }> {
  const cluster = await HoldfastCluster.create({ dir, name: 'writes', dht, voters: 3 })
  const leader = await cluster.add('embedded', { init: true })
  await cluster.add('daemon')
  await cluster.add('daemon')
  let current = await cluster.waitFormed(3)
  if (current !== leader) {
    // The embedded member created the cluster and normally leads; if not, it is handed leadership.
    await fetch(`${current.url}/v1/leader/transfer`, { method: 'POST', body: JSON.stringify({ to: leader.id }) })
    current = await cluster.waitFormed(3)
    if (current !== leader) throw new Error('the embedded member does not lead the write cluster')
  }
  return { cluster, leader }
}

async function run(o: BenchOptions): Promise<BenchResult> {
  const started = new Date()
  await mkdir(o.dir, { recursive: true })
  const work = await mkdtemp(join(o.dir, 'holdfast-bench-'))
  if (!o.keep) removeAtExit(work)
  const outDir = o.outDir ?? join(tmpdir(), `holdfast-bench-${started.toISOString().replace(/[:.]/g, '-')}`)
  await mkdir(outDir, { recursive: true })
  const has = (s: string): boolean => o.sections.has(s as never)

  const needsEtcd = o.etcd && (has('writes') || has('failover'))
  const etcd = needsEtcd ? ensureEtcd() : undefined
  const result: BenchResult = {
    benchmark: 'holdfast vs etcd vs the hardware',
    date: started.toISOString(),
    command: `npm run bench${process.argv.length > 2 ? ' -- ' + process.argv.slice(2).join(' ') : ''}`,
    quick: o.quick,
    machine: machine(o.dir, etcd?.version ?? null),
    options: { ...o, sections: [...o.sections] },
  }
  const sectionSeconds: Record<string, number> = {}
  let mark = elapsedSeconds()
  const done = (section: string): void => {
    const now = elapsedSeconds()
    sectionSeconds[section] = Math.round(now - mark)
    mark = now
  }
  progress('bench', `data under ${work}; results to ${outDir}; ${result.machine.cpuModel}, ${result.machine.cores} cores, ${result.machine.disk}; commit ${result.machine.commit}`)
  const dht = has('writes') || has('failover') || has('restore') || has('scale') ? await Dht.start() : undefined
  const errors: string[] = []
  /** Runs one section; its failure is recorded and printed, and the next section still runs. */
  const section = async (name: string, body: () => Promise<void>): Promise<void> => {
    try {
      await body()
    } catch (err) {
      const text = err instanceof Error ? (err.stack ?? err.message) : String(err)
      errors.push(`${name}: ${text.split('\n')[0]}`)
      process.stderr.write(`bench: section ${name} FAILED: ${text}\n`)
    }
  }

  if (has('writes') || has('scale')) await section(has('writes') ? 'writes' : 'rss', async () => {
    progress('writes', 'starting a 3-node holdfast cluster (embedded leader + 2 daemons)' + (has('writes') && etcd ? ' and a 3-member etcd cluster' : ''))
    const { cluster, leader } = await writeCluster(work, dht!)
    const before = new Map(cluster.members.map((m) => [m, rss(m.pid)?.rssBytes ?? 0]))
    let written = 0
    try {
      if (has('writes')) {
        const etcdCluster = etcd ? await EtcdCluster.start(etcd.path, join(work, 'etcd-writes')) : undefined
        try {
          const w = await runWrites({ concurrency: o.concurrency, valueSize: o.valueSize, durationMs: o.durationMs, slices: o.slices, warmupMs: o.warmupMs, dir: work, leader, etcd: etcdCluster })
          written = w.holdfastKeys
          result.writes = { valueSize: o.valueSize, rows: w.rows }
          print(writesTable(result.writes))
        } finally {
          await etcdCluster?.destroy()
        }
      }
      if (has('writes')) done('writes')
      if (has('scale')) {
        const r = await runRss(cluster, leader, o.rssKeys, written, o.valueSize, before)
        result.scale = { rss: r, note: '' }
        done('rss')
      }
    } finally {
      await cluster.destroy()
    }
  })

  if (has('floor')) await section('floor', async () => {
    progress('floor', 'fdatasync latency of the data disk and the loopback round trip')
    const fdatasync = measureFdatasync(work, o.quick ? 200 : 1000)
    const loopbackRtt = await measureLoopbackRtt(o.quick ? 1000 : 5000)
    const one = result.writes?.rows.find((r) => r.concurrency === 1)
    const lmdb = one?.systems.raw?.p50Ms ?? null
    const emb = one?.systems.embedded?.p50Ms ?? null
    const fsyncRttMs = round3(fdatasync.p50Ms + loopbackRtt.p50Ms)
    const lmdbRttMs = lmdb === null ? null : round3(lmdb + loopbackRtt.p50Ms)
    const floor: FloorSummary = {
      fdatasync,
      loopbackRtt,
      lmdbPutP50Ms: lmdb,
      embeddedP50Ms: emb,
      fsyncRttMs,
      lmdbRttMs,
      embeddedVsFsyncRtt: emb === null ? null : round3(emb / fsyncRttMs),
      embeddedVsLmdbRtt: emb === null || lmdbRttMs === null ? null : round3(emb / lmdbRttMs),
    }
    result.floor = floor
    print(floorTable(floor))
    done('floor')
  })

  if (has('failover')) await section('failover', async () => {
    progress('failover', `${o.failoverReps} SIGKILLs of the leader per system, under ${o.failoverWriters} writers`)
    result.failover = await runFailover({ reps: o.failoverReps, dir: work, dht: dht!, timings: o.failoverTimings, etcd: etcd?.path, writers: o.failoverWriters, settleMs: o.failoverSettleMs, timeoutMs: o.failoverTimeoutMs })
    print(failoverTable(result.failover))
    for (const s of result.failover) if (s.error !== undefined) errors.push(`failover, ${s.system}: ${s.error.split('\n')[0]}`)
    done('failover')
  })

  if (has('restore')) await section('restore', async () => {
    progress('restore', `restoring a wiped node holding ${o.restoreSizes.map((s) => `${(s / 1e6).toFixed(0)} MB`).join(', then ')} of state`)
    result.restore = await runRestore({ sizes: o.restoreSizes, dir: work, dht: dht! })
    print(restoreTable(result.restore))
    done('restore')
  })

  if (has('scale')) await section('scale', async () => {
    progress('scale', `forming clusters of ${o.scaleSizes.join(', ')} nodes over hyperswarm`)
    const formation = await runFormation(o.scaleSizes, work, dht!)
    result.scale = {
      ...result.scale,
      formation,
      note: 'holdfast has no gossip layer: membership is replicated through the Raft log and member URLs through the replicated directory, so convergence is the time until every node\'s /v1/status lists every member with its URL.',
    }
    print(scaleTables(result.scale))
    done('formation')
  })

  await dht?.stop()
  result.targets = checkTargets(result)
  print(targetsTable(result.targets))
  result.durationSeconds = Math.round(elapsedSeconds())
  result.sectionSeconds = sectionSeconds
  // Every section asked for must have its figures: one without them is a failure even if nothing threw.
  const produced: Record<Section, boolean> = { writes: !!result.writes, floor: !!result.floor, failover: !!result.failover, restore: !!result.restore, scale: !!(result.scale?.formation && result.scale.rss) }
  for (const s of o.sections) if (!produced[s] && !errors.some((e) => e.startsWith(s))) errors.push(`${s}: the section produced no result`)
  result.errors = errors
  result.timedOut = (result.failover ?? []).flatMap((s) => s.reps.flatMap((r, i) => (r.timedOut ? [`failover, ${s.system}, rep ${i + 1}/${s.reps.length}: ${timeoutText(r.timedOut)}`] : [])))
  result.figures = await writeFigures(result, outDir)
  const file = join(outDir, 'result.json')
  await writeFile(file, JSON.stringify(result, null, 2) + '\n')
  if (result.timedOut.length > 0) print(`MEASUREMENTS TIMED OUT (recorded in the table and the JSON${o.quick ? '' : '; exit code 3'}):\n${result.timedOut.map((t) => `  ${t}`).join('\n')}`)
  if (errors.length > 0) print(`FAILED (exit code 1):\n${errors.map((e) => `  ${e}`).join('\n')}`)
  print(`result: ${file}\nfigures: ${result.figures.map((f) => join(outDir, f)).join(' ')}\ntook ${result.durationSeconds} s (${Object.entries(sectionSeconds).map(([k, v]) => `${k} ${v} s`).join(', ')})`)
  return result
}

async function main(): Promise<void> {
  let o
  try {
    o = parseOptions(process.argv.slice(2))
  } catch (err) {
    if (!(err instanceof UsageError)) throw err
    process.stderr.write(`bench: ${err.message}\n\n${USAGE}\n`)
    process.exit(2)
  }
  if (o === 'help') {
    process.stdout.write(USAGE + '\n')
    return
  }
  const r = await run(o)
  // Clients and timers of the sections may hold the loop open for a while; the run is over.
  process.exit((r.errors?.length ?? 0) > 0 ? 1 : (r.timedOut?.length ?? 0) > 0 && !o.quick ? 3 : 0)
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
  process.exit(1)
})
