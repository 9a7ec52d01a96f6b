/**
 * The CI smoke test of the benchmark harness: `npm run bench -- --quick` as a process, writing
 * into temporary directories. It checks that every section ran and reported (the JSON has every
 * section with figures in it, the tables and progress were printed, the SVGs were written) and
 * that the run left no data directory behind. It asserts nothing about speed. A failover
 * repetition that times out on a loaded machine is a result, not a failure, but it must be shown:
 * listed under the table and in the JSON. Two shorter runs check the exit codes: timed-out
 * repetitions alone exit 0 with --quick, a comparator that fails exits 1 after the others ran.
 */
import { spawn } from 'node:child_process'
import { chmod, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import type { Test } from 'tap'
import type { BenchResult } from '../../benchmarks/result.js'
import type { FailoverSeries } from '../../benchmarks/sections/failover.js'

const RUN = fileURLToPath(new URL('../../benchmarks/run.ts', import.meta.url))

function bench(args: readonly string[], extraEnv: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const env = { ...process.env, ...extraEnv }
    delete env['DEBUG']
    const child = spawn(process.execPath, ['--import', 'tsx', RUN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    child.on('exit', (code) => resolve({ code, stdout, stderr }))
  })
}

t.test('usage: --help exits 0, a bad option exits 2 with the usage', async (t) => {
  const help = await bench(['--help'])
  t.equal(help.code, 0)
  t.match(help.stdout, /--quick/)
  const bad = await bench(['--only', 'nonsense'])
  t.equal(bad.code, 2)
  t.match(bad.stderr, /unknown section "nonsense"/)
})

t.test('npm run bench -- --quick runs every section and reports it', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'holdfast-bench-test-data-'))
  const outDir = await mkdtemp(join(tmpdir(), 'holdfast-bench-test-out-'))
  t.teardown(() => Promise.all([rm(dataDir, { recursive: true, force: true }), rm(outDir, { recursive: true, force: true })]))
  const run = await bench(['--quick', '--dir', dataDir, '--out-dir', outDir])
  t.equal(run.code, 0, `the run succeeds\n${run.stderr.slice(-4000)}`)

  for (const title of ['Durable writes', 'Hardware floor', 'Failover', 'Restore', 'Formation over hyperswarm', 'Memory of the nodes', 'Targets']) {
    t.match(run.stdout, title, `the ${title} table is printed`)
  }
  for (const section of ['writes', 'floor', 'failover', 'restore', 'scale']) {
    t.match(run.stderr, new RegExp(`^\\[ *[0-9.]+s\\] ${section}: `, 'm'), `progress of ${section} while it runs`)
  }

  const r = JSON.parse(await readFile(join(outDir, 'result.json'), 'utf8')) as BenchResult
  t.equal(r.quick, true)
  t.ok(r.machine.cores > 0 && r.machine.etcd, 'the machine and the etcd version are recorded')

  t.same(r.writes?.rows.map((w) => w.concurrency), [1, 16, 64, 256], 'a write row per writer count')
  for (const w of r.writes?.rows ?? []) {
    for (const s of ['raw', 'embedded', 'http', 'etcd'] as const) {
      const m = w.systems[s]
      t.ok(m && m.writes > 0 && m.p50Ms > 0 && m.p999Ms >= m.p99Ms && m.p99Ms >= m.p50Ms, `${s} x${w.concurrency} measured writes and percentiles`)
    }
    t.ok(Number.isFinite(w.vsEtcd?.embedded.throughput) && Number.isFinite(w.vsEtcd?.http.p99), `x${w.concurrency} has holdfast/etcd ratios`)
  }

  t.ok(r.floor && r.floor.fdatasync.p50Ms > 0 && r.floor.loopbackRtt.p50Ms > 0, 'fdatasync and round-trip latencies')
  t.ok(Number.isFinite(r.floor?.embeddedVsLmdbRtt), 'the single-writer ratio to the floor')

  t.same(r.failover?.map((s) => s.system.split(',')[0]), ['holdfast', 'holdfast', 'holdfast', 'etcd'], 'failover of the three holdfast timings and of etcd')
  for (const s of r.failover ?? []) {
    t.equal(s.error, undefined, `${s.system}: no failure`)
    t.equal(s.reps.length, 2, `${s.system}: two repetitions`)
    checkReps(t, s, run.stdout)
  }

  t.equal(r.restore?.length, 1, 'one restore size')
  const restore = r.restore![0]!
  t.ok(restore.stateBytes >= 4e6 && restore.restoreMs > 0 && restore.cpSyncMs > 0 && restore.speedVsCp > 0, 'a restore timed against cp')
  t.not(restore.snapshotBytes, null, 'the restored node received a snapshot')

  t.same(r.scale?.formation?.map((f) => f.nodes), [3, 5, 7], 'formation of 3, 5 and 7 nodes')
  t.ok(r.scale?.formation?.every((f) => f.formedMs > 0 && f.convergedMs >= f.formedMs && f.joinConvergedMs > 0), 'formation and convergence times')
  t.ok((r.scale?.rss?.keys ?? 0) >= 50_000 && r.scale?.rss?.members.length === 3 && r.scale.rss.members.every((m) => m.rssBytes > 0), 'RSS of the three nodes holding the keys')

  t.ok((r.targets?.length ?? 0) >= 10, 'the targets are listed')
  // A failover target is unchecked only when its repetitions timed out, and then it says so.
  t.ok(r.targets!.every((x) => x.met !== null || /timed out/.test(x.measured)), 'every target checked')
  t.same(r.errors, [], 'no section failed')

  const files = await readdir(outDir)
  for (const f of ['throughput.svg', 'latency-1.svg', 'latency-256.svg', 'failover.svg']) {
    t.ok(files.includes(f), `${f} written`)
    if (files.includes(f)) t.match(await readFile(join(outDir, f), 'utf8'), /^<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"[\s\S]*(<polyline|<circle)[\s\S]*<\/svg>\n$/, `${f} is an SVG with data`)
  }
  t.same(await readdir(dataDir), [], 'no data directory is left behind')
  t.same(await processesUnder(dataDir), [], 'no process it started is left running')
})

/**
 * A failover series' repetitions: each has its times or is marked timed out; a timed-out one is
 * listed under the failover table and in the run's JSON list, and left out of the medians.
 */
function checkReps(t: Test, s: FailoverSeries, stdout: string): void {
  const holdfast = s.system.startsWith('holdfast')
  for (const [i, x] of s.reps.entries()) {
    if (x.timedOut) {
      t.ok(x.timedOut.afterMs > 0 && x.timedOut.missing !== '' && x.timedOut.members !== '', `${s.system} rep ${i + 1}: timed out, with what was missing and the members' state`)
      t.match(stdout, `${s.system}, rep ${i + 1}/${s.reps.length}: timed out after ${x.timedOut.afterMs} ms`, `${s.system} rep ${i + 1}: the timeout is shown under the table`)
    } else {
      t.ok(x.writeMs !== null && x.writeMs > 0, `${s.system} rep ${i + 1}: time to the next write`)
      if (holdfast) t.ok(x.leaderCheckMs !== undefined && x.leaderCheckMs !== null && x.leaderCheckMs > 0, `${s.system} rep ${i + 1}: time to leader-check 200`)
    }
  }
  t.equal(s.timedOut, s.reps.filter((x) => x.timedOut).length, `${s.system}: timed-out repetitions counted`)
  const writes = s.reps.flatMap((x) => (x.writeMs === null ? [] : [x.writeMs]))
  if (writes.length > 0) t.ok(s.writeMedianMs! > 0 && s.writeMaxMs === Math.max(...writes), `${s.system}: median and max over the repetitions with a write`)
  else t.equal(s.writeMedianMs, null, `${s.system}: no median without a write`)
}

t.test('failover repetitions that time out are recorded and the --quick run exits 0', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'holdfast-bench-test-data-'))
  const outDir = await mkdtemp(join(tmpdir(), 'holdfast-bench-test-out-'))
  t.teardown(() => Promise.all([rm(dataDir, { recursive: true, force: true }), rm(outDir, { recursive: true, force: true })]))
  // No write can be acknowledged 1 ms after the leader's SIGKILL: every repetition times out, for real.
  const run = await bench(['--quick', '--only', 'failover', '--failover-timings', 'fast', '--failover-timeout', '1', '--dir', dataDir, '--out-dir', outDir])
  t.equal(run.code, 0, `timed-out measurements alone do not fail a --quick run\n${run.stderr.slice(-4000)}`)
  t.match(run.stdout, 'Failover', 'the failover table is printed')
  t.match(run.stdout, 'MEASUREMENTS TIMED OUT', 'the timeouts are summed up')
  const r = JSON.parse(await readFile(join(outDir, 'result.json'), 'utf8')) as BenchResult
  t.same(r.failover?.map((s) => [s.system.split(',')[0], s.reps.length, s.timedOut, s.error]), [['holdfast', 2, 2, undefined], ['etcd', 2, 2, undefined]], 'both systems ran both repetitions, each timed out')
  for (const s of r.failover ?? []) checkReps(t, s, run.stdout)
  t.equal(r.timedOut?.length, 4, 'the run lists the four timeouts')
  t.same(r.errors, [], 'and no failure')
  t.same(await readdir(dataDir), [], 'no data directory is left behind')
})

t.test('a comparator that fails exits 1, after the other systems ran and were reported', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'holdfast-bench-test-data-'))
  const outDir = await mkdtemp(join(tmpdir(), 'holdfast-bench-test-out-'))
  t.teardown(() => Promise.all([rm(dataDir, { recursive: true, force: true }), rm(outDir, { recursive: true, force: true })]))
  // An "etcd" whose members crash at start.
  const etcd = join(outDir, 'etcd-crashes')
  await writeFile(etcd, '#!/bin/sh\necho "etcd Version: 0.0.0-crashes"\necho "panic: this etcd crashes" >&2\nexit 1\n')
  await chmod(etcd, 0o755)
  const run = await bench(['--quick', '--only', 'failover', '--failover-timings', 'fast', '--failover-reps', '1', '--dir', dataDir, '--out-dir', outDir], { HOLDFAST_ETCD: etcd })
  t.equal(run.code, 1, 'the run fails')
  t.match(run.stdout, /etcd, defaults[^\n]*: FAILED after 0 repetitions: etcd member m\d exited \(code 1\)/, 'the failure is shown under the table')
  t.match(run.stdout, /FAILED \(exit code 1\)/, 'and at the end')
  const r = JSON.parse(await readFile(join(outDir, 'result.json'), 'utf8')) as BenchResult
  const [holdfast, failed] = r.failover ?? []
  t.ok(holdfast && holdfast.error === undefined && holdfast.reps.length === 1, 'holdfast was measured')
  if (holdfast) checkReps(t, holdfast, run.stdout)
  t.match(failed?.error, /etcd member m\d exited \(code 1\):[\s\S]*panic: this etcd crashes/, 'the error in the JSON, with the member\'s output')
  t.equal(r.errors?.length, 1, 'one error listed')
  t.same(await readdir(dataDir), [], 'no data directory is left behind')
})

/** Processes whose command line names `dir` (every daemon and etcd member is given its data directory). */
async function processesUnder(dir: string): Promise<string[]> {
  const out: string[] = []
  for (const pid of (await readdir('/proc')).filter((p) => /^\d+$/.test(p))) {
    const cmd = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')
    if (cmd.includes(dir)) out.push(`${pid}: ${cmd.replace(/\0/g, ' ')}`)
  }
  return out
}
